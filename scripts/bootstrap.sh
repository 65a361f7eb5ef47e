#!/usr/bin/env bash
# Create .venv (Python 3.11) and install cargorisk with the exact versions in constraints.txt.
# Idempotent: reinstalls only when pyproject.toml, constraints.txt or the extras changed.
# CARGORISK_EXTRAS=dev,spark also installs pyspark (the spark engine and its tests).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.cargorisk-installed
extras="${CARGORISK_EXTRAS:-dev}"
want=$( (cat pyproject.toml constraints.txt; echo "$extras") | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[$extras]"
  echo "$want" > "$stamp"
fi

#!/usr/bin/env bash
# Create .venv (Python 3.11) and install cargorisk with the exact versions in constraints.txt.
# Idempotent: reinstalls only when pyproject.toml or constraints.txt changed or an extra is new.
# CARGORISK_EXTRAS=dev,spark also installs pyspark (the spark engine and its tests).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.cargorisk-installed   # "<hash of pyproject.toml + constraints.txt> <extras>"
want_hash=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
extras="${CARGORISK_EXTRAS:-dev}"
have_hash="" have_extras=""
if [ -f "$stamp" ]; then read -r have_hash have_extras < "$stamp" || true; fi
# the extras installed before stay (the test command adds spark; the quickstart must not make
# the next test run reinstall), and a changed pyproject/constraints reinstalls all of them
all=$(printf '%s,%s' "$have_extras" "$extras" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -)
if [ "$have_hash" != "$want_hash" ] || [ "$all" != "$have_extras" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[$all]"
  echo "$want_hash $all" > "$stamp"
fi

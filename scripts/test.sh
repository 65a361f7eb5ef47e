#!/usr/bin/env bash
# The whole test suite: lint, format check, the house's import rules, type check, unit,
# integration and browser tests.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
CARGORISK_EXTRAS="${CARGORISK_EXTRAS:-dev,spark}" bash scripts/bootstrap.sh   # Spark too: its parity test runs
bash scripts/services.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-logo   # the layering of docs/architecture.md ([tool.importlinter])
.venv/bin/mypy                     # [tool.mypy] in pyproject.toml
exec .venv/bin/pytest "$@"

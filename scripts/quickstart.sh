#!/usr/bin/env bash
# The main job: install into .venv, simulate a customs world, train and promote a model, create
# an officer key and serve the scoring API with the worklist page. A second run reuses what
# exists. Options go to `cargorisk quickstart` (e.g. --port 3001, --no-serve).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/cargorisk quickstart "$@"

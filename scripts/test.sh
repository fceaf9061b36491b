#!/usr/bin/env bash
# Set up, then run the whole test suite (slow tests included) and ruff.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1
ruff check adapters tests examples
exec python -m pytest "$@"

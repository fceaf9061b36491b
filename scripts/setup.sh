#!/usr/bin/env bash
# Create .venv (if missing) and install peft-recipes with its test tools. Idempotent.
# torch is installed first at 2.13.0 so that pip does not pick a larger build for the range in pyproject.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[dev]"

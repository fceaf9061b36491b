#!/usr/bin/env bash
# Set up, then train the default German-credit recipe (LoRA on all-MiniLM-L6-v2) and print its metrics.
# Extra arguments are passed on, e.g.: bash scripts/train-default.sh training.seed=1
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
exec adapters train german-credit/lora --overwrite "$@"

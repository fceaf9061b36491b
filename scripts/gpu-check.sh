#!/usr/bin/env bash
# The GPU paths, checked in one go on a lent CUDA machine (see docs/distributed.md, "GPU runs").
#   bash scripts/gpu-check.sh MINILM_DIR     (wheels for missing packages in .whl/, as the device notes say)
#   STEPS="fsdp methods" bash scripts/gpu-check.sh MINILM_DIR    (only those steps)
# Each step prints one summary line; the full logs and JSON land in $OUT (or /tmp/gpu-check).
# The methods benchmark appends to $RESULTS and skips finished runs, so a second call resumes it.
set -u
MINILM=${1:-.gpu/minilm}
OUT=${OUT:-/tmp/gpu-check}
LOGS=/tmp/gpu-check-logs
BUDGET=${BUDGET:-440}   # seconds for the whole script; the methods benchmark gets what is left
STEPS=${STEPS:-"bf16 quantization 8bit-gc 4bit-gc fsdp deepspeed decoder-build qlora-decoder mfu methods"}
RESULTS=${RESULTS:-$OUT/methods.jsonl}
mkdir -p "$OUT" "$LOGS"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HOME=/tmp/hf TOKENIZERS_PARALLELISM=false
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
python3 - <<'PY' 2>&1 | tee "$OUT/env.txt"
import torch, transformers, peft, accelerate, bitsandbytes, datasets
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
print("transformers", transformers.__version__, "peft", peft.__version__, "accelerate", accelerate.__version__,
      "bitsandbytes", bitsandbytes.__version__, "datasets", datasets.__version__)
PY
summary() {  # summary NAME OUTPUT_DIR: one line from metrics.json
  python3 - "$1" "$2" <<'PY'
import json, sys
name, out = sys.argv[1:]
try:
    m = json.load(open(f"{out}/metrics.json")); s = json.load(open(f"{out}/training_summary.json"))
    c = m["cost"]
    print(f"RESULT {name}: test roc_auc {m['test']['roc_auc']:.3f} | {c['train_seconds']}s, "
          f"{c['train_samples_per_second']} samples/s | footprint {c['model_memory_footprint_bytes']/2**20:.0f} MiB, "
          f"peak cuda {c.get('peak_cuda_memory_bytes', 0)/2**20:.0f} MiB | parity {s['parity_max_abs_diff']:.2e} | "
          f"{c['device']} x{c['num_processes']} {c['mixed_precision']}")
except Exception as exc:
    print(f"RESULT {name}: FAILED ({exc})")
PY
}
step() {  # step NAME SECONDS COMMAND...   (skipped unless NAME is in $STEPS)
  local name=$1 limit=$2; shift 2
  case " $STEPS " in *" $name "*) ;; *) return 1 ;; esac
  local started=$SECONDS
  timeout "$limit" "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  echo "STEP $name rc=$rc $((SECONDS - started))s"
  [ $rc -ne 0 ] && tail -4 "$LOGS/$name.log"
  return 0
}
LORA="german-credit/lora model.name_or_path=$MINILM"
step bf16 120 accelerate launch --config_file recipes/accelerate/single-gpu.yaml -m adapters train $LORA --output /tmp/r/bf16 --no-progress && summary bf16 /tmp/r/bf16
step quantization 240 python3 benchmarks/quantization.py --model "$MINILM" --output "$OUT/quantization.json"
[ -f "$LOGS/quantization.log" ] && grep -E "footprint|vs fp32" "$LOGS/quantization.log"
step 8bit-gc 150 python3 -m adapters train $LORA model.quantization=8bit training.gradient_checkpointing=true --output /tmp/r/8bit --no-progress && summary 8bit-gc /tmp/r/8bit
step 4bit-gc 150 python3 -m adapters train $LORA model.quantization=4bit model.double_quant=true training.gradient_checkpointing=true --output /tmp/r/4bit --no-progress && summary 4bit-gc /tmp/r/4bit
step fsdp 120 accelerate launch --config_file recipes/accelerate/fsdp.yaml --num_processes 1 -m adapters train $LORA training.epochs=2 --output /tmp/r/fsdp --no-progress && summary fsdp /tmp/r/fsdp
step deepspeed 150 accelerate launch --config_file recipes/accelerate/deepspeed-zero2.yaml --num_processes 1 -m adapters train $LORA training.epochs=2 --output /tmp/r/ds --no-progress && summary deepspeed /tmp/r/ds
step decoder-build 120 python3 scripts/make_random_decoder.py /tmp/llama
step qlora-decoder 180 python3 -m adapters train german-credit/qlora-decoder model.name_or_path=/tmp/llama training.epochs=1 --output /tmp/r/qlora --no-progress && summary qlora-decoder /tmp/r/qlora
cp /tmp/r/qlora/metrics.json "$OUT/qlora-decoder-metrics.json" 2>/dev/null
step mfu 120 python3 benchmarks/machine_peak.py --threads 4 --output "$OUT/machine_peak.json"  # issue 10: bf16 MFU
[ -f "$LOGS/mfu.log" ] && grep -E "GFLOP|utilisation" "$LOGS/mfu.log"
LEFT=$(( BUDGET - SECONDS - 15 ))
[ $LEFT -gt 30 ] && OMP_NUM_THREADS=${THREADS:-2} step methods $LEFT python3 benchmarks/methods.py --model "$MINILM" --workers "${WORKERS:-8}" --results "$RESULTS"
if [ -f "$RESULTS" ]; then
  python3 benchmarks/methods.py --model "$MINILM" --results "$RESULTS" --seeds 0 > /dev/null 2>&1  # table of what finished
  cp "$RESULTS" "$(dirname "$RESULTS")/methods.md" "$OUT/" 2>/dev/null; cat "$OUT/methods.md" 2>/dev/null
fi
tar -czf "$OUT/logs.tar.gz" -C "$LOGS" . && echo "logs: $OUT/logs.tar.gz"

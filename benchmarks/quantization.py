"""fp32 vs 8-bit vs 4-bit base weights on German Credit: memory footprint, step time, test ROC-AUC.

    python benchmarks/quantization.py [--model DIR] [--epochs 6] [--seed 42] [extra overrides ...]

The same recipe (german-credit/lora) and seed run three times in this process, changing only
``model.quantization``; the ratios printed are against the fp32 run of the same invocation. On CUDA the
k-bit runs use PEFT's ``prepare_model_for_kbit_training``; on CPU they skip it (bitsandbytes 0.50).
Writes ``benchmarks/results/quantization.json``.
"""

from __future__ import annotations

import argparse
import json

from _common import REPO, machine, run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="base model dir or Hub id (default: the recipe's)")
    parser.add_argument("--epochs", type=float, default=6)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", default=str(REPO / "benchmarks/results/quantization.json"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    common = [f"training.epochs={args.epochs}", f"training.seed={args.seed}", *args.overrides]
    if args.model:
        common.append(f"model.name_or_path={args.model}")
    rows = {}
    for quantization in ("none", "8bit", "4bit"):
        record = run("german-credit/lora", [*common, f"model.quantization={quantization}"])
        rows[quantization] = record
        footprint = record["cost"]["model_memory_footprint_bytes"]
        print(
            f"{quantization:>5}: footprint {footprint / 2**20:7.1f} MiB  "
            f"step {record['seconds_per_step'] * 1000:7.1f} ms"
            f"  test ROC-AUC {record['test']['roc_auc']:.3f}",
            flush=True,
        )
    base = rows["none"]
    for quantization in ("8bit", "4bit"):
        row = rows[quantization]
        row["footprint_ratio_vs_fp32"] = (
            row["cost"]["model_memory_footprint_bytes"] / base["cost"]["model_memory_footprint_bytes"]
        )
        row["step_time_ratio_vs_fp32"] = row["seconds_per_step"] / base["seconds_per_step"]
        row["roc_auc_minus_fp32"] = row["test"]["roc_auc"] - base["test"]["roc_auc"]
        print(
            f"{quantization} vs fp32: footprint x{row['footprint_ratio_vs_fp32']:.2f}, step time "
            f"x{row['step_time_ratio_vs_fp32']:.2f}, ROC-AUC {row['roc_auc_minus_fp32']:+.3f}"
        )
    payload = {"machine": machine(), "recipe": "german-credit/lora", "overrides": common, "runs": rows}
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
    print("wrote", args.output)


if __name__ == "__main__":
    main()

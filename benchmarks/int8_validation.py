"""Would an int8 validation pass make training faster? The recipe evaluates the 200 validation rows every 20
steps (about 14 of every 69 s on this project's Zen 1 machine), at near the CPU's fp32 peak. This times that
pass as training runs it (fp32 PEFT model, first-token last layer) against the cheapest int8 path torch
offers inside a training loop: a copy of the model with LoRA merged and every ``nn.Linear`` dynamically
quantized (``torch.ao.quantization.quantize_dynamic``), made again at every evaluation, its making timed.

    python benchmarks/int8_validation.py [--threads 2] [--repeats 3]

The model is the recipe's, built as training builds it (``build_model``: MiniLM, LoRA r 16 on
query/key/value, pooler trained), its LoRA B drawn at random so the merge changes weights; speed does not
depend on training. Batches are the recipe's validation batches (length-sorted, 64 rows, ``data.max_length``),
tokenized once. Repeats alternate the two paths; the
ratio is the median of per-repeat ratios. Writes ``benchmarks/results/int8_validation.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from _common import REPO, machine


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(REPO / "benchmarks/results/int8_validation.json"))
    args = parser.parse_args()

    import torch

    from adapters.classifier import sorted_batches
    from adapters.data import prepare_data
    from adapters.data.prepare import resolve_data_config
    from adapters.export import roc_auc
    from adapters.first_token import first_token_only
    from adapters.modeling import build_model
    from adapters.recipe import load_recipe

    torch.set_num_threads(args.threads)
    recipe = load_recipe("german-credit/lora")
    prepared = prepare_data(resolve_data_config(recipe.data), task=recipe.task)
    validation, positive = prepared.frames["validation"], prepared.label_names.index(prepared.positive_label)
    texts, labels = validation["text"].tolist(), validation["label"].to_numpy()
    torch.manual_seed(0)
    built = build_model(recipe.model, recipe.method, prepared.label_names, prepared.positive_label)
    model, tokenizer = built.model.eval(), built.tokenizer
    for name, parameter in model.named_parameters():  # B ≠ 0: the merge changes weights, as after training
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.02)
    batches = [
        (
            chunk,
            dict(
                tokenizer(
                    [texts[i] for i in chunk],
                    padding=True,
                    truncation=True,
                    max_length=recipe.data.max_length,
                    return_tensors="pt",
                )
            ),
        )
        for chunk in sorted_batches(texts, recipe.training.eval_batch_size)
    ]

    def score(scorer: torch.nn.Module) -> np.ndarray:
        probabilities = np.zeros((len(texts), 2))
        with torch.inference_mode(), first_token_only(scorer):
            for rows, batch in batches:
                probabilities[rows] = torch.softmax(scorer(**batch).logits.float(), -1).numpy()
        return probabilities

    def int8_pass() -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        with warnings.catch_warnings():  # torch.ao.quantization's deprecation notice
            warnings.simplefilter("ignore")
            from torch.ao.quantization import quantize_dynamic

            merged = copy.deepcopy(model).merge_and_unload()
            quantized = quantize_dynamic(merged, {torch.nn.Linear}, dtype=torch.qint8)
        made = time.perf_counter() - started
        return score(quantized), made

    fp32_seconds, int8_seconds, making = [], [], []
    for repeat in range(args.repeats):
        for name in ("fp32", "int8") if repeat % 2 == 0 else ("int8", "fp32"):
            started = time.perf_counter()
            if name == "fp32":
                fp32_probabilities = score(model)
                fp32_seconds.append(time.perf_counter() - started)
            else:
                int8_probabilities, made = int8_pass()
                int8_seconds.append(time.perf_counter() - started)
                making.append(made)
        print(
            f"repeat {repeat + 1}: fp32 {fp32_seconds[-1]:.2f} s, int8 {int8_seconds[-1]:.2f} s "
            f"(of which merge + quantize {making[-1]:.2f} s)",
            flush=True,
        )
    ratio = statistics.median(f / i for f, i in zip(fp32_seconds, int8_seconds, strict=True))
    fp32_auc = roc_auc(labels, fp32_probabilities, positive)
    int8_auc = roc_auc(labels, int8_probabilities, positive)
    print(f"int8 validation pass: x{ratio:.2f} the fp32 one; ROC-AUC {int8_auc:.4f} vs {fp32_auc:.4f}")
    payload = {
        "machine": machine(),
        "threads": args.threads,
        "rows": len(texts),
        "fp32_seconds": fp32_seconds,
        "int8_seconds_with_making": int8_seconds,
        "int8_making_seconds": making,
        "speedup_int8_vs_fp32": ratio,
        "roc_auc": {"fp32": fp32_auc, "int8": int8_auc},
        "max_abs_prob_diff": float(np.abs(int8_probabilities - fp32_probabilities).max()),
        "note": "random LoRA B: the ROC-AUCs are of an untrained model, only their difference is read",
    }
    Path(args.output).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print("wrote", args.output)


if __name__ == "__main__":
    main()

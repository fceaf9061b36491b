"""Inference speed on CPU: unmerged PEFT (full last layer, and first token only) vs merged torch vs ONNX fp32
vs ONNX int8, same rows, same batches.

    python benchmarks/inference.py [--adapter DIR] [--threads 2] [--batch-size 64] [--repeats 5] [overrides]

Without ``--adapter`` a quick adapter of ``german-credit/lora`` is trained first (``training.epochs=1``
plus any overrides; the recipe's ``min_steps`` still makes it 120 steps, about 7 minutes on 2 cores) in a
temporary directory: the speed of the five paths does not depend on how well the
adapter is trained, their ROC-AUC differences barely do. Every path scores the recipe's test split in the
same length-sorted batches, tokenized once beforehand (tokenization is the same for all five and is not
timed). Each repeat times one full pass of every path, in a rotated order, so a slow moment of a shared
machine hits all paths alike; ratios are medians of the per-repeat ratios against the unmerged model.
Writes ``benchmarks/results/inference.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO, machine

PATHS = ("unmerged_peft", "unmerged_first_token", "merged_torch", "onnx_fp32", "onnx_int8")


def cpu() -> dict[str, Any]:
    """The CPU model and the vector extensions int8 kernels depend on (VNNI: int8 dot products)."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {}
    model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), None)
    flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return {"cpu_model": model, "cpu_flags": [flag for flag in wanted if flag in flags]}


def quick_adapter(workdir: Path, overrides: list[str]) -> Path:
    """Train german-credit/lora for one epoch (plus overrides) into ``workdir``."""
    import adapters

    settings = ["training.epochs=1", *overrides]
    print(f"no --adapter: training a quick german-credit/lora adapter ({' '.join(settings)}) in {workdir}")
    return adapters.train(
        "german-credit/lora", settings, output_dir=workdir / "adapter", progress=False
    ).output_dir


def scorers(adapter: Path, onnx_dir: Path, threads: int) -> tuple[dict[str, Any], Any, list[str], np.ndarray]:
    """One scoring function per path (pre-tokenized batch → logits), the classifier, test texts, labels."""
    import contextlib

    import torch

    import adapters
    from adapters.data import prepare_data
    from adapters.export import OnnxClassifier, export_onnx
    from adapters.first_token import first_token_only
    from adapters.merge import merged_model

    classifier = adapters.load(adapter, device="cpu")
    test = prepare_data(classifier.recipe.data, task=classifier.recipe.task).frames["test"]
    export_onnx(adapter, onnx_dir, int8=True)
    merged = merged_model(adapter).model
    fp32, int8 = (
        OnnxClassifier(onnx_dir, threads=threads),
        OnnxClassifier(onnx_dir, "model.int8.onnx", threads),
    )

    def torch_logits(model: Any, first_token: bool = False) -> Any:
        def run(batch: dict[str, Any]) -> np.ndarray:
            with torch.no_grad(), first_token_only(model) if first_token else contextlib.nullcontext():
                return model(**batch["pt"]).logits.float().numpy()

        return run

    functions = {
        "unmerged_peft": torch_logits(classifier.model),
        # what Classifier.predict_proba (adapters predict / eval) runs: the last layer for [CLS] only
        "unmerged_first_token": torch_logits(classifier.model, first_token=True),
        "merged_torch": torch_logits(merged),
        "onnx_fp32": lambda batch: fp32.logits(batch["np"]),
        "onnx_int8": lambda batch: int8.logits(batch["np"]),
    }
    return functions, classifier, test["text"].tolist(), test["label"].to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--adapter", help="a trained german-credit artifact dir (default: train a quick one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=str(REPO / "benchmarks/results/inference.json"))
    parser.add_argument("overrides", nargs="*", help="recipe overrides for the quick adapter")
    args = parser.parse_args()

    import torch

    from adapters.classifier import sorted_batches
    from adapters.export import roc_auc

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        adapter = Path(args.adapter) if args.adapter else quick_adapter(scratch, args.overrides)
        functions, classifier, texts, labels = scorers(adapter, scratch / "onnx", args.threads)
        adapter_auc = json.loads((adapter / "metrics.json").read_text())["test"]["roc_auc"]
        sizes = {"onnx_fp32": "model.onnx", "onnx_int8": "model.int8.onnx"}
        sizes = {path: (scratch / "onnx" / name).stat().st_size for path, name in sizes.items()}
        batches = []
        for chunk in sorted_batches(texts, args.batch_size):
            encoded = classifier.encode([texts[i] for i in chunk])
            batches.append(
                {"rows": chunk, "pt": dict(encoded), "np": {k: v.numpy() for k, v in encoded.items()}}
            )
        tokens = sum(int(batch["pt"]["attention_mask"].sum()) for batch in batches)
        print(f"{len(texts)} test rows, {tokens / len(texts):.0f} tokens/row, batch size {args.batch_size}")

        probabilities = {}
        for path, function in functions.items():  # warm-up pass; its scores give the ROC-AUC
            logits = np.zeros((len(texts), len(classifier.label_names)))
            for batch in batches:
                logits[batch["rows"]] = function(batch)
            shifted = np.exp(logits - logits.max(-1, keepdims=True))
            probabilities[path] = shifted / shifted.sum(-1, keepdims=True)
        seconds: dict[str, list[float]] = {path: [] for path in PATHS}
        for repeat in range(args.repeats):
            order = PATHS[repeat % len(PATHS) :] + PATHS[: repeat % len(PATHS)]
            for path in order:
                start = time.perf_counter()
                for batch in batches:
                    functions[path](batch)
                seconds[path].append(time.perf_counter() - start)
            print(
                f"repeat {repeat + 1}: " + ", ".join(f"{p} {seconds[p][-1]:.2f}s" for p in PATHS), flush=True
            )

    names = classifier.label_names
    positive = names.index(classifier.positive_label) if classifier.positive_label in names else 1
    base_auc = roc_auc(labels, probabilities["unmerged_peft"], positive)
    rows = {}
    for path in PATHS:
        ratios = [b / s for b, s in zip(seconds["unmerged_peft"], seconds[path], strict=True)]
        auc = roc_auc(labels, probabilities[path], positive)
        rows[path] = {
            "rows_per_second": len(texts) / statistics.median(seconds[path]),
            "speedup_vs_unmerged": statistics.median(ratios),
            "seconds_per_pass": seconds[path],
            "roc_auc": auc,
            "roc_auc_minus_unmerged": auc - base_auc,
            "max_abs_prob_diff_vs_unmerged": float(
                np.abs(probabilities[path] - probabilities["unmerged_peft"]).max()
            ),
            "model_file_bytes": sizes.get(path),
        }
        row = rows[path]
        print(
            f"{path:>20}: {row['rows_per_second']:7.1f} rows/s  x{row['speedup_vs_unmerged']:.2f}  "
            f"ROC-AUC {auc:.4f} ({row['roc_auc_minus_unmerged']:+.4f})"
        )
    int8 = rows["onnx_int8"]
    targets = {
        "onnx_int8_speedup_at_least_4x": int8["speedup_vs_unmerged"] >= 4,
        "onnx_int8_roc_auc_within_0.005": abs(int8["roc_auc_minus_unmerged"]) <= 0.005,
    }
    print("targets:", json.dumps(targets))
    payload = {
        "machine": machine(),
        "cpu": cpu(),
        "adapter_epochs": classifier.recipe.training.epochs,
        "adapter_test_roc_auc": adapter_auc,
        "adapter": str(args.adapter)
        if args.adapter
        else f"quick: german-credit/lora training.epochs=1 {args.overrides}",
        "threads": args.threads,
        "batch_size": args.batch_size,
        "rows": len(texts),
        "tokens_per_row": tokens / len(texts),
        "repeats": args.repeats,
        "timed": "model forward only, pre-tokenized length-sorted batches (tokenization is the same for all)",
        "paths": rows,
        "targets": targets,
    }
    Path(args.output).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print("wrote", args.output)


if __name__ == "__main__":
    main()

"""Every PEFT method usable for classification on German Credit, same budget, several seeds.

    python benchmarks/methods.py [--seeds 3] [--epochs 6] [--workers 1] [--model DIR] [--only lora,ia3]

The method list is PEFT's registry (``adapters.methods.method_types``), not a list kept here. Every run
is the default recipe (german-credit/lora: same data split, epochs, batch, schedule, early stopping) with
``method`` replaced: adapters go on query/key/value (IA3 adds the feed-forward output, LN tuning takes
the LayerNorms), prompt methods get 20 virtual tokens, and the pooler trains with every method.
Learning rates are per family (below), not tuned per method. ``--workers N`` runs N processes at once
(on a GPU; on a 2-core CPU keep 1). Results: ``benchmarks/results/methods.jsonl`` (one line per run,
rerun skips finished runs), with ``methods.json`` and the table ``methods.md`` beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import time

from _common import REPO, machine, run

# Per-family learning rates (the default recipe uses 1e-3 for LoRA); sizes where PEFT's defaults
# do not divide MiniLM's 384-wide layers.
LEARNING_RATE = {
    "ia3": 5e-3,
    "prompt_tuning": 3e-2,
    "p_tuning": 3e-3,
    "prefix_tuning": 3e-3,
    "ln_tuning": 3e-3,
}
SIZES = {
    "c3a": {"block_size": 128},
    "vblora": {"vector_length": 128},
    "adalora": {"init_r": 16, "target_r": 8},
}
RESULTS = REPO / "benchmarks" / "results"


def method_overrides(method: str) -> list[str]:
    """The recipe overrides that swap the default recipe's LoRA for ``method``."""
    from adapters.methods import peft_config_class

    fields = {field.name for field in dataclasses.fields(peft_config_class(method))}
    section: dict = {"type": method}
    if "num_virtual_tokens" in fields:
        section["num_virtual_tokens"] = 20
    elif method == "ia3":
        section.update(target_modules=["key", "value", "output.dense"], feedforward_modules=["output.dense"])
    elif method == "ln_tuning":
        section["target_modules"] = ["LayerNorm"]
    elif "target_modules" in fields:
        section["target_modules"] = ["query", "key", "value"]
    if method in ("lora", "dora", "rslora"):
        section.update(r=16, lora_alpha=32, lora_dropout=0.1)
    if "modules_to_save" in fields:
        section["modules_to_save"] = ["pooler"]
    section.update(SIZES.get(method, {}))
    return [f"method={json.dumps(section)}", f"training.learning_rate={LEARNING_RATE.get(method, 1e-3)}"]


def finished(path) -> set[tuple[str, int]]:
    if not path.exists():
        return set()
    return {(row["method"], row["seed"]) for row in map(json.loads, path.read_text().splitlines()) if row}


def worker(jobs: list[tuple[str, int]], args: argparse.Namespace, path) -> None:
    for method, seed in jobs:
        started = time.perf_counter()
        overrides = [*method_overrides(method), f"training.seed={seed}", f"training.epochs={args.epochs}"]
        if args.model:
            overrides.append(f"model.name_or_path={args.model}")
        try:
            record = run("german-credit/lora", overrides)
            row = {
                "method": method,
                "seed": seed,
                "test_roc_auc": record["test"]["roc_auc"],
                "trainable_params": record["cost"]["trainable_params"],
                "trainable_percent": record["cost"]["trainable_percent"],
                "adapter_bytes": record["adapter_bytes"],
                "seconds_per_epoch": record["seconds_per_epoch"],
                "steps": record["steps"],  # early stopping: a run that ends early shows here
                "best_step": record["best_step"],
                "device": record["cost"]["device"],
                "machine": machine().get("gpu") or machine().get("cpu"),
            }
        except Exception as exc:  # a method that fails is a result too
            row = {
                "method": method,
                "seed": seed,
                "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
            }
        row["wall_seconds"] = round(time.perf_counter() - started, 1)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def summarise(path, args: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    table = []
    for method in sorted({row["method"] for row in rows}):
        done = [row for row in rows if row["method"] == method and "error" not in row]
        failed = [row for row in rows if row["method"] == method and "error" in row]
        if not done:
            table.append({"method": method, "error": failed[0]["error"]})
            continue
        aucs = [row["test_roc_auc"] for row in done]
        table.append(
            {
                "method": method,
                "runs": len(done),
                "trainable_params": done[0]["trainable_params"],
                "trainable_percent": done[0]["trainable_percent"],
                "adapter_mb": done[0]["adapter_bytes"] / 1e6,
                "seconds_per_epoch": statistics.mean(row["seconds_per_epoch"] for row in done),
                "roc_auc_mean": statistics.mean(aucs),
                "roc_auc_sd": statistics.stdev(aucs) if len(aucs) > 1 else 0.0,
                "roc_auc_by_seed": [row["test_roc_auc"] for row in sorted(done, key=lambda row: row["seed"])],
                "device": "+".join(sorted({row.get("machine") or row["device"] for row in done})),
            }
        )
    payload = {
        "summarised_on": machine(),
        "runs_on": sorted({row.get("machine", row.get("device", "?")) for row in rows if "error" not in row}),
        "epochs": args.epochs,
        "methods": table,
    }
    (path.parent / "methods.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    lines = [
        "| method | trainable params | % of base | adapter on disk (MB) | s / epoch "
        "| test ROC-AUC (mean ± sd) | by seed | measured on |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for row in sorted(table, key=lambda row: -row.get("roc_auc_mean", -1)):
        if "error" in row:
            lines.append(f"| {row['method']} | — | — | — | — | failed: {row['error']} | | |")
        else:
            lines.append(
                f"| {row['method']} | {row['trainable_params']:,} | {row['trainable_percent']:.2f} | "
                f"{row['adapter_mb']:.2f} | {row['seconds_per_epoch']:.1f} | "
                f"{row['roc_auc_mean']:.3f} ± {row['roc_auc_sd']:.3f} (n={row['runs']}) | "
                f"{' / '.join(f'{auc:.3f}' for auc in row['roc_auc_by_seed'])} | {row['device']} |"
            )
    (path.parent / "methods.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=float, default=6)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--model", default=None)
    parser.add_argument("--only", default=None, help="comma-separated method types")
    parser.add_argument("--results", default=str(RESULTS / "methods.jsonl"))
    parser.add_argument("--worker-jobs", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from pathlib import Path

    path = Path(args.results)
    if args.worker_jobs:
        worker([tuple(job) for job in json.loads(args.worker_jobs)], args, path)
        return
    from adapters.methods import method_types

    methods = args.only.split(",") if args.only else list(method_types("classification"))
    done = finished(path)
    jobs = [(method, seed) for seed in range(args.seeds) for method in methods if (method, seed) not in done]
    print(f"{len(jobs)} runs to do ({len(done)} already done) with {args.workers} worker(s)", flush=True)
    if args.workers <= 1:
        worker(jobs, args, path)
    else:
        base = [sys.executable, __file__, "--results", str(path), "--epochs", str(args.epochs)]
        if args.model:
            base += ["--model", args.model]
        processes = [
            subprocess.Popen([*base, "--worker-jobs", json.dumps(jobs[index :: args.workers])])
            for index in range(args.workers)
        ]
        for process in processes:
            process.wait()
    summarise(path, args)


if __name__ == "__main__":
    main()

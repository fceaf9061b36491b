"""German Credit resampled to 1k, 10k and 100k rows: seconds per epoch and peak memory, per size.

    python benchmarks/scaling.py [--sizes 1000,10000,100000] [--model tiny|minilm|DIR] [--epochs 1]
        [--threads 2] [--eval-rows 100] [--recipe german-credit/lora] [overrides ...]

The recipe's built-in data (South German Credit, 1000 applicants) is resampled with replacement to each
size (seed ``--seed``) and written as a CSV file, the way a user's data arrives: ``data.source`` is the
file, with the built-in template, label column and labels. Validation and test keep ``--eval-rows`` rows
each whatever the size (``data.validation_size`` and ``data.test_size`` are set to eval-rows / size), so
the timed epoch is training, plus one small evaluation at its end. Every size runs twice, each time in
a fresh process with ``--threads`` torch threads:

* ``data``: read the CSV, render, split (``prepare_data``), tokenize (``tokenize_splits``) and build
  the training loader (``make_dataloader``), with no model: seconds per stage and the process's
  resident memory after each stage and at its peak;
* ``train``: ``adapters.train`` for ``--epochs`` epochs: training seconds per epoch (the run's
  ``cost.train_seconds``, its last evaluation included) and the process's peak RSS (data preparation
  included; the library's ``cost.peak_rss_bytes``, counted from the start of training, is kept too).

Reported per size: seconds per epoch, seconds per 1000 training rows and its ratio to the smallest
size's (1.0 is linear), peak RSS of both processes and their ratio to the smallest size's (1.0 is flat). Goal
(issue 10): time linear in rows, memory flat (data stays Arrow-backed, nothing materialised); read
here as per-1000-row time within ±25 % and peak RSS at most 1.2x the smallest size's.

``--model tiny`` (the default) is a random BERT (hidden 64, 2 layers, MiniLM's tokenizer) built here:
the 100k-row epoch takes minutes on 2 cores, and data handling, not the model, is what should scale.
``--model minilm`` uses the recipe's own base model: about 1.8 s per 16-row step on 2 cores, so an
epoch of 100k rows is about 3 hours, 10k rows about 20 minutes. Writes ``benchmarks/results/scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, AnonymousPeak, ProcessPeak, machine, rss_bytes, tiny_bert, worker_env

SAME_FOOTING = {
    "training.log_with": [],
    "training.track_energy": False,
    "training.early_stopping_patience": None,
    "training.min_steps": None,  # one epoch at every size: no step floor for the small one
    "training.eval_every": 10**9,  # evaluate once, at the end: the epoch is what is timed
}


def data_overrides(spec: dict[str, Any], size: int) -> dict[str, Any]:
    """The recipe's overrides plus the CSV of ``size`` rows as its data, rendered like the built-in."""
    import adapters
    from adapters.data import resolve_data_config

    base = adapters.load_recipe(spec["recipe"], spec["overrides"])
    builtin = resolve_data_config(base.data)  # the built-in's template (protected columns left out), labels
    share = spec["eval_rows"] / size
    return {
        **spec["overrides"],
        "data.source": spec["csv"][str(size)],
        "data.format": "csv",
        "data.template": builtin.template,
        "data.label_column": builtin.label_column,
        "data.label_names": builtin.label_names,
        "data.positive_label": builtin.positive_label,
        "data.validation_size": share,
        "data.test_size": share,
    }


def data_worker(spec: dict[str, Any], size: int) -> dict[str, Any]:
    """Read, render, split, tokenize and batch ``size`` rows without a model: seconds and RSS per stage."""
    import adapters
    from adapters.data import prepare_data, resolve_data_config
    from adapters.data.tokenize import make_dataloader, tokenize_splits

    recipe = adapters.load_recipe(spec["recipe"], data_overrides(spec, size))
    config = resolve_data_config(recipe.data)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec["model_path"])
    stages: dict[str, dict[str, float]] = {}

    def stage(name: str, started: float) -> None:
        memory = rss_bytes()
        stages[name] = {
            "seconds": time.perf_counter() - started,
            "rss_bytes": memory["now"],
            "anon_bytes": memory["anon"],
        }

    stage("imports", time.perf_counter())
    with AnonymousPeak() as anonymous:  # the peak of the data stages, sampled
        started = time.perf_counter()
        prepared = prepare_data(config, task=recipe.task)
        stage("prepare_data", started)
        started = time.perf_counter()
        splits = prepared.to_datasets()
        stage("to_datasets", started)
        started = time.perf_counter()
        tokenized = tokenize_splits(splits, tokenizer, config.max_length)
        stage("tokenize", started)
        started = time.perf_counter()
        batch = recipe.training.per_device_batch_size
        loader = make_dataloader(tokenized["train"], tokenizer, batch, train=True, seed=0, group_size=batch)
        next(iter(loader))
        stage("train_loader", started)
    lengths = tokenized["train"]["length"]
    return {
        "phase": "data",
        "rows": {name: len(frame) for name, frame in prepared.frames.items()},
        "tokens_per_row": sum(lengths) / len(lengths),
        "stages": stages,
        "seconds": sum(entry["seconds"] for entry in stages.values()),
        "peak_rss_bytes": rss_bytes()["peak"],
        "peak_anon_bytes": anonymous.peak,
        "import_rss_bytes": stages["imports"]["rss_bytes"],
    }


def train_worker(spec: dict[str, Any], size: int) -> dict[str, Any]:
    """``adapters.train`` on ``size`` rows; training seconds per epoch and the process's peak RSS."""
    import adapters

    before = rss_bytes()["now"]
    process = ProcessPeak()
    with tempfile.TemporaryDirectory() as scratch, AnonymousPeak() as anonymous:
        started = time.perf_counter()
        result = adapters.train(
            spec["recipe"], data_overrides(spec, size), output_dir=Path(scratch) / "run", progress=False
        )
        call = time.perf_counter() - started
        cost = json.loads((result.output_dir / "metrics.json").read_text())["cost"]
    history = result.summary["history"]
    epochs_run = history[-1]["epoch"]
    train_seconds = history[-1].get("seconds", cost["train_seconds"])
    return {
        "phase": "train",
        "epochs_run": epochs_run,
        "steps": result.summary["steps"],
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / epochs_run,
        "call_seconds": call,
        "padding_fraction": cost.get("padding_fraction"),
        "train_samples_per_second": cost.get("train_samples_per_second"),
        "peak_rss_bytes": process.peak(),
        "training_peak_rss_bytes": cost.get("peak_rss_bytes"),
        "peak_anon_bytes": anonymous.peak,
        "peak_file_bytes": anonymous.peak_file,
        "import_rss_bytes": before,
    }


def run_worker(phase: str, size: int, scratch: Path, threads: int) -> dict[str, Any]:
    """One phase for one size in a fresh process (own datasets cache, so every CSV read is a first read)."""
    out, log = scratch / f"{phase}-{size}.json", scratch / f"{phase}-{size}.log"
    env = worker_env(threads, HF_DATASETS_CACHE=str(scratch / f"datasets-cache-{phase}-{size}"))
    command = [sys.executable, __file__, "--worker", phase, "--spec", str(scratch / "spec.json")]
    started = time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run(
            [*command, "--size", str(size), "--out", str(out)],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{phase} at {size} rows failed (exit {done.returncode}):\n{tail}")
    record = json.loads(out.read_text())
    record["process_seconds"] = time.perf_counter() - started
    return record


def write_csvs(recipe: str, sizes: list[int], seed: int, directory: Path) -> dict[str, str]:
    """The recipe's built-in rows resampled with replacement to each size, as CSV files (fresh row ids)."""
    import adapters
    from adapters.data.builtin import BUILTIN_DATASETS, load_builtin

    source = adapters.load_recipe(recipe).data.source
    if source not in BUILTIN_DATASETS:
        raise SystemExit(f"scaling resamples a built-in dataset; {recipe} reads {source}")
    rows = load_builtin(source)
    paths = {}
    for size in sizes:
        sample = rows.sample(n=size, replace=True, random_state=seed).reset_index(drop=True)
        sample["row_id"] = range(size)
        path = directory / f"{source}-{size}.csv"
        sample.to_csv(path, index=False)
        paths[str(size)] = str(path)
    return paths


def mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated row counts")
    parser.add_argument(
        "--model", default="tiny", help="tiny (random 2-layer BERT), minilm (the recipe's), or a directory"
    )
    parser.add_argument("--recipe", default="german-credit/lora")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-rows", type=int, default=100, help="validation rows and test rows, each")
    parser.add_argument("--seed", type=int, default=0, help="resampling seed")
    parser.add_argument("--output", default=str(REPO / "benchmarks/results/scaling.json"))
    parser.add_argument("--worker", choices=("data", "train"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="recipe overrides (section.key=value)")
    args = parser.parse_args()
    if args.worker:
        import torch

        spec = json.loads(Path(args.spec).read_text())
        torch.set_num_threads(spec["threads"])
        record = (data_worker if args.worker == "data" else train_worker)(spec, args.size)
        Path(args.out).write_text(json.dumps(record, indent=2))
        return

    from adapters.base_model import resolve_base_model

    sizes = sorted(int(size) for size in args.sizes.split(","))
    if sizes[0] < 4 * args.eval_rows:
        raise SystemExit(f"the smallest size must be at least 4 x --eval-rows ({4 * args.eval_rows})")
    with tempfile.TemporaryDirectory(prefix="scaling-") as scratch:
        scratch = Path(scratch)
        overrides = {
            **SAME_FOOTING,
            "training.num_threads": args.threads,
            "training.epochs": args.epochs,
            **flat(args.overrides),
        }
        if args.model == "tiny":
            overrides["model.name_or_path"] = str(tiny_bert(scratch / "tiny-bert"))
        elif args.model != "minilm":
            overrides["model.name_or_path"] = args.model
        import adapters

        recipe = adapters.load_recipe(args.recipe, overrides)
        spec = {
            "recipe": args.recipe,
            "overrides": overrides,
            "threads": args.threads,
            "eval_rows": args.eval_rows,
            "model_path": resolve_base_model(recipe.model.name_or_path)[0],
            "csv": write_csvs(args.recipe, sizes, args.seed, scratch),
        }
        (scratch / "spec.json").write_text(json.dumps(spec, indent=2))
        print(f"{args.recipe}, model {args.model}, sizes {sizes}, {args.threads} thread(s)", flush=True)
        results = []
        for size in sizes:
            data = run_worker("data", size, scratch, args.threads)
            train = run_worker("train", size, scratch, args.threads)
            results.append({"size": size, "data": data, "train": train})
            print(
                f"{size:>7} rows: data {data['seconds']:.1f}s (peak {mib(data['peak_rss_bytes'])} MiB), "
                f"epoch {train['seconds_per_epoch']:.1f}s (peak {mib(train['peak_rss_bytes'])} MiB)",
                flush=True,
            )

    first = results[0]
    for row in results:  # per training row: validation and test keep eval_rows each at every size
        row["train_rows"] = row["data"]["rows"]["train"]
        row["seconds_per_1k_rows"] = row["train"]["seconds_per_epoch"] / row["train_rows"] * 1000
    base_per_1k = first["seconds_per_1k_rows"]
    for row in results:
        row["linearity_vs_smallest"] = row["seconds_per_1k_rows"] / base_per_1k
        row["data_seconds_per_1k_rows"] = row["data"]["seconds"] / row["size"] * 1000
        row["train_peak_rss_vs_smallest"] = row["train"]["peak_rss_bytes"] / first["train"]["peak_rss_bytes"]
        row["data_peak_rss_vs_smallest"] = row["data"]["peak_rss_bytes"] / first["data"]["peak_rss_bytes"]
        row["data_growth_bytes"] = row["data"]["peak_rss_bytes"] - row["data"]["import_rss_bytes"]
        anon_first = first["train"]["peak_anon_bytes"]
        row["train_peak_anon_vs_smallest"] = row["train"]["peak_anon_bytes"] / anon_first

    print(
        f"\n{'rows':>7} | {'data s':>7} | {'data s/1k':>9} | {'epoch s':>8} | {'s/1k rows':>9} | "
        f"{'linear':>6} | "
        f"{'train peak':>10} | {'x':>5} | {'anon peak':>10} | {'x':>5} | {'data peak':>9} | {'x':>5} | "
        f"{'data growth':>11}"
    )
    for row in results:
        print(
            f"{row['size']:>7} | {row['data']['seconds']:7.1f} | {row['data_seconds_per_1k_rows']:9.2f} | "
            f"{row['train']['seconds_per_epoch']:8.1f} | {row['seconds_per_1k_rows']:9.2f} | "
            f"{row['linearity_vs_smallest']:6.2f} | {mib(row['train']['peak_rss_bytes']):>6} MiB | "
            f"{row['train_peak_rss_vs_smallest']:5.2f} | {mib(row['train']['peak_anon_bytes']):>6} MiB | "
            f"{row['train_peak_anon_vs_smallest']:5.2f} | {mib(row['data']['peak_rss_bytes']):>5} MiB | "
            f"{row['data_peak_rss_vs_smallest']:5.2f} | {mib(row['data_growth_bytes']):>7} MiB"
        )
    last = results[-1]
    print("\nresident memory after each data stage (MiB), largest size:")
    print(
        "  "
        + ", ".join(f"{name} {mib(entry['rss_bytes'])}" for name, entry in last["data"]["stages"].items())
    )
    print("anonymous memory after each data stage (MiB), largest size:")
    print(
        "  "
        + ", ".join(f"{name} {mib(entry['anon_bytes'])}" for name, entry in last["data"]["stages"].items())
    )
    targets = {
        "time_linear_within_25pct": 0.8 <= last["linearity_vs_smallest"] <= 1.25,
        "peak_rss_flat_within_1.2x": last["train_peak_rss_vs_smallest"] <= 1.2,
        "peak_anon_flat_within_1.2x": last["train_peak_anon_vs_smallest"] <= 1.2,
    }
    print("targets:", json.dumps(targets))
    payload = {
        "machine": machine(),
        "recipe": args.recipe,
        "model": args.model,
        "overrides": {key: value for key, value in overrides.items() if key != "model.name_or_path"},
        "threads": args.threads,
        "epochs": args.epochs,
        "eval_rows": args.eval_rows,
        "resample_seed": args.seed,
        "timed": (
            "train: cost.train_seconds / epochs (training plus one evaluation of eval_rows rows); "
            "data: read CSV + render + split + tokenize + first training batch, no model"
        ),
        "sizes": results,
        "targets": targets,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print("wrote", args.output)


def flat(items: list[str]) -> dict[str, Any]:
    """``section.key=value`` strings as a flat dict, values read as YAML (as the CLI reads them)."""
    import yaml

    pairs = {}
    for item in items:
        key, _, text = item.partition("=")
        pairs[key.strip()] = yaml.safe_load(text) if text.strip() else None
    return pairs


if __name__ == "__main__":
    main()

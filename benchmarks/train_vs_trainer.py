"""Our recipe vs the script a user would write from PEFT's documentation, same data, model and settings.

    python benchmarks/train_vs_trainer.py [--recipe german-credit/lora] [--pairs 2] [--threads 2]
        [--epochs E] [--model DIR|tiny] [--target-auc X] [overrides ...]

System ``adapters`` is ``adapters.train(recipe)``. System ``trainer`` is the plain script from PEFT's
docs: ``AutoModelForSequenceClassification`` + ``get_peft_model(LoraConfig(task_type=SEQ_CLS, ...))``,
``Dataset.map`` tokenization with truncation, ``DataCollatorWithPadding`` and ``transformers.Trainer``
(evaluation every epoch, no checkpoints, no loggers). Both get the same rendered texts and splits (the
library prepares them once; the trainer reads them from files), the same base model and model config
(by default the trainer loads the base model's own config, as PEFT's docs do; ``--same-config`` gives it
the recipe's ``model.config_kwargs`` too), LoRA settings,
learning rate, schedule, warm-up, weight decay, gradient clipping, batch size, epochs and seed, taken
from the resolved recipe plus any overrides. The recipe's own loggers and energy meter are switched
off (``training.log_with=[]``, ``training.track_energy=false``) as the Trainer gets ``report_to=[]``;
its early stopping stays (it is part of the recipe and only ends runs earlier).

Runs alternate A/B/A/B (``--pairs``), each in a fresh process with ``--threads`` torch threads; pair k
trains both systems with seed ``training.seed + k``. Measured
per run: the wall seconds since training started (after model load and tokenization) at each evaluation,
evaluation included; the validation ROC-AUC there; samples/s (training rows seen / those seconds); the
padding fraction of the training batches (pad positions / all positions); the test ROC-AUC (ours: the
best adapter by validation, as the recipe keeps it; the Trainer's: the model at the end, as
``save_strategy="no"`` leaves it); end-to-end seconds (model load to saved adapter with test metrics;
ours: the whole ``adapters.train`` call, which also calibrates, writes the card and the fairness
report); and the process's peak RSS. The target AUC is ``--target-auc`` or the lower of the two systems'
median best validation ROC-AUC minus 0.01 (a level both reach); time to target is the first evaluation
at or above it (so it is only as fine as the evaluations: every epoch, or ``--eval-every`` steps).
Speed-up = trainer's median time to target / ours. Goal (issue 10): ≥ 1.5x, with test ROC-AUC within
±0.01. Near the top of a validation curve a step of noise moves the first crossing by many steps, so
the report also gives the speed-up at fixed targets 0.70-0.74 and the seconds per evaluation interval
(``eval_every`` steps plus one evaluation: the rate apart from how many steps each system needs).
Writes ``benchmarks/results/train_vs_trainer.json``.

The default recipe (MiniLM, 600 training rows, 6 epochs) takes 8-20 minutes per run on 2 CPU cores,
by CPU (1.8-3.9 s per 16-row step with evaluations), so the default 2 pairs take 35-70 minutes. On a
machine with a GPU both systems use it (the Trainer gets ``use_cpu=True`` only where there is none).
``--model tiny`` (a random 2-layer BERT) checks the script in a minute; its AUCs mean nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, ProcessPeak, machine, rss_bytes, tiny_bert, worker_env

SYSTEMS = ("adapters", "trainer")
TARGET_SWEEP = (0.70, 0.71, 0.72, 0.73, 0.74)  # fixed validation ROC-AUCs, reported beside the rule's
# What the recipe does beyond training that a Trainer script does not: trackers, energy meter.
SAME_FOOTING = ["training.log_with=[]", "training.track_energy=false"]


# ----------------------------------------------------------------------------------------------------
# Parent: resolve the recipe once, write the data once, run the workers, compare.
# ----------------------------------------------------------------------------------------------------


def fingerprint(frames: dict[str, Any]) -> str:
    """sha256 over every split's texts and labels, in order."""
    digest = hashlib.sha256()
    for name in ("train", "validation", "test"):
        frame = frames[name]
        digest.update(json.dumps([name, frame["text"].tolist(), frame["label"].tolist()]).encode())
    return digest.hexdigest()


def resolved_recipe(recipe: str, overrides: list[str]) -> Any:
    """The recipe as ``adapters.train`` resolves it (built-in data filled in), plus its prepared data."""
    import adapters
    from adapters.data import prepare_data, resolve_data_config

    loaded = adapters.load_recipe(recipe, overrides)
    loaded = loaded.model_copy(update={"data": resolve_data_config(loaded.data)})
    if loaded.task != "classification" or loaded.method.type != "lora":
        raise SystemExit("train_vs_trainer compares LoRA classification recipes only")
    prepared = prepare_data(loaded.data, task=loaded.task)
    data = loaded.data.model_copy(
        update={"label_names": prepared.label_names, "positive_label": prepared.positive_label}
    )
    return loaded.model_copy(update={"data": data}), prepared


def write_spec(args: argparse.Namespace, overrides: list[str], scratch: Path) -> dict[str, Any]:
    """Prepare the data with the library, save it for the trainer, and describe both systems' settings."""
    from adapters.base_model import resolve_base_model
    from adapters.scoring import metric_kwargs

    recipe, prepared = resolved_recipe(args.recipe, overrides)
    data_dir = scratch / "data"
    data_dir.mkdir()
    for name, frame in prepared.frames.items():
        frame[["text", "label"]].to_parquet(data_dir / f"{name}.parquet", index=False)
    training = recipe.training
    spec = {
        "recipe": args.recipe,
        "overrides": overrides,
        "threads": args.threads,
        "data_dir": str(data_dir),
        "data_sha256": fingerprint(prepared.frames),
        "rows": {name: len(frame) for name, frame in prepared.frames.items()},
        "model_path": resolve_base_model(recipe.model.name_or_path)[0],
        "model_name": recipe.model.name_or_path,
        "config_kwargs": dict(recipe.model.config_kwargs) if args.same_config else {},
        "recipe_config_kwargs": dict(recipe.model.config_kwargs),
        "lora": recipe.method.peft_kwargs(),
        "max_length": recipe.data.max_length,
        "label_names": prepared.label_names,
        "positive": metric_kwargs(recipe, prepared.label_names)["positive_label"],
        "training": {
            "epochs": training.epochs,
            "batch_size": training.per_device_batch_size,
            "learning_rate": training.learning_rate,
            "scheduler": training.scheduler,
            "warmup_ratio": training.warmup_ratio,
            "weight_decay": training.weight_decay,
            "max_grad_norm": training.max_grad_norm,
            "seed": training.seed,
            "eval_every": training.eval_every,
            "early_stopping_patience": training.early_stopping_patience,
        },
    }
    (scratch / "spec.json").write_text(json.dumps(spec, indent=2))
    return spec


def pair_spec(spec: dict[str, Any], scratch: Path, pair: int) -> tuple[Path, int]:
    """The spec file of pair ``pair`` and its seed: both systems train with seed ``training.seed + pair``,
    so pairs are other seeds (what the test ROC-AUC comparison needs), not repeats of one run."""
    seed = spec["training"]["seed"] + pair
    paired = {
        **spec,
        "overrides": [*spec["overrides"], f"training.seed={seed}"],
        "training": {**spec["training"], "seed": seed},
    }
    path = scratch / f"spec-pair{pair}.json"
    path.write_text(json.dumps(paired, indent=2))
    return path, seed


def earlier_runs(path: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The complete pairs of a saved run that ``spec`` may extend: same overrides, data and CPU."""
    saved = json.loads(Path(path).read_text(encoding="utf-8"))
    here, there = machine(), saved["machine"]
    differences = [
        key
        for key, value in (
            ("overrides", spec["overrides"] != saved["overrides"]),
            ("data", spec["data_sha256"] != saved["data_sha256"]),
            *(
                (key, here.get(key) != there.get(key))
                for key in ("cpu_model", "cpu_family_model_stepping", "torch")
            ),
        )
        if value
    ]
    if differences:
        raise SystemExit(
            f"{path}: not the same benchmark here ({', '.join(differences)} differ); start a new run"
        )
    runs = complete_pairs(saved["runs"])
    pairs = sorted({run["pair"] for run in runs})
    if pairs != list(range(len(pairs))):
        raise SystemExit(f"{path}: pairs {pairs} are not 0..n-1")
    return runs


def complete_pairs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs of the pairs whose both systems finished (the last system of a pair runs last)."""
    complete = {run["pair"] for run in runs if run["system"] == SYSTEMS[-1]}
    return [run for run in runs if run["pair"] in complete]


def run_worker(system: str, spec_path: Path, index: int, threads: int) -> dict[str, Any]:
    """One run of ``system`` in a fresh process; its record, with the process's wall seconds."""
    scratch = spec_path.parent
    out, log = scratch / f"run{index}-{system}.json", scratch / f"run{index}-{system}.log"
    env = worker_env(threads)
    command = [sys.executable, __file__, "--worker", system, "--spec", str(spec_path)]
    started = time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run([*command, "--out", str(out)], env=env, stdout=handle, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{system} run {index} failed (exit {done.returncode}):\n{tail}")
    record = json.loads(out.read_text())
    record["process_seconds"] = wall
    return record


def first_reach(history: list[dict[str, Any]], target: float) -> float | None:
    """Seconds at the first evaluation whose validation ROC-AUC is at least ``target`` (None: never, or
    the history has no times)."""
    for entry in history:
        if entry.get("seconds") is None:
            return None
        if entry["validation_roc_auc"] >= target:
            return entry["seconds"]
    return None


def median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known and len(known) == len(values) else None


def summarise(runs: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """Per system: medians over its runs."""
    summary = {}
    for system in SYSTEMS:
        mine = [run for run in runs if run["system"] == system]
        times = [first_reach(run["history"], target) for run in mine]
        summary[system] = {
            "runs": len(mine),
            "reached_target": sum(time_ is not None for time_ in times),
            "seconds_to_target": times,
            "median_seconds_to_target": median(times),
            "median_best_validation_roc_auc": statistics.median(r["best_validation_roc_auc"] for r in mine),
            "median_test_roc_auc": statistics.median(r["test_roc_auc"] for r in mine),
            "median_samples_per_second": median([r["samples_per_second"] for r in mine]),
            "median_tokens_per_second": median([r.get("tokens_per_second") for r in mine]),
            "median_padding_fraction": median([r.get("padding_fraction") for r in mine]),
            "median_train_seconds": median([r["train_seconds"] for r in mine]),
            "median_end_to_end_seconds": statistics.median(r["end_to_end_seconds"] for r in mine),
            "median_process_seconds": statistics.median(r["process_seconds"] for r in mine),
            "median_peak_rss_bytes": median([r.get("peak_rss_bytes") for r in mine]),
        }
    return summary


def speedup(trainer_seconds: float | None, adapters_seconds: float | None) -> float | None:
    """How many times as fast ours is (the Trainer's seconds over ours); None when either is unknown."""
    return trainer_seconds / adapters_seconds if trainer_seconds and adapters_seconds else None


def target_sweep(runs: list[dict[str, Any]], targets: tuple[float, ...]) -> list[dict[str, Any]]:
    """Time to each of several fixed validation ROC-AUCs: where a system's curve is flat near one target,
    a step of noise moves its crossing by many steps; the sweep shows how much the ratio depends on it."""
    rows = []
    for target in targets:
        row: dict[str, Any] = {"target_auc": target}
        for system in SYSTEMS:
            times = [first_reach(run["history"], target) for run in runs if run["system"] == system]
            row[system] = {"reached": sum(t is not None for t in times), "median_seconds": median(times)}
        row["speedup"] = speedup(row["trainer"]["median_seconds"], row["adapters"]["median_seconds"])
        rows.append(row)
    return rows


def seconds_per_interval(run: dict[str, Any]) -> float | None:
    """Median wall seconds between consecutive evaluations (eval_every steps of training plus one
    evaluation), the first interval (warm-up) and a shorter last one left out: the rate, apart from
    how many steps a system needs."""
    history = run["history"]
    steps = [entry["step"] for entry in history]
    gaps = [
        later["seconds"] - earlier["seconds"]
        for earlier, later in zip(history[1:-1], history[2:], strict=False)
        if later["step"] - earlier["step"] == steps[1] - steps[0]
    ]
    return statistics.median(gaps) if gaps else None


def show(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else format(value, pattern)


def print_table(summary: dict[str, Any], target: float) -> None:
    print(
        f"\n{'system':>9} | {'s to AUC≥' + format(target, '.3f'):>14} | {'best val':>8} | {'test AUC':>8} | "
        f"{'samples/s':>9} | {'tokens/s':>8} | {'padding':>7} | {'train s':>7} | "
        f"{'end-to-end':>10} | {'peak RSS':>8}"
    )
    for system in SYSTEMS:
        row = summary[system]
        reached = f"{row['reached_target']}/{row['runs']}"
        rss = row["median_peak_rss_bytes"]
        print(
            f"{system:>9} | {show(row['median_seconds_to_target'], '.1f') + ' (' + reached + ')':>14} | "
            f"{row['median_best_validation_roc_auc']:8.4f} | {row['median_test_roc_auc']:8.4f} | "
            f"{show(row['median_samples_per_second'], '.2f'):>9} | "
            f"{show(row['median_tokens_per_second'], '.0f'):>8} | "
            f"{show(row['median_padding_fraction'], '.1%'):>7} | "
            f"{show(row['median_train_seconds'], '.1f'):>7} | "
            f"{row['median_end_to_end_seconds']:10.1f} | {show(rss and rss / 2**20, '.0f') + ' MiB':>8}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", default="german-credit/lora")
    parser.add_argument("--pairs", type=int, default=2, help="A/B pairs (runs alternate adapters, trainer)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=float, default=None, help="training.epochs (default: the recipe's)")
    parser.add_argument("--model", default=None, help="base model directory, or 'tiny' (random 2-layer BERT)")
    parser.add_argument("--target-auc", type=float, default=None)
    parser.add_argument(
        "--eval-every",
        type=int,
        default=None,
        help="evaluate every N steps in both systems (default: the recipe's, every epoch); finer steps "
        "time the target more closely and cost both systems more evaluation",
    )
    parser.add_argument(
        "--same-config",
        action="store_true",
        help="the trainer also gets the recipe's model.config_kwargs (e.g. attention dropout 0); by "
        "default it loads the base model's own config.json, as a user following PEFT's docs would",
    )
    parser.add_argument("--output", default=str(REPO / "benchmarks/results/train_vs_trainer.json"))
    parser.add_argument(
        "--report-partial",
        metavar="PATH",
        help="report the finished pairs of a cut-off run from its .partial.json instead of training",
    )
    parser.add_argument(
        "--continue-from",
        metavar="PATH",
        help="add --pairs more pairs (the next seeds) to a finished run's JSON and report all of them: the "
        "same recipe, overrides and data, refused on another CPU (a session too short for enough pairs)",
    )
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="recipe overrides for both systems (section.key=value)")
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(Path(args.spec).read_text())
        record = (adapters_worker if args.worker == "adapters" else trainer_worker)(spec)
        Path(args.out).write_text(json.dumps(record, indent=2))
        return

    if args.report_partial:  # the pairs a cut-off run finished, reported as a whole run would be
        saved = json.loads(Path(args.report_partial).read_text(encoding="utf-8"))
        spec, runs = saved["spec"], complete_pairs(saved["runs"])
        args.threads = spec["threads"]
    else:
        with tempfile.TemporaryDirectory(prefix="train-vs-trainer-") as scratch:
            scratch = Path(scratch)
            overrides = [*SAME_FOOTING, f"training.num_threads={args.threads}", *args.overrides]
            if args.eval_every is not None:
                overrides.append(f"training.eval_every={args.eval_every}")
            if args.epochs is not None:
                overrides.append(f"training.epochs={args.epochs}")
            if args.model == "tiny":
                overrides.append(f"model.name_or_path={tiny_bert(scratch / 'tiny-bert')}")
            elif args.model:
                overrides.append(f"model.name_or_path={args.model}")
            spec = write_spec(args, overrides, scratch)
            runs = earlier_runs(args.continue_from, spec) if args.continue_from else []
            first_pair = len({run["pair"] for run in runs})
            print(
                f"{args.recipe} {' '.join(overrides)}\nrows {spec['rows']}, model {spec['model_path']}, "
                f"{args.pairs} pair(s), {args.threads} thread(s)",
                flush=True,
            )
            partial = Path(args.output).with_suffix(".partial.json")  # what a cut-off benchmark leaves
            for pair in range(first_pair, first_pair + args.pairs):
                spec_path, seed = pair_spec(spec, scratch, pair)
                for system in SYSTEMS:
                    record = run_worker(system, spec_path, len(runs), args.threads)
                    record["pair"], record["seed"] = pair, seed
                    runs.append(record)
                    partial.write_text(
                        json.dumps({"spec": spec, "runs": runs}, indent=2) + "\n", encoding="utf-8"
                    )
                    last = record["history"][-1] if record["history"] else {}
                    print(
                        f"pair {pair + 1} {system:>8}: best val AUC {record['best_validation_roc_auc']:.4f}, "
                        f"test AUC {record['test_roc_auc']:.4f}, train {record['train_seconds']:.1f}s "
                        f"({last.get('epoch', '?')} epochs), end to end {record['end_to_end_seconds']:.1f}s",
                        flush=True,
                    )
    args.pairs = len({run["pair"] for run in runs})
    mismatched = [run["system"] for run in runs if run["data_sha256"] != spec["data_sha256"]]
    if mismatched:
        raise SystemExit(f"the systems did not see the same data: {mismatched}")

    best = {
        s: statistics.median(r["best_validation_roc_auc"] for r in runs if r["system"] == s) for s in SYSTEMS
    }
    target = args.target_auc if args.target_auc is not None else min(best.values()) - 0.01
    summary = summarise(runs, target)
    ours, theirs = summary["adapters"], summary["trainer"]
    headline = speedup(theirs["median_seconds_to_target"], ours["median_seconds_to_target"])
    pair_ratios = []
    for pair in range(args.pairs):
        a, b = (next(r for r in runs if r["pair"] == pair and r["system"] == s) for s in SYSTEMS)
        ta, tb = first_reach(a["history"], target), first_reach(b["history"], target)
        pair_ratios.append(speedup(tb, ta))
    sweep = target_sweep(runs, TARGET_SWEEP)
    interval = {
        system: median([seconds_per_interval(run) for run in runs if run["system"] == system])
        for system in SYSTEMS
    }
    interval_ratio = speedup(interval["trainer"], interval["adapters"])
    auc_diff = ours["median_test_roc_auc"] - theirs["median_test_roc_auc"]
    targets = {
        "speedup_to_same_auc_at_least_1.5x": headline is not None and headline >= 1.5,
        "test_roc_auc_within_0.01": abs(auc_diff) <= 0.01,
    }
    print_table(summary, target)
    print(
        f"\nspeed-up to validation ROC-AUC ≥ {target:.4f} (trainer / adapters): {show(headline, '.2f')}x "
        f"(per pair: {', '.join(show(r, '.2f') for r in pair_ratios)}); goal ≥ 1.5x"
    )
    print(f"test ROC-AUC adapters - trainer: {auc_diff:+.4f} (goal within ±0.01)")
    print("speed-up at fixed targets (trainer / adapters, median seconds; runs that reached it):")
    for row in sweep:
        print(
            f"  AUC ≥ {row['target_auc']:.2f}: {show(row['speedup'], '.2f')}{'x' if row['speedup'] else ''} "
            f"({show(row['trainer']['median_seconds'], '.0f')} s, {row['trainer']['reached']}/{args.pairs} / "
            f"{show(row['adapters']['median_seconds'], '.0f')} s, {row['adapters']['reached']}/{args.pairs})"
        )
    print(
        f"seconds per {spec['training']['eval_every']} steps + one evaluation: trainer "
        f"{show(interval['trainer'], '.1f')}, adapters {show(interval['adapters'], '.1f')} "
        f"({show(interval_ratio, '.2f')}x)"
    )
    print("targets:", json.dumps(targets))
    if args.model:
        print("(a --model other than the recipe's: the figures check the script, not the recipe)")
    payload = {
        "machine": machine(),
        "recipe": args.recipe,
        "overrides": spec["overrides"],
        "model": spec["model_name"],
        "model_path": spec["model_path"],
        "rows": spec["rows"],
        "data_sha256": spec["data_sha256"],
        "settings": {"lora": spec["lora"], **spec["training"], "max_length": spec["max_length"]},
        "trainer_config_kwargs": spec["config_kwargs"],
        "recipe_config_kwargs": spec["recipe_config_kwargs"],
        "threads": args.threads,
        "pairs": args.pairs,
        "order": [run["system"] for run in runs],
        "target_auc": target,
        "target_auc_rule": "given" if args.target_auc is not None else "min(median best validation) - 0.01",
        "speedup_to_target": headline,
        "speedup_per_pair": pair_ratios,
        "test_roc_auc_diff": auc_diff,
        "target_sweep": sweep,
        "median_seconds_per_eval_interval": interval,
        "eval_interval_speedup": interval_ratio,
        "systems": summary,
        "targets": targets,
        "runs": runs,
        "timed": (
            "seconds since training started (model loaded, data tokenized) at each evaluation, "
            "evaluation included; end_to_end_seconds: data already rendered, from loading the model to "
            "a saved adapter with test metrics (ours: the whole adapters.train call); process_seconds: "
            "the whole worker process, imports and the data checksum included"
        ),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    Path(args.output).with_suffix(".partial.json").unlink(missing_ok=True)
    print("wrote", args.output)


# ----------------------------------------------------------------------------------------------------
# Workers: one training run each, in its own process.
# ----------------------------------------------------------------------------------------------------


def adapters_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """``adapters.train`` on the recipe; times from its history, padding and rates from its cost report."""
    import datasets  # noqa: F401  (imported before the clock starts, as the trainer's script does)
    import peft  # noqa: F401
    import torch
    import transformers  # noqa: F401

    import adapters

    torch.set_num_threads(spec["threads"])
    recipe, prepared = resolved_recipe(spec["recipe"], spec["overrides"])
    sha = fingerprint(prepared.frames)
    process = ProcessPeak()
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        result = adapters.train(
            spec["recipe"], spec["overrides"], output_dir=Path(scratch) / "run", progress=False
        )
        end_to_end = time.perf_counter() - started
        reported = json.loads((result.output_dir / "metrics.json").read_text())
    cost, history = reported["cost"], result.summary["history"]
    train_rows = len(prepared.frames["train"])
    epochs_run = history[-1]["epoch"]
    train_seconds = history[-1].get("seconds", cost["train_seconds"])
    padding, tokens = cost.get("padding_fraction"), None
    padding_source = "metrics.json cost"
    if padding is None:  # an older library: count what its own train loader gives, epoch by epoch
        padding, tokens = library_padding(recipe, prepared, spec["model_path"], math.ceil(epochs_run))
        padding_source = "recounted from the library's train loader"
    tokens_per_second = cost.get("train_tokens_per_second")
    if tokens_per_second is None and tokens is not None:
        tokens_per_second = tokens / train_seconds
    return {
        "system": "adapters",
        "data_sha256": sha,
        "end_to_end_seconds": end_to_end,
        "history": [
            {key: entry.get(key) for key in ("step", "epoch", "seconds", "validation_roc_auc")}
            for entry in history
        ],
        "history_has_seconds": all("seconds" in entry for entry in history),
        "best_validation_roc_auc": max(entry["validation_roc_auc"] for entry in history),
        "test_roc_auc": reported["test"]["roc_auc"],
        "test_model": "best by validation ROC-AUC (early stopping patience "
        f"{spec['training']['early_stopping_patience']})",
        "epochs_run": epochs_run,
        "steps": result.summary["steps"],
        "train_seconds": train_seconds,
        "samples_per_second": train_rows * epochs_run / train_seconds,
        "library_samples_per_second": cost.get("train_samples_per_second"),
        "tokens_per_second": tokens_per_second,
        "padding_fraction": padding,
        "padding_source": padding_source,
        "peak_rss_bytes": process.peak(),
        "training_peak_rss_bytes": cost.get("peak_rss_bytes"),
    }


def library_padding(recipe: Any, prepared: Any, model_path: str, epochs: int) -> tuple[float, int]:
    """Padding fraction and real tokens of ``epochs`` epochs of the library's train loader."""
    from transformers import AutoTokenizer

    from adapters.data.tokenize import make_dataloader, tokenize_splits

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train = tokenize_splits(prepared.to_datasets(), tokenizer, recipe.data.max_length)["train"]
    size = recipe.training.per_device_batch_size
    loader = make_dataloader(
        train,
        tokenizer,
        size,
        train=True,
        seed=recipe.training.seed,
        group_size=size,
        group_by_length=recipe.training.group_by_length,
    )
    real = positions = 0
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            real += int(batch["attention_mask"].sum())
            positions += batch["attention_mask"].numel()
    return 1 - real / positions, real


class CountingCollator:
    """``DataCollatorWithPadding`` that also counts rows, real tokens and padded positions (measurement
    only: the batches are exactly what the wrapped collator returns)."""

    def __init__(self, collator: Any) -> None:
        self.collator, self.rows, self.real, self.positions = collator, 0, 0, 0

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        batch = self.collator(features)
        mask = batch["attention_mask"]
        self.rows += mask.shape[0]
        self.real += int(mask.sum())
        self.positions += mask.numel()
        return batch


def trainer_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """The script from PEFT's docs, with a callback noting the time of each evaluation."""
    import datasets
    import numpy as np
    import pandas as pd
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from sklearn.metrics import roc_auc_score
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    torch.set_num_threads(spec["threads"])
    settings, positive = spec["training"], spec["positive"]
    frames = {name: pd.read_parquet(Path(spec["data_dir"]) / f"{name}.parquet") for name in spec["rows"]}
    sha = fingerprint(frames)
    started = time.perf_counter()
    set_seed(settings["seed"])
    labels = spec["label_names"]

    tokenizer = AutoTokenizer.from_pretrained(spec["model_path"])
    model = AutoModelForSequenceClassification.from_pretrained(
        spec["model_path"],
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: index for index, name in enumerate(labels)},
        **spec["config_kwargs"],
    )
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, **spec["lora"]))

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(batch["text"], truncation=True, max_length=spec["max_length"])

    splits = {
        name: datasets.Dataset.from_pandas(frame, preserve_index=False).map(
            tokenize, batched=True, remove_columns=["text"]
        )
        for name, frame in frames.items()
    }

    def compute_metrics(prediction: Any) -> dict[str, float]:
        logits, references = prediction
        shifted = np.exp(logits - logits.max(-1, keepdims=True))
        probabilities = shifted / shifted.sum(-1, keepdims=True)
        return {"roc_auc": float(roc_auc_score(references == positive, probabilities[:, positive]))}

    class Clock(TrainerCallback):
        """Seconds since training began at each evaluation (measurement only)."""

        def __init__(self) -> None:
            self.started, self.history = 0.0, []

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            self.history.append(
                {
                    "step": state.global_step,
                    "epoch": round(state.epoch or 0.0, 3),
                    "seconds": round(time.perf_counter() - self.started, 3),
                    "validation_roc_auc": metrics["eval_roc_auc"],
                }
            )

    train_counter = CountingCollator(DataCollatorWithPadding(tokenizer))
    eval_collator = DataCollatorWithPadding(tokenizer)

    class CountedTrainer(Trainer):
        """The Trainer, whose training loader alone goes through the counting collator (measurement only)."""

        def get_train_dataloader(self):
            self.data_collator = train_counter
            try:
                return super().get_train_dataloader()
            finally:
                self.data_collator = eval_collator

    warmup = {"warmup_steps": settings["warmup_ratio"]}  # transformers 5: a float below 1 is a ratio
    if "warmup_ratio" in {field.name for field in dataclasses.fields(TrainingArguments)}:
        warmup = {"warmup_ratio": settings["warmup_ratio"]}
    with tempfile.TemporaryDirectory() as scratch:
        arguments = TrainingArguments(
            output_dir=scratch,
            eval_strategy="epoch" if settings["eval_every"] == "epoch" else "steps",
            eval_steps=None if settings["eval_every"] == "epoch" else settings["eval_every"],
            save_strategy="no",
            logging_strategy="epoch",
            per_device_train_batch_size=settings["batch_size"],
            per_device_eval_batch_size=settings["batch_size"],
            learning_rate=settings["learning_rate"],
            num_train_epochs=settings["epochs"],
            lr_scheduler_type=settings["scheduler"],
            weight_decay=settings["weight_decay"],
            max_grad_norm=settings["max_grad_norm"] or 0.0,
            seed=settings["seed"],
            report_to=[],
            use_cpu=not torch.cuda.is_available(),  # CPU here; where a GPU is, both systems use it
            dataloader_num_workers=0,
            disable_tqdm=True,
            **warmup,
        )
        clock = Clock()
        trainer = CountedTrainer(
            model=model,
            args=arguments,
            train_dataset=splits["train"],
            eval_dataset=splits["validation"],
            data_collator=eval_collator,
            compute_metrics=compute_metrics,
            callbacks=[clock],
        )
        output = trainer.train()
        test = trainer.predict(splits["test"])
        model.save_pretrained(Path(scratch) / "adapter")
        end_to_end = time.perf_counter() - started
    history = clock.history
    train_seconds = history[-1]["seconds"]
    return {
        "system": "trainer",
        "data_sha256": sha,
        "end_to_end_seconds": end_to_end,
        "history": history,
        "history_has_seconds": True,
        "best_validation_roc_auc": max(entry["validation_roc_auc"] for entry in history),
        "test_roc_auc": compute_metrics((test.predictions, test.label_ids))["roc_auc"],
        "test_model": "the model after the last epoch (save_strategy='no')",
        "epochs_run": history[-1]["epoch"],
        "steps": output.global_step,
        "train_seconds": train_seconds,
        "samples_per_second": train_counter.rows / train_seconds,
        "library_samples_per_second": output.metrics.get("train_samples_per_second"),
        "tokens_per_second": train_counter.real / train_seconds,
        "padding_fraction": 1 - train_counter.real / max(1, train_counter.positions),
        "padding_source": "counted in the training collator",
        "peak_rss_bytes": rss_bytes()["peak"],
    }


if __name__ == "__main__":
    main()

"""DP-LoRA on German Credit: test ROC-AUC and a membership-inference attack at several epsilons.

    python benchmarks/privacy.py [--epsilons 1,3,8,inf] [--seeds 0,1,2] [--epochs 10] [--batch 64]
                                 [--lr 2e-3] [--train-fraction 1.0] [--model DIR] [overrides ...]

Every cell trains the default recipe (german-credit/lora: same split, LoRA r=16 on query/key/value,
pooler and head trained, warmup + linear decay, early stopping on validation) with ``training.seed``
set, and for a finite epsilon ``training.privacy.epsilon`` (delta 1/n, clipping norm 1.0, PRV
accountant). ``inf`` trains without privacy. Extra ``key=value`` recipe overrides apply to every cell
(e.g. ``method.modules_to_save=[]`` to train fewer weights, which DP noise favours).

Why not the recipe's batch 16, lr 1e-3, 6 epochs: DP-SGD's noise on the averaged gradient has standard
deviation sigma * C / B, so a larger batch B cuts it, and at a fixed epsilon the noise multiplier sigma
grows only slowly with the number of steps; private training therefore wants larger batches, more
epochs and a somewhat higher learning rate (Li et al. 2022, "Large language models can be strong
differentially private learners"). Batch 64 (sampling rate 1/10 of 600 rows), 10 epochs (100 steps)
and lr 2e-3 are applied to every epsilon, ``inf`` included, so only the clipping, the noise and Poisson
sampling differ between columns.

Membership inference: the loss-threshold attack (Yeom et al. 2018). Each row's loss under the trained
weights (cross-entropy of the raw logits: the weights are what DP protects; calibration is fitted on
validation rows) is the attack's score, lower loss meaning "member". Members are training rows,
non-members the test rows, subsampled to equal counts; the attack AUC is the ROC-AUC of -loss, 0.5 being
no better than chance.

Results: ``benchmarks/results/privacy.json`` (rewritten after every cell). A rerun skips the cells
already there with the same settings, so the grid (12 trainings) can be run in pieces.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, machine

RESULTS = REPO / "benchmarks" / "results" / "privacy.json"
SETTINGS = ("epochs", "batch", "lr", "train_fraction", "model", "overrides")


def _epsilon(text: str) -> float:
    return math.inf if text.strip().lower() in ("inf", "infinity", "none") else float(text)


def _label(epsilon: float) -> str:
    return "inf" if math.isinf(epsilon) else f"{epsilon:g}"


def overrides(epsilon: float, seed: int, args: argparse.Namespace) -> list[str]:
    """The recipe overrides of one cell; only the privacy line differs between epsilons."""
    lines = [
        f"training.seed={seed}",
        f"training.epochs={args.epochs}",
        f"training.per_device_batch_size={args.batch}",
        f"training.learning_rate={args.lr}",
        f"data.train_fraction={args.train_fraction}",
    ]
    if args.model:
        lines.append(f"model.name_or_path={args.model}")
    lines.extend(args.overrides)
    if not math.isinf(epsilon):
        lines.append(f"training.privacy.epsilon={epsilon}")
    return lines


def attack_auc(classifier: Any, seed: int) -> dict[str, float]:
    """Loss-threshold membership inference: training rows vs as many test rows, AUC of -loss."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from adapters.data import prepare_data

    frames = prepare_data(classifier.recipe.data, task=classifier.recipe.task).frames
    members, others = frames["train"], frames["test"]
    count = min(len(members), len(others))
    rng = np.random.default_rng(seed)
    members = members.iloc[rng.choice(len(members), count, replace=False)]
    others = others.iloc[rng.choice(len(others), count, replace=False)]

    def losses(frame: Any) -> np.ndarray:
        logits = classifier.logits(frame["text"].tolist()).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -log_probabilities[np.arange(len(frame)), frame["label"].to_numpy(dtype=int)]

    member_loss, other_loss = losses(members), losses(others)
    truth = np.r_[np.ones(count), np.zeros(count)]
    return {
        "mia_auc": float(roc_auc_score(truth, -np.r_[member_loss, other_loss])),
        "mia_rows_each": count,
        "train_loss": float(member_loss.mean()),
        "heldout_loss": float(other_loss.mean()),
    }


def run_cell(epsilon: float, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    import adapters

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        result = adapters.train(
            "german-credit/lora",
            overrides(epsilon, seed, args),
            output_dir=Path(scratch) / "run",
            progress=False,
        )
        directory = result.output_dir
        metrics = json.loads((directory / "metrics.json").read_text())
        lineage = json.loads((directory / "lineage.json").read_text())
        attack = attack_auc(result.load(), seed)
    spent = metrics.get("privacy") or lineage.get("privacy") or {}
    return {
        "epsilon": _label(epsilon),
        "seed": seed,
        **{key: getattr(args, key) for key in SETTINGS},
        "test_roc_auc": metrics["test"]["roc_auc"],
        "validation_roc_auc": metrics["validation"]["roc_auc"],
        **attack,
        "spent_epsilon": spent.get("epsilon"),
        "delta": spent.get("delta"),
        "noise_multiplier": spent.get("noise_multiplier"),
        "steps": result.summary.get("steps"),
        "best_step": result.summary.get("best_step"),
        "train_seconds": metrics["cost"].get("train_seconds"),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "device": metrics["cost"].get("device"),
    }


def summarise(runs: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Per epsilon (these settings only): mean and sd over seeds, and the gap to epsilon = inf."""
    same = [run for run in runs if all(run.get(key) == settings[key] for key in SETTINGS)]

    def spread(values: list[float]) -> tuple[float, float]:
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    table = []
    for label in sorted({run["epsilon"] for run in same}, key=_epsilon):
        cells = [run for run in same if run["epsilon"] == label]
        auc, auc_sd = spread([run["test_roc_auc"] for run in cells])
        mia, mia_sd = spread([run["mia_auc"] for run in cells])
        spent = [run["spent_epsilon"] for run in cells if run.get("spent_epsilon") is not None]
        table.append(
            {
                "epsilon": label,
                "runs": len(cells),
                "test_roc_auc": auc,
                "test_roc_auc_sd": auc_sd,
                "mia_auc": mia,
                "mia_auc_sd": mia_sd,
                "spent_epsilon_max": max(spent) if spent else None,
                "minutes_per_run": statistics.mean(run["wall_seconds"] for run in cells) / 60,
            }
        )
    reference = next((row for row in table if row["epsilon"] == "inf"), None)
    for row in table:
        if reference is not None:
            row["roc_auc_minus_inf"] = row["test_roc_auc"] - reference["test_roc_auc"]
            row["mia_closer_to_half_than_inf"] = abs(row["mia_auc"] - 0.5) < abs(reference["mia_auc"] - 0.5)
    return table


def markdown(table: list[dict[str, Any]]) -> str:
    lines = [
        "| ε (target) | ε spent (max) | test ROC-AUC (mean ± sd) | Δ vs ε=∞ | MIA AUC (mean ± sd) | runs "
        "| min / run |",
        "|---|---:|---|---:|---|---:|---:|",
    ]
    for row in table:
        spent = f"{row['spent_epsilon_max']:.2f}" if row["spent_epsilon_max"] is not None else "—"
        gap = f"{row['roc_auc_minus_inf']:+.3f}" if "roc_auc_minus_inf" in row else "—"
        lines.append(
            f"| {'∞ (no DP)' if row['epsilon'] == 'inf' else row['epsilon']} | {spent} | "
            f"{row['test_roc_auc']:.3f} ± {row['test_roc_auc_sd']:.3f} | {gap} | "
            f"{row['mia_auc']:.3f} ± {row['mia_auc_sd']:.3f} | {row['runs']} | {row['minutes_per_run']:.1f} |"
        )
    return "\n".join(lines)


def _write(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.partial")
    temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epsilons", default="1,3,8,inf", help="comma-separated; inf = no privacy")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--batch", type=int, default=64, help="per_device_batch_size")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--train-fraction", type=float, default=1.0)
    parser.add_argument("--model", default=None, help="base model dir or Hub id (default: the recipe's)")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("overrides", nargs="*", help="extra recipe overrides (key=value) for every cell")
    args = parser.parse_args()
    epsilons = [_epsilon(text) for text in args.epsilons.split(",")]
    seeds = [int(text) for text in args.seeds.split(",")]
    settings = {key: getattr(args, key) for key in SETTINGS}
    path = Path(args.results)
    payload = json.loads(path.read_text()) if path.exists() else {"recipe": "german-credit/lora", "runs": []}
    done = {
        (run["epsilon"], run["seed"])
        for run in payload["runs"]
        if all(run.get(key) == settings[key] for key in SETTINGS)
    }
    cells = [(e, s) for e in epsilons for s in seeds if (_label(e), s) not in done]
    print(f"{len(cells)} cells to run ({len(done)} done with these settings: {settings})", flush=True)
    for epsilon, seed in cells:
        row = run_cell(epsilon, seed, args)
        payload["runs"].append(row)
        payload["machine"] = machine()
        payload["summary"] = summarise(payload["runs"], settings)
        payload["settings"] = settings
        _write(path, payload)
        print(json.dumps(row), flush=True)
    table = summarise(payload["runs"], settings)
    print(markdown(table))
    eight = next((row for row in table if row["epsilon"] == "8"), None)
    if eight is not None and "roc_auc_minus_inf" in eight:
        print(
            f"goal: ε=8 within 0.05 ROC-AUC of ε=∞: {'yes' if eight['roc_auc_minus_inf'] >= -0.05 else 'no'} "
            f"({eight['roc_auc_minus_inf']:+.3f}); MIA AUC closer to 0.5 than ε=∞: "
            f"{'yes' if eight['mia_closer_to_half_than_inf'] else 'no'}"
        )
    print("wrote", path)


if __name__ == "__main__":
    main()

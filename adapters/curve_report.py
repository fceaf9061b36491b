"""What a learning curve says, in three files: ``curve.csv`` (one row per cell), ``curve.png`` (the primary
metric against the fraction of labels) and ``curve.md`` (the findings in plain words).

Draws of a few dozen rows differ by more than the effects sought, so two systems are compared on the
*same* draws: the per-draw difference adapter − other, its mean, and a 95 % t-interval over the draws.
An interval that excludes 0 is a difference the draws support; one that straddles 0 is not, whatever the
means say.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["findings", "paired_difference", "paired_table", "summary_table", "write_reports"]

TITLES = {
    "adapter": "adapter",
    "stack": "adapter + best baseline (stack)",
    "full_finetune": "full fine-tune",
    "ensemble": "seed ensemble (mean of the adapters)",
}
ORDER = (
    "adapter",
    "logistic_regression",
    "hist_gradient_boosting",
    "tfidf_logistic_regression",
    "stack",
    "ensemble",
)
METRIC_NAMES = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "log_loss": "log loss", "f1": "F1", "ks": "KS"}
GOAL_SHARE, GOAL_MARGIN, GOAL_FULL = 0.95, 0.03, 0.80  # the German Credit issue's goals (ROC-AUC)
# From a trained cell's metrics.json "cost" into curve.csv (empty for baselines and stacks).
COST_COLUMNS = (
    "train_seconds",
    "peak_rss_bytes",
    "trainable_params",
    "checkpoint_bytes",
    "train_samples_per_second",
    "train_tokens_per_second",
    "padding_fraction",
    "estimated_train_flops",
)
# adapter / full fine-tuning: (column, what it is, how a mean is shown)
RATIOS = (
    ("wall_seconds", "training time", lambda v: f"{v:.0f} s"),
    ("peak_rss_bytes", "peak memory (RSS)", lambda v: f"{v / 2**30:.2f} GiB"),
    ("energy_kwh", "energy", lambda v: f"{1000 * v:.2f} Wh"),
    ("checkpoint_bytes", "checkpoint size", lambda v: f"{v / 2**20:.3g} MiB"),
)


def title(system: str) -> str:
    """A system's name in prose: the registry's title for a baseline."""
    from adapters.baselines import BASELINES
    from adapters.curve_cells import VARIANT

    if system.startswith(VARIANT):
        return f"adapter, variant {system.removeprefix(VARIANT)}"
    return TITLES.get(system) or (BASELINES[system].title if system in BASELINES else system)


def paired_difference(first: Sequence[float], second: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean of ``first − second`` over paired draws with a two-sided t-interval (n − 1 degrees of freedom).

    With one draw there is no interval (``low``/``high`` None); identical differences give a zero-width one.
    """
    from scipy import stats

    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    n = len(differences)
    mean = float(differences.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "sd": None, "n": n, "low": None, "high": None, "excludes_zero": False}
    sd = float(differences.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    return {"mean": mean, "sd": sd, "n": n, "low": low, "high": high, "excludes_zero": low > 0 or high < 0}


def summary_table(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, sd (ddof 1; 0 for one draw), draws and mean n_train per system × fraction."""
    grouped = rows.groupby(["system", "fraction"], sort=False)[metric]
    table = grouped.agg(mean="mean", sd="std", n="count").reset_index()
    table["sd"] = table["sd"].fillna(0.0)
    table["n_train"] = rows.groupby(["system", "fraction"], sort=False)["n_train"].mean().to_numpy()
    return table


def paired_table(rows: pd.DataFrame, metric: str) -> list[dict[str, Any]]:
    """Adapter − each other system, per fraction, over the draws (seeds) both have."""
    adapter = rows[rows["system"] == "adapter"]
    result = []
    for system in (s for s in rows["system"].unique() if s != "adapter"):
        other = rows[rows["system"] == system]
        for fraction in sorted(other["fraction"].unique()):
            joined = adapter[adapter["fraction"] == fraction].merge(
                other[other["fraction"] == fraction], on="seed", suffixes=("", "_other")
            )
            found = paired_difference(joined[metric], joined[f"{metric}_other"])
            result.append({"system": system, "fraction": float(fraction), **found})
    return result


def _mean(summary: pd.DataFrame, system: str, fraction: float) -> float | None:
    hit = summary[(summary["system"] == system) & np.isclose(summary["fraction"], fraction)]
    return float(hit["mean"].iloc[0]) if len(hit) else None


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def _interval(found: dict[str, Any]) -> str:
    if found["low"] is None:
        return f"{_signed(found['mean'])} (one draw, no interval)"
    low, high = _signed(found["low"]), _signed(found["high"])
    return f"{_signed(found['mean'])} (95 % CI {low} to {high}, n = {found['n']})"


def _verdict(found: dict[str, Any], greater_is_better: bool) -> str:
    if not found["excludes_zero"]:
        return "no clear difference"
    return "adapter better" if (found["mean"] > 0) == greater_is_better else "adapter worse"


def _share(fraction: float) -> str:
    return f"{100 * fraction:g} %"


def _kept_shares(
    summary: pd.DataFrame, systems: Sequence[str], small: float, full: float, metric: str
) -> list[str]:
    """Per system, its mean at the small fraction and the share of its own mean at the largest one kept
    there; the adapter first."""
    reference = "full-data" if np.isclose(full, 1.0) else f"{_share(full)}-of-labels"
    parts = []
    for system in systems:
        at_small, at_full = _mean(summary, system, small), _mean(summary, system, full)
        if at_small is None or at_full is None:
            continue
        share = f"{100 * at_small / at_full:.0f} %" if at_full else "n/a"
        if system == "adapter":
            first = (
                f"the adapter reaches {share} of its {reference} {metric} ({at_small:.3f} vs {at_full:.3f})"
            )
            parts.insert(0, first)
        else:
            parts.append(f"{title(system)} reaches {at_small:.3f} ({share} of its own)")
    return parts


def findings(summary: pd.DataFrame, pairs: list[dict[str, Any]], context: dict[str, Any]) -> list[str]:
    """The plain-language sentences: share of full-data quality kept at the small fraction, per system,
    and what the paired differences support there."""
    metric = METRIC_NAMES.get(context["primary"], context["primary"])
    fractions = sorted(summary["fraction"].unique())
    full = fractions[-1]
    small = 0.1 if any(np.isclose(fractions, 0.1)) and full > 0.1 else fractions[0]
    n_train = summary[np.isclose(summary["fraction"], small)]["n_train"].mean()
    opening = f"With {_share(small)} of the labels (about {n_train:.0f} training rows) "
    systems = summary["system"].unique()
    if len(fractions) < 2:  # no curve to read, but what these labels give each system still is
        means = [
            f"{_mean(summary, s, small):.3f} for {'the adapter' if s == 'adapter' else title(s)}"
            for s in systems
        ]
        lines = [opening + f"the mean {metric} is " + ", ".join(means) + ". Only this fraction was run."]
    else:
        lines = [opening + "; ".join(_kept_shares(summary, systems, small, full, metric)) + "."]
    here = [p for p in pairs if np.isclose(p["fraction"], small)]
    for found in here:
        lines.append(
            f"On the same {found['n']} draws at {_share(small)}, adapter − {title(found['system'])} = "
            f"{_interval(found)}: {_verdict(found, context['greater_is_better'])}."
        )
    fewest = min((p["n"] for p in here), default=10)
    if fewest < 10 and small <= 0.1:
        lines.append(
            f"Only {fewest} draws at {_share(small)}: at least 10 are needed to read these differences."
        )
    return lines


def _goals(summary: pd.DataFrame, pairs: list[dict[str, Any]]) -> list[str]:
    """The German Credit issue's targets for ROC-AUC, each met / not met / not measured."""
    at_small, at_full = _mean(summary, "adapter", 0.1), _mean(summary, "adapter", 1.0)
    lr = next(
        (p for p in pairs if p["system"] == "logistic_regression" and np.isclose(p["fraction"], 0.1)), None
    )
    missing = "not measured (needs fractions 0.1 and 1.0)"
    margin = "not measured (needs --baselines, a table source and fraction 0.1)"
    if lr is not None:
        margin = "met" if lr["mean"] >= GOAL_MARGIN else "not met"
        if lr["low"] is None or (lr["low"] < GOAL_MARGIN <= lr["mean"]):
            margin += " on the mean; the draws' interval does not exclude less"
    share = at_small / at_full if at_small and at_full else None
    rows = [
        (
            f"adapter at 10 % ≥ {100 * GOAL_SHARE:g} % of its full-data ROC-AUC",
            f"{100 * share:.1f} %" if share is not None else "",
            missing if share is None else ("met" if share >= GOAL_SHARE else "not met"),
        ),
        (
            f"adapter at 10 % ≥ logistic regression at 10 % + {GOAL_MARGIN}",
            _interval(lr) if lr else "",
            margin,
        ),
        (
            f"adapter on full data ≥ {GOAL_FULL}",
            f"{at_full:.3f}" if at_full is not None else "",
            "not measured (needs fraction 1.0)"
            if at_full is None
            else ("met" if at_full >= GOAL_FULL else "not met"),
        ),
    ]
    return ["| goal | measured | status |", "|---|---|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows)]


def _cell_cost(output_dir: Path, cell: dict[str, Any]) -> dict[str, Any]:
    """The cost columns of a trained cell, from the ``metrics.json`` kept beside its ``cell.json``."""
    from adapters.curve_cells import cell_path, is_trained

    if not is_trained(cell["system"]):
        return {}
    path = cell_path(output_dir, cell["system"], cell["fraction"], cell["seed"]) / "metrics.json"
    try:
        cost = json.loads(path.read_text(encoding="utf-8")).get("cost") or {}
    except (OSError, ValueError):
        return {}
    if "checkpoint_bytes" not in cost and "trainable_params" in cost:  # cells from before it was reported
        cost["checkpoint_bytes"] = 4 * cost["trainable_params"]  # float32 weights
    return {key: cost.get(key) for key in COST_COLUMNS}


def _cost_ratios(rows: pd.DataFrame) -> list[str]:
    """Adapter / full fine-tuning per fraction: means over the draws both systems have."""
    full = rows[rows["system"] == "full_finetune"]
    if full.empty:
        return []
    lines = [
        "",
        "## Cost: adapter / full fine-tuning, same draws",
        "",
        "Each cell: the ratio of the means over the draws both have (adapter vs full fine-tuning); "
        "training time is the whole cell (loading, training, evaluations), memory the run's peak RSS, "
        "checkpoint size what each must store (the adapter and head vs every weight).",
        "",
        "| fraction | draws | " + " | ".join(name for _, name, _ in RATIOS) + " |",
        "|---|---|" + "---|" * len(RATIOS),
    ]
    for fraction in sorted(full["fraction"].unique()):
        theirs = full[np.isclose(full["fraction"], fraction)]
        ours = rows[
            (rows["system"] == "adapter")
            & np.isclose(rows["fraction"], fraction)
            & rows["seed"].isin(theirs["seed"])
        ]
        theirs = theirs[theirs["seed"].isin(ours["seed"])]
        cells = []
        for column, _, shown in RATIOS:
            mine, other = pd.to_numeric(ours[column]).mean(), pd.to_numeric(theirs[column]).mean()
            ok = np.isfinite(mine) and np.isfinite(other) and other > 0
            cells.append(f"{mine / other:.3g}x ({shown(mine)} vs {shown(other)})" if ok else "n/a")
        lines.append(f"| {fraction:g} | {len(ours)} | " + " | ".join(cells) + " |")
    return lines


def _stack_table(weights: list[dict[str, Any]]) -> list[str]:
    """Per fraction: the baseline blended in (best mean validation score there) and the adapter's weights."""
    lines = ["| fraction | blended with | adapter's weight per draw |", "|---|---|---|"]
    for fraction in sorted({w["fraction"] for w in weights}):
        here = sorted((w for w in weights if w["fraction"] == fraction), key=lambda w: w["seed"])
        shown = ", ".join(f"{w['weight']:g}" for w in here)
        lines.append(f"| {fraction:g} | {title(here[0]['baseline'])} | {shown} |")
    return lines


def _markdown(rows: pd.DataFrame, summary: pd.DataFrame, pairs: list[dict], context: dict[str, Any]) -> str:
    metric = context["primary"]
    fractions = sorted(summary["fraction"].unique())
    better = "higher" if context["greater_is_better"] else "lower"
    lines = [
        f"# Learning curve: {context['recipe']}",
        "",
        f"Primary metric: **{METRIC_NAMES.get(metric, metric)}** ({better} is better), "
        f"on the same {context['test_rows']} test rows for every cell; fractions are of the "
        f"{context['train_rows']} training rows, each draw a stratified sub-sample.",
        "",
        "## Findings",
        "",
        *(f"- {line}" for line in findings(summary, pairs, context)),
        "",
        f"## {METRIC_NAMES.get(metric, metric)}: mean ± sd over draws (n draws)",
        "",
        "| system | " + " | ".join(f"{f:g}" for f in fractions) + " |",
        "|---|" + "---|" * len(fractions),
    ]
    for system in summary["system"].unique():
        cells = []
        for fraction in fractions:
            hit = summary[(summary["system"] == system) & np.isclose(summary["fraction"], fraction)]
            row = hit.iloc[0] if len(hit) else None
            cells.append("" if row is None else f"{row['mean']:.3f} ± {row['sd']:.3f} ({row['n']:.0f})")
        lines.append(f"| {title(system)} | " + " | ".join(cells) + " |")
    if pairs:
        lines += [
            "",
            "## Paired differences: adapter − other, same draws",
            "",
            "Each draw's difference, averaged, with a 95 % t-interval; an interval that excludes 0 is a "
            "difference the draws support.",
            "",
            "| other system | fraction | mean difference | 95 % CI | n | excludes 0 | reading |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in pairs:
            interval = "" if p["low"] is None else f"{_signed(p['low'])} to {_signed(p['high'])}"
            excludes, reading = (
                "yes" if p["excludes_zero"] else "no",
                _verdict(p, context["greater_is_better"]),
            )
            lines.append(
                f"| {title(p['system'])} | {p['fraction']:g} | {_signed(p['mean'])} | {interval} | "
                f"{p['n']} | {excludes} | {reading} |"
            )
    if context.get("stack"):
        lines += ["", "## Stack: p = w·adapter + (1 − w)·baseline, w fitted on validation", ""]
        lines += _stack_table(context["stack"])
    lines += _cost_ratios(rows)
    if metric == "roc_auc":
        lines += ["", "## Goals (German Credit issue, ROC-AUC)", "", *_goals(summary, pairs)]
    lines += [
        "",
        "Per-cell values (every metric, wall seconds, energy, the trained cells' cost) are in curve.csv.",
        "",
    ]
    return "\n".join(lines)


def _plot(summary: pd.DataFrame, metric: str, path: Path) -> None:
    """Mean ± sd per system against the fraction (log x-axis), saved atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    systems = list(summary["system"].unique())
    for index, system in enumerate(systems):
        part = summary[summary["system"] == system].sort_values("fraction")
        dodge = 10 ** (0.012 * (index - (len(systems) - 1) / 2))  # side by side: equal lines stay visible
        axis.errorbar(
            part["fraction"] * dodge,
            part["mean"],
            yerr=part["sd"],
            marker="o",
            capsize=3,
            label=title(system),
        )
    fractions = sorted(summary["fraction"].unique())
    axis.set_xscale("log")
    axis.set_xticks(fractions, [f"{f:g}" for f in fractions])
    axis.minorticks_off()
    axis.set_xlabel("fraction of training labels (log scale)")
    axis.set_ylabel(f"{METRIC_NAMES.get(metric, metric)} on the test split (mean ± sd)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(handle)
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    os.replace(temporary, path)


def write_reports(output_dir: Path, cells: list[dict[str, Any]], context: dict[str, Any]) -> pd.DataFrame:
    """Write ``curve.csv`` (one row per cell), ``curve.png`` and ``curve.md`` into ``output_dir``, each
    atomically; return the rows."""
    from adapters.curve_cells import MEMBER, _write_atomic

    output_dir.mkdir(parents=True, exist_ok=True)
    rows = pd.DataFrame(
        [
            {
                **{key: cell[key] for key in ("system", "fraction", "seed", "n_train")},
                **cell["metrics"],
                **{key: cell[key] for key in ("wall_seconds", "energy_kwh")},
                **dict.fromkeys(COST_COLUMNS),
                **_cell_cost(output_dir, cell),
            }
            for cell in cells
        ]
    )
    order = {name: index for index, name in enumerate(ORDER)}
    rows = rows.sort_values(
        ["fraction", "seed", "system"],
        key=lambda c: c.map(order).fillna(len(order)) if c.name == "system" else c,
    ).reset_index(drop=True)
    stacked = (c for c in cells if c["system"] == "stack")
    context = {
        **context,
        "stack": [{k: c[k] for k in ("fraction", "seed", "baseline", "weight")} for c in stacked],
    }
    _write_atomic(output_dir / "curve.csv", rows.to_csv(index=False))
    metric = context["primary"]
    # An ensemble's members are the adapter with other seeds: in curve.csv, but read through the ensemble.
    shown = rows[~rows["system"].str.startswith(MEMBER)]
    summary = summary_table(shown, metric)
    _plot(summary, metric, output_dir / "curve.png")
    _write_atomic(output_dir / "curve.md", _markdown(rows, summary, paired_table(shown, metric), context))
    return rows

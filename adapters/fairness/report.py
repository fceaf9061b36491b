"""The numbers of the fairness report: groups, per-group rates with fairlearn, gaps and the gap check.

What each number means, and why small or one-class groups are left out of the gaps, is in the package
docstring (:mod:`adapters.fairness`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from adapters.errors import AdaptersUserError
from adapters.recipe import FairnessAttributeConfig

__all__ = [
    "CAVEATS",
    "check_fairness",
    "fairness_report",
    "gap_warning",
    "group_order",
    "group_values",
    "max_gap",
]

WHERE = "eval.fairness"
CAVEATS = (
    "Test split only: every figure comes from the rows of one held-out split and carries sampling error.",
    "Small groups: a rate in a group of n rows moves by 1/n with one applicant; read n before a gap.",
    "Proxies: attributes kept out of the input still correlate with others the model reads (in credit "
    "data: job, housing, employment duration, ...), so excluding them does not make decisions independent "
    "of them.",
)


def _number(value: float) -> str:
    return f"{value:g}"


def _bin_labels(attribute: FairnessAttributeConfig) -> list[str]:
    """The configured labels, or "under 25" / "25 to under 40" / "40 and over" from the edges."""
    if attribute.labels:
        return list(attribute.labels)
    edges = sorted(attribute.bins or [])
    return [
        f"under {_number(edges[0])}",
        *(f"{_number(a)} to under {_number(b)}" for a, b in zip(edges, edges[1:], strict=False)),
        f"{_number(edges[-1])} and over",
    ]


def group_values(attribute: FairnessAttributeConfig, table: pd.DataFrame) -> pd.Series:
    """Each row's group name: the bin of a binned column (``bins: [25]`` → below 25 / 25 and over, bins
    closed on the left), else the value itself; a missing value is the group ``"missing"``."""
    column = table[attribute.column]
    if attribute.bins is not None:
        numbers = pd.to_numeric(column, errors="coerce")
        if numbers.isna().all() and column.notna().any():
            raise AdaptersUserError(
                f"column {attribute.column!r} is not numeric; bins need numbers (or drop bins)", where=WHERE
            )
        edges = [-math.inf, *sorted(attribute.bins), math.inf]
        groups = pd.cut(numbers, edges, right=False, labels=_bin_labels(attribute))
        return groups.astype(object).where(groups.notna(), "missing").astype(str)
    return column.astype(object).where(column.notna(), "missing").astype(str)


def group_order(attribute: FairnessAttributeConfig, groups: pd.Series) -> list[str]:
    """The groups present, in reading order: bins low to high, other values sorted; "missing" last."""
    present = set(groups)
    names = _bin_labels(attribute) if attribute.bins is not None else sorted(present - {"missing"})
    return [name for name in [*names, "missing"] if name in present]


def check_fairness(attributes: list[FairnessAttributeConfig], table: pd.DataFrame) -> None:
    """Refuse, before any work, an attribute whose column is not in the data or cannot be binned."""
    for attribute in attributes:
        if attribute.not_reported is not None:
            continue
        if attribute.column not in table.columns:
            raise AdaptersUserError(
                f"fairness column {attribute.column!r} is not in the data; columns: "
                f"{', '.join(map(str, table.columns))}",
                where=WHERE,
            )
        group_values(attribute, table)


def _rates(threshold: float):
    """Per-group metric functions of (labels, P(bad)) for fairlearn's MetricFrame."""
    from sklearn.metrics import roc_auc_score

    def declined(scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) >= threshold

    def share(mask: np.ndarray, of: np.ndarray) -> float:
        return float(mask[of].mean()) if of.any() else math.nan

    return {
        "n": lambda y, s: int(len(y)),
        "bad_rate": lambda y, s: float(np.mean(y)),
        "mean_p_bad": lambda y, s: float(np.mean(s)),
        "approval_rate": lambda y, s: float(1 - declined(s).mean()),
        "tpr": lambda y, s: share(declined(s), np.asarray(y) == 1),
        "fpr": lambda y, s: share(declined(s), np.asarray(y) == 0),
        "roc_auc": lambda y, s: float(roc_auc_score(y, s)) if len(set(np.asarray(y))) == 2 else math.nan,
    }


def _clean(value: Any, key: str = "") -> Any:
    if key == "n":
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else round(float(value), 6)
    return int(value) if isinstance(value, np.integer) else value


def _gap(
    function: Any, labels: np.ndarray, decisions: np.ndarray, groups: np.ndarray, kept: list[str]
) -> Any:
    """A fairlearn gap over the rows of the ``kept`` groups; None when fewer than two groups are kept."""
    rows = np.isin(groups, kept)
    if len(kept) < 2:
        return None
    return _clean(function(labels[rows], decisions[rows], sensitive_features=groups[rows]))


def _model_table(
    labels: np.ndarray, scores: np.ndarray, groups: pd.Series, kept: dict[str, list[str]], threshold: float
) -> dict[str, Any]:
    """One model's per-group table (groups in ``kept["order"]``) and its gaps for one attribute, each
    over the groups ``kept`` for it."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    values = groups.to_numpy()
    frame = MetricFrame(metrics=_rates(threshold), y_true=labels, y_pred=scores, sensitive_features=values)
    by_group = frame.by_group.reindex(kept["order"])
    approved = (scores < threshold).astype(int)  # selection rate = approval rate for parity
    return {
        "groups": [
            {"group": group, **{k: _clean(v, k) for k, v in row.items()}}
            for group, row in by_group.iterrows()
        ],
        "overall": {k: _clean(v, k) for k, v in frame.overall.items()},
        "threshold": threshold,
        "demographic_parity_difference": _gap(
            demographic_parity_difference, labels, approved, values, kept["parity"]
        ),
        "demographic_parity_ratio": _gap(demographic_parity_ratio, labels, approved, values, kept["parity"]),
        # TPR / FPR with bad as positive, so the decisions are "declined"; the gap is the same either way
        "equalized_odds_difference": _gap(
            equalized_odds_difference, labels, 1 - approved, values, kept["odds"]
        ),
    }


def _kept_groups(
    attribute: FairnessAttributeConfig, labels: np.ndarray, groups: pd.Series
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Which groups enter the parity and the equalized-odds gaps, and why the others do not.

    Too small a group (``min_group_size``) is left out of both; a group of one class also out of equalized
    odds, whose TPR or FPR it cannot define (fairlearn would count it as 0).
    """
    order = group_order(attribute, groups)
    sizes = groups.value_counts()
    bad = pd.Series(labels, index=groups.index).groupby(groups).mean()
    reasons: dict[str, str] = {}
    for group in order:
        if sizes[group] < attribute.min_group_size:
            reasons[group] = f"n = {sizes[group]} < min_group_size {attribute.min_group_size}"
        elif bad[group] in (0.0, 1.0):
            reasons[group] = f"only {'bad' if bad[group] else 'good'} rows: TPR / FPR undefined"
    parity = [group for group in order if sizes[group] >= attribute.min_group_size]
    odds = [group for group in parity if group not in reasons]
    return {"order": order, "parity": parity, "odds": odds}, reasons


def fairness_report(
    attributes: list[FairnessAttributeConfig],
    table: pd.DataFrame,
    labels: Any,
    scores: Any,
    threshold: float,
    baseline_scores: Any = None,
    baseline_threshold: float | None = None,
) -> dict[str, Any]:
    """The report for rows ``table`` with true ``labels`` (1 = bad/positive) and ``scores`` = P(bad).

    ``baseline_scores`` (same rows) adds the baseline's table to each attribute, at ``baseline_threshold``
    (default: ``threshold``). ``not_reported`` attributes carry their reason and no numbers.
    """
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    if not len(labels) == len(scores) == len(table):
        raise ValueError(f"{len(table)} rows, {len(labels)} labels and {len(scores)} scores")
    check_fairness(attributes, table)
    cut = threshold if baseline_threshold is None else baseline_threshold
    results = []
    for attribute in attributes:
        entry: dict[str, Any] = {"column": attribute.column}
        if attribute.not_reported is not None:
            results.append({**entry, "reported": False, "reason": attribute.not_reported})
            continue
        groups = group_values(attribute, table.reset_index(drop=True))
        kept, reasons = _kept_groups(attribute, labels, groups)
        entry.update(
            reported=True,
            bins=attribute.bins,
            min_group_size=attribute.min_group_size,
            left_out_of_gaps=reasons,
            adapter=_model_table(labels, scores, groups, kept, threshold),
        )
        if baseline_scores is not None:
            baseline = np.asarray(baseline_scores, dtype=float)
            entry["baseline"] = _model_table(labels, baseline, groups, kept, cut)
        results.append(entry)
    return {
        "rows": len(labels),
        "decision": "decline when P(bad) >= threshold; approval = not declined",
        "threshold": threshold,
        "baseline_threshold": None if baseline_scores is None else cut,
        "attributes": results,
    }


def max_gap(report: dict[str, Any], model: str = "adapter") -> float | None:
    """The largest demographic-parity or equalized-odds difference of ``model`` over reported attributes."""
    gaps = [
        value
        for entry in report["attributes"]
        if entry.get("reported")
        for value in (
            entry[model]["demographic_parity_difference"],
            entry[model]["equalized_odds_difference"],
        )
        if value is not None
    ]
    return max(gaps) if gaps else None


def gap_warning(report: dict[str, Any], limit: float | None) -> str | None:
    """The warning to print when the adapter's largest gap exceeds ``eval.fairness_max_gap``, else None."""
    gap = max_gap(report)
    if limit is None or gap is None or gap <= limit:
        return None
    worst = [
        f"{entry['column']} {name.replace('_', ' ')} {entry['adapter'][name]:.3f}"
        for entry in report["attributes"]
        if entry.get("reported")
        for name in ("demographic_parity_difference", "equalized_odds_difference")
        if (entry["adapter"][name] or 0) > limit
    ]
    return f"fairness gap {gap:.3f} exceeds eval.fairness_max_gap {limit} ({'; '.join(worst)})"

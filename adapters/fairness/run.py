"""The fairness report for a recipe: checked before training, made after it (and by ``adapters eval``).

The adapter's scores and decision threshold come from the run (or the saved artifact); the baseline of
:mod:`adapters.baselines` is fitted on the recipe's own training split and scored on the same rows, so the
two tables compare models trained on the same data and reading the same attributes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adapters.errors import AdaptersUserError
from adapters.fairness.output import write_fairness
from adapters.fairness.report import CAVEATS, WHERE, check_fairness, fairness_report, gap_warning, max_gap

__all__ = ["applies", "check_recipe_fairness", "report_for_run", "run_fairness"]


def check_recipe_fairness(recipe: Any, data: Any) -> None:
    """Before training: ``eval.fairness`` needs a two-label classification and its columns in the data."""
    if recipe.task != "classification" or len(data.label_names) != 2:
        what = recipe.task if recipe.task != "classification" else f"{len(data.label_names)} labels"
        raise AdaptersUserError(
            f"the fairness report needs a two-label classification (this recipe: {what})", where=WHERE
        )
    check_fairness(recipe.eval.fairness, data.tables["test"])


def applies(recipe: Any, label_names: list[str]) -> bool:
    """A report is made for binary classification recipes that list ``eval.fairness`` attributes."""
    return bool(recipe.eval.fairness) and recipe.task == "classification" and len(label_names) == 2


def run_fairness(
    recipe: Any,
    table: pd.DataFrame,
    label_ids: Any,
    scores: Any,
    threshold: float,
    training: Any = None,
) -> dict[str, Any]:
    """The whole report for a recipe on rows ``table``: true label ids, the adapter's P(positive) and its
    cut-off; the baseline is fitted on ``training`` (prepared data with ``tables``; None: no baseline) and
    scored on the same rows. Adds what the input left out, the gap check and the caveats; warns on stderr
    when the gap exceeds ``eval.fairness_max_gap``.
    """
    from adapters.baselines import Baseline, run_baseline

    label_names = recipe.data.label_names
    positive_label = recipe.data.positive_label or label_names[-1]
    labels = (np.asarray(label_ids) == label_names.index(positive_label)).astype(int)
    if training is None:
        baseline = Baseline("logistic_regression", skipped="the training rows are not available to fit it")
    else:
        baseline = run_baseline(recipe, training, extra={"rows": table.reset_index(drop=True)})
    baseline_scores = baseline.scores.get("rows")
    report = fairness_report(
        recipe.eval.fairness, table, labels, scores, threshold, baseline_scores, baseline.threshold
    )
    gap, limit = max_gap(report), recipe.eval.fairness_max_gap
    report.update(
        positive_label=positive_label,
        threshold_rule=recipe.eval.threshold,
        baseline=baseline.describe(),
        excluded_from_text=list(recipe.data.exclude_from_text),
        max_gap=gap,
        baseline_max_gap=max_gap(report, "baseline") if baseline_scores is not None else None,
        max_gap_allowed=limit,
        gap_exceeded=bool(limit is not None and gap is not None and gap > limit),
        caveats=list(CAVEATS),
    )
    message = gap_warning(report, limit)
    if message:
        print(f"warning: {message}", file=sys.stderr)
    return report


def report_for_run(staging: Path, outcome: Any, recipe: Any, data: Any) -> dict[str, Any] | None:
    """After training: the report on the test split at the saved decision threshold, written into
    ``staging`` (None when the recipe asks for none)."""
    if not applies(recipe, data.label_names):
        return None
    positive = data.label_names.index(data.positive_label)
    threshold = float(outcome.built.model.get_base_model().config.decision_threshold)
    test = data.frames["test"]["label"]
    scores = outcome.test_probabilities[:, positive]
    report = run_fairness(recipe, data.tables["test"], test, scores, threshold, training=data)
    write_fairness(staging, report)
    return report

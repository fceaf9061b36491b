"""Built-in metrics for the tasks beyond classification, as local ``evaluate.Metric`` modules (offline).

Regression takes one predicted number and one target per example; multi-label takes per-label
probabilities and multi-hot targets, cut at per-label thresholds (tuned on validation after training,
0.5 before). Computed with scikit-learn.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import datasets
import evaluate
import numpy as np

from adapters.errors import AdaptersUserError

__all__ = ["TASK_BUILTINS", "TaskMetric", "best_thresholds"]


def _regression(name: str, predicted: np.ndarray, target: np.ndarray) -> float:
    from sklearn import metrics

    if name == "mse":
        return float(metrics.mean_squared_error(target, predicted))
    if name == "rmse":
        return float(np.sqrt(metrics.mean_squared_error(target, predicted)))
    if name == "mae":
        return float(metrics.mean_absolute_error(target, predicted))
    return float(metrics.r2_score(target, predicted)) if len(target) > 1 else float("nan")


def _multi_label(name: str, hard: np.ndarray, target: np.ndarray) -> float:
    from sklearn import metrics

    if name == "subset_accuracy":
        return float(metrics.accuracy_score(target, hard))
    kind, average = name.split("_")
    scorer = {"f1": metrics.f1_score, "precision": metrics.precision_score, "recall": metrics.recall_score}[
        kind
    ]
    return float(scorer(target, hard, average=average, zero_division=0))


TASK_BUILTINS = {
    "regression": ("mse", "rmse", "mae", "r2"),
    "token_classification": ("entity_f1", "entity_precision", "entity_recall", "token_accuracy"),
    "sft": ("perplexity",),
    "multi_label": (
        "f1_micro",
        "f1_macro",
        "precision_micro",
        "recall_micro",
        "precision_macro",
        "recall_macro",
        "subset_accuracy",
    ),
}


def entity_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """(start, end, type) of each BIO entity; an I- tag without its B- starts an entity (as seqeval)."""
    spans, start, kind = set(), None, None
    for index, tag in enumerate([*tags, "O"]):
        prefix, _, name = tag.partition("-")
        if start is not None and (prefix != "I" or name != kind):
            spans.add((start, index, kind))
            start, kind = None, None
        if prefix == "B" or (prefix == "I" and start is None):
            start, kind = index, name
    return spans


def _token_scores(
    name: str, predicted: list[list[int]], target: list[list[int]], labels: Sequence[str]
) -> float:
    if name == "token_accuracy":
        pairs = [
            (p, t)
            for row_p, row_t in zip(predicted, target, strict=True)
            for p, t in zip(row_p, row_t, strict=True)
        ]
        return float(np.mean([p == t for p, t in pairs])) if pairs else float("nan")
    found = hits = expected = 0
    for row_p, row_t in zip(predicted, target, strict=True):
        spans_p = entity_spans([labels[i] for i in row_p])
        spans_t = entity_spans([labels[i] for i in row_t])
        found, expected, hits = found + len(spans_p), expected + len(spans_t), hits + len(spans_p & spans_t)
    precision = hits / found if found else 0.0
    recall = hits / expected if expected else 0.0
    if name == "entity_precision":
        return precision
    if name == "entity_recall":
        return recall
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def best_thresholds(probabilities: np.ndarray, targets: np.ndarray) -> list[float]:
    """Per label, the cut-off in 0.05..0.95 with the highest F1 on these rows (ties: closest to 0.5)."""
    from sklearn.metrics import f1_score

    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    chosen = []
    for column in range(targets.shape[1]):
        scores = [
            f1_score(targets[:, column], probabilities[:, column] >= cut, zero_division=0) for cut in grid
        ]
        best = max(scores)
        chosen.append(
            float(
                min(
                    (cut for cut, score in zip(grid, scores, strict=True) if score == best),
                    key=lambda cut: abs(cut - 0.5),
                )
            )
        )
    return chosen


class TaskMetric(evaluate.Metric):
    """One regression or multi-label built-in; ``thresholds`` (multi-label) are fixed at construction."""

    def __init__(
        self,
        name: str,
        task: str,
        thresholds: Sequence[float] | None = None,
        label_names: Sequence[str] | None = None,
        keep_in_memory: bool = True,
        **kw: Any,
    ) -> None:
        builtins = TASK_BUILTINS.get(task, ())
        if name not in builtins:
            raise AdaptersUserError(
                f"unknown metric {name!r} for task {task}; built-ins: {', '.join(builtins)}", "eval.metrics"
            )
        self.metric_name, self.task = name, task
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=float)
        self.label_names = list(label_names or [])
        super().__init__(config_name=name, keep_in_memory=keep_in_memory, **kw)
        self.info.module_name = name

    def _build_data_dir(self) -> str:
        return os.path.join(self._data_dir_root, self.metric_name, self.config_name)

    def _info(self) -> evaluate.MetricInfo:
        value = datasets.Value("float64")
        kind = value if self.task == "regression" else datasets.Sequence(value)
        if self.task == "token_classification":
            kind = datasets.Sequence(datasets.Value("int64"))
        if self.task == "sft":  # (summed response loss, response tokens) per row
            return evaluate.MetricInfo(
                description="perplexity of the responses (exp of the mean loss per response token)",
                citation="",
                features=datasets.Features({"predictions": datasets.Sequence(value), "references": value}),
            )
        return evaluate.MetricInfo(
            description=f"{self.metric_name} ({self.task})",
            citation="",
            features=datasets.Features({"predictions": kind, "references": kind}),
        )

    def _compute(self, predictions: Any = None, references: Any = None) -> dict[str, float]:
        if self.task == "sft":
            pairs = np.asarray(predictions, dtype=float).reshape(-1, 2)
            return {"perplexity": float(np.exp(pairs[:, 0].sum() / max(pairs[:, 1].sum(), 1.0)))}
        if self.task == "token_classification":
            rows_p, rows_t = [list(row) for row in predictions], [list(row) for row in references]
            return {self.metric_name: _token_scores(self.metric_name, rows_p, rows_t, self.label_names)}
        predicted, target = np.asarray(predictions, dtype=float), np.asarray(references, dtype=float)
        if self.task == "regression":
            return {self.metric_name: _regression(self.metric_name, predicted, target)}
        cut = self.thresholds if self.thresholds is not None else np.full(predicted.shape[1], 0.5)
        return {self.metric_name: _multi_label(self.metric_name, predicted >= cut, target >= 0.5)}

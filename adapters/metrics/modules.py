"""Built-in metrics as local ``evaluate.Metric`` modules that work offline.

``evaluate.load("accuracy")`` downloads a script from the Hub, which fails without internet and on
locked-down training machines. Every built-in here is instead one :class:`ProbabilityMetric`
instance: an ``evaluate.Metric`` whose inputs are per-example probability vectors and int label ids,
so it composes with ``evaluate.combine`` like any Hub metric.

Configuration (``positive_label``, ``threshold``, ``cost_matrix``) is fixed at construction because
``evaluate.combine(...).compute()`` forwards the same keyword arguments to every module, so a
per-metric option passed at compute time would reach (and break) the others.

Multiclass behaviour: accuracy, the ``*_macro`` metrics, log_loss and roc_auc use all classes; the
binary-style metrics (precision/recall/f1, pr_auc, brier, ece, ks, gini) are one-vs-rest on
``positive_label``; hard predictions are argmax when there are more than two classes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import datasets
import evaluate
import numpy as np

from adapters.errors import AdaptersUserError
from adapters.metrics import credit
from adapters.metrics.credit import Scores

__all__ = ["BUILTIN_METRICS", "ProbabilityMetric", "prepare_inputs", "validate_config"]


# ---------------------------------------------------------------------------------------------
# classification scorers (credit-specific ones live in credit.py)


def _accuracy(s: Scores) -> float:
    """Share of examples whose hard prediction equals the reference."""
    return float(np.mean(s.predicted == s.references))


def _binary_counts(s: Scores) -> tuple[int, int, int]:
    """(tp, fp, fn) of the one-vs-rest view on positive_label."""
    pred_pos = s.predicted == s.positive_label
    tp = int(np.sum(pred_pos & s.is_positive))
    return tp, int(np.sum(pred_pos & ~s.is_positive)), int(np.sum(~pred_pos & s.is_positive))


def _ratio(num: float, den: float) -> float:
    """num / den with sklearn's ``zero_division=0`` convention."""
    return float(num / den) if den > 0 else 0.0


def _precision(s: Scores) -> float:
    """Precision on positive_label (one-vs-rest), 0 when nothing is predicted positive."""
    tp, fp, _ = _binary_counts(s)
    return _ratio(tp, tp + fp)


def _recall(s: Scores) -> float:
    """Recall on positive_label (one-vs-rest), 0 when no positive example occurs."""
    tp, _, fn = _binary_counts(s)
    return _ratio(tp, tp + fn)


def _f1(s: Scores) -> float:
    """F1 on positive_label (one-vs-rest), 0 when undefined."""
    tp, fp, fn = _binary_counts(s)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _macro(index: int, what: str) -> Callable[[Scores], float]:
    """Macro average over the classes present in references or predictions (sklearn's default).

    Classes that never occur in either are left out rather than counted as 0, so a tiny validation
    split that lacks a rare class is not penalised for it.
    """

    def score(s: Scores) -> float:
        from sklearn.metrics import precision_recall_fscore_support

        values = precision_recall_fscore_support(s.references, s.predicted, average="macro", zero_division=0)
        return float(values[index])

    score.__doc__ = f"Macro-averaged {what} over the classes present in references or predictions."
    return score


def _roc_auc(s: Scores) -> float:
    """Binary: AUC of P(positive). Multiclass: one-vs-rest macro AUC.

    The multiclass average skips classes absent from the references (sklearn would raise) and is NaN
    when fewer than two classes occur; with all classes present it equals sklearn's
    ``roc_auc_score(..., multi_class="ovr", average="macro")``.
    """
    if s.num_classes == 2:
        return float(credit.auc(s.score, s.is_positive))
    present = np.unique(s.references)
    if present.size < 2:
        return math.nan
    targets = s.references[:, None] == present[None, :]
    return float(np.mean(credit.auc(s.probabilities[:, present], targets)))


def _pr_auc(s: Scores) -> float:
    """Average precision of P(positive); NaN when no positive example occurs (undefined)."""
    from sklearn.metrics import average_precision_score

    if not s.is_positive.any():
        return math.nan
    return float(average_precision_score(s.is_positive, s.score))


def _log_loss(s: Scores) -> float:
    """Mean -log p[true class], clipped to [eps, 1 - eps] like sklearn, over all classes.

    Computed directly instead of via sklearn so probabilities are used as given: sklearn warns at
    every evaluation when float32 softmax outputs do not sum to one within float64 precision.
    """
    eps = np.finfo(np.float64).eps
    p_true = s.probabilities[np.arange(s.references.size), s.references]
    return float(-np.mean(np.log(np.clip(p_true, eps, 1.0 - eps))))


_SCORERS: dict[str, Callable[[Scores], float]] = {
    "accuracy": _accuracy,
    "precision": _precision,
    "recall": _recall,
    "f1": _f1,
    "precision_macro": _macro(0, "precision"),
    "recall_macro": _macro(1, "recall"),
    "f1_macro": _macro(2, "F1"),
    "roc_auc": _roc_auc,
    "pr_auc": _pr_auc,
    "log_loss": _log_loss,
    "brier": credit.brier,
    "ece": credit.ece,
    "ks": credit.ks,
    "gini": credit.gini,
    "expected_cost": credit.expected_cost,
}

BUILTIN_METRICS: tuple[str, ...] = tuple(_SCORERS)


# ---------------------------------------------------------------------------------------------
# validation shared by the modules and compute_metrics


def validate_config(
    positive_label: int, threshold: float, cost_matrix: Sequence[Sequence[float]] | None
) -> np.ndarray | None:
    """Check the options that do not depend on the data; return the cost matrix as an array."""
    if isinstance(positive_label, bool) or not isinstance(positive_label, (int, np.integer)):
        raise AdaptersUserError(f"must be an int label id, got {positive_label!r}", "positive_label")
    if positive_label < 0:
        raise AdaptersUserError(f"must be >= 0, got {positive_label}", "positive_label")
    if not (isinstance(threshold, (int, float)) and 0.0 <= float(threshold) <= 1.0):
        raise AdaptersUserError(f"must be a probability in [0, 1], got {threshold!r}", "threshold")
    if cost_matrix is None:
        return None
    try:
        costs = np.asarray(cost_matrix, dtype=np.float64)
    except (TypeError, ValueError):
        costs = np.empty(0)
    if costs.ndim != 2 or costs.shape[0] != costs.shape[1] or costs.shape[0] < 2:
        raise AdaptersUserError(
            f"must be a square list of lists cost[true][predicted], got {cost_matrix!r}", "cost_matrix"
        )
    if not np.all(np.isfinite(costs)):
        raise AdaptersUserError("must contain finite numbers only", "cost_matrix")
    return costs


def prepare_inputs(
    predictions: Any,
    references: Any,
    positive_label: int = 1,
    threshold: float = 0.5,
    cost_matrix: np.ndarray | None = None,
) -> Scores:
    """Turn probabilities (n, num_classes) and label ids (n,) into a checked :class:`Scores` view."""
    try:
        probs = np.asarray(predictions, dtype=np.float64)
    except (TypeError, ValueError):
        raise AdaptersUserError(
            "must be a rectangular (n_examples, n_classes) array of probabilities", "probabilities"
        ) from None
    refs = np.asarray(references)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise AdaptersUserError(
            f"must have shape (n_examples, n_classes >= 2), got {probs.shape}", "probabilities"
        )
    if refs.ndim != 1 or refs.shape[0] != probs.shape[0]:
        raise AdaptersUserError(
            f"expected {probs.shape[0]} label ids (one per probability row), got shape {refs.shape}",
            "references",
        )
    if probs.shape[0] == 0:
        raise AdaptersUserError("no examples to score", "references")
    if not np.all(np.isfinite(probs)):
        raise AdaptersUserError("contain NaN or infinite values", "probabilities")
    if refs.dtype.kind not in "iu" and not (refs.dtype.kind == "f" and np.all(refs == np.round(refs))):
        raise AdaptersUserError(f"must be int label ids, got dtype {refs.dtype}", "references")
    refs = refs.astype(np.int64)
    k = probs.shape[1]
    if refs.min() < 0 or refs.max() >= k:
        raise AdaptersUserError(
            f"label ids must lie in [0, {k - 1}] for {k} probability columns, "
            f"got range [{refs.min()}, {refs.max()}]",
            "references",
        )
    if positive_label >= k:
        raise AdaptersUserError(f"{positive_label} is not a class id for {k} classes", "positive_label")
    if cost_matrix is not None and cost_matrix.shape != (k, k):
        raise AdaptersUserError(f"shape {cost_matrix.shape} does not match {k} classes", "cost_matrix")
    return Scores(probs, refs, int(positive_label), float(threshold), cost_matrix)


# ---------------------------------------------------------------------------------------------
# the evaluate module

_FEATURES = datasets.Features(
    {
        # Sequence(Value) is List(Value) in datasets >= 4 and still works in datasets 3.
        "predictions": datasets.Sequence(datasets.Value("float64")),
        "references": datasets.Value("int64"),
    }
)

_INPUTS_DESCRIPTION = """
Args:
    predictions: per-example probability vectors, shape (n_examples, n_classes).
    references: int label ids in [0, n_classes).
Returns:
    {name: float}
"""


class ProbabilityMetric(evaluate.Metric):
    """One built-in metric (``name`` in ``BUILTIN_METRICS``) over probability vectors.

    ``keep_in_memory`` defaults to True so computing never writes Arrow cache files; in that mode
    no cache directory is created either (evaluate would otherwise mkdir one under ``HF_HOME``).
    """

    def __init__(
        self,
        name: str,
        *,
        positive_label: int = 1,
        threshold: float = 0.5,
        cost_matrix: Sequence[Sequence[float]] | None = None,
        keep_in_memory: bool = True,
        **kwargs: Any,
    ) -> None:
        if name not in _SCORERS:
            raise AdaptersUserError(
                f"unknown built-in metric {name!r}; built-ins: {', '.join(BUILTIN_METRICS)}", "metrics"
            )
        costs = validate_config(positive_label, threshold, cost_matrix)
        if name == "expected_cost" and costs is None:
            raise AdaptersUserError(
                "expected_cost needs cost_matrix=[[...], ...] with cost[true][predicted] "
                "(German credit, good=0 bad=1: [[0, 1], [5, 0]])",
                "cost_matrix",
            )
        # Set before super().__init__, which calls _info().
        self.metric_name = name
        self.positive_label = int(positive_label)
        self.threshold = float(threshold)
        self.cost_matrix = costs
        super().__init__(config_name=name, keep_in_memory=keep_in_memory, **kwargs)
        # evaluate names a module after its class; combine() uses that name for key prefixes.
        self.info.module_name = name

    def _build_data_dir(self) -> str:
        """Like evaluate's, minus the ``os.makedirs``, which an in-memory metric never needs."""
        if not self.keep_in_memory:
            return super()._build_data_dir()
        return os.path.join(self._data_dir_root, self.metric_name, self.config_name)

    def _info(self) -> evaluate.MetricInfo:
        scorer = _SCORERS[self.metric_name]
        return evaluate.MetricInfo(
            description=(scorer.__doc__ or self.metric_name).strip().splitlines()[0],
            citation="",
            inputs_description=_INPUTS_DESCRIPTION.replace("{name}", repr(self.metric_name)),
            features=_FEATURES,
        )

    def _compute(self, predictions: Any = None, references: Any = None) -> dict[str, float]:
        scores = prepare_inputs(
            predictions, references, self.positive_label, self.threshold, self.cost_matrix
        )
        return {self.metric_name: _SCORERS[self.metric_name](scores)}

"""Decision settings fitted on validation after training: probability calibration and the cut-off.

A fine-tuned classifier ranks well but its probabilities are often over-confident: a credit team that
prices or provisions on "P(default) = 20 %" needs 20 % to mean 20 %. Both settings are fitted on the
validation split (never test) and saved in the adapter's ``config.json``, so ``predict_proba`` and
``predict`` apply exactly what was measured.

* ``temperature`` divides the logits by one number T fitted by minimising validation log loss (Guo et
  al. 2017). It keeps the ranking (ROC-AUC unchanged) and works for any number of classes; a plain-PEFT
  user applies it as ``softmax(logits / T)``. The fit needs only probabilities: softmax(log p / T) equals
  softmax(logits / T) because log p and the logits differ by a per-row constant.
* ``isotonic`` maps P(positive) through a monotone step function fitted on validation (binary only). It
  can fix any monotone distortion but needs more validation rows, and ties scores within a step.

Threshold rules (binary): ``max_f1`` maximises F1 of the positive class on validation; ``min_cost``
minimises the mean cost ``cost[true][predicted]`` on validation. The chosen cut-off is the midpoint
between the two neighbouring validation scores, not a score itself, so it does not hinge on one row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "ISOTONIC_CLIP",
    "apply_calibration",
    "choose_threshold",
    "decision_summary",
    "fit_calibration",
]

# Isotonic steps of 0 or 1 would claim certainty from a handful of validation rows (and make log loss
# infinite): calibrated probabilities are kept inside [ISOTONIC_CLIP, 1 - ISOTONIC_CLIP].
ISOTONIC_CLIP = 1e-3
_TINY = 1e-12


def _log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probabilities, dtype=np.float64), _TINY, 1.0))


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = values - values.max(axis=1, keepdims=True)
    exponent = np.exp(shifted)
    return exponent / exponent.sum(axis=1, keepdims=True)


def fit_calibration(
    method: str, probabilities: np.ndarray, labels: np.ndarray, positive_label: int = 1
) -> dict[str, Any] | None:
    """Fit ``method`` (temperature | isotonic | none) on validation probabilities (n, k) and label ids.

    Returns the JSON-ready spec saved in ``config.json`` (``None`` for ``none``).
    """
    if method == "none":
        return None
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if method == "temperature":
        from scipy.optimize import minimize_scalar

        logs = _log_probabilities(probabilities)
        rows = np.arange(len(labels))

        def loss(log_temperature: float) -> float:
            scaled = logs / np.exp(log_temperature)
            scaled = scaled - scaled.max(axis=1, keepdims=True)
            return float(np.mean(np.log(np.exp(scaled).sum(axis=1)) - scaled[rows, labels]))

        # T in [0.05, 20]: beyond that the model is constant or a hard argmax, either way a failed fit.
        found = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
        return {"method": "temperature", "temperature": round(float(np.exp(found.x)), 6)}
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        if probabilities.shape[1] != 2:
            raise ValueError("isotonic calibration is for two classes; use temperature")
        regression = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        regression.fit(probabilities[:, positive_label], (labels == positive_label).astype(np.float64))
        return {
            "method": "isotonic",
            "positive_index": int(positive_label),
            "x": [float(value) for value in regression.X_thresholds_],
            "y": [float(value) for value in regression.y_thresholds_],
        }
    raise ValueError(f"unknown calibration method {method!r}")


def apply_calibration(probabilities: np.ndarray, spec: dict[str, Any] | None) -> np.ndarray:
    """Calibrated probabilities (n, k) from raw ones; ``None`` leaves them as they are."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if not spec:
        return probabilities
    if spec["method"] == "temperature":
        return _softmax(_log_probabilities(probabilities) / float(spec["temperature"]))
    if spec["method"] == "isotonic":
        positive = int(spec["positive_index"])
        mapped = np.interp(probabilities[:, positive], spec["x"], spec["y"])
        mapped = np.clip(mapped, ISOTONIC_CLIP, 1 - ISOTONIC_CLIP)
        out = np.empty_like(probabilities)
        out[:, positive], out[:, 1 - positive] = mapped, 1 - mapped
        return out
    raise ValueError(f"unknown calibration method {spec['method']!r}")


def _cut_points(scores: np.ndarray) -> np.ndarray:
    """Candidate thresholds: midpoints between neighbouring distinct scores, plus both ends."""
    distinct = np.unique(scores)
    middles = (distinct[1:] + distinct[:-1]) / 2
    return np.concatenate([[max(distinct[0] / 2, 1e-6)], middles, [min((distinct[-1] + 1) / 2, 1 - 1e-6)]])


def choose_threshold(
    rule: float | str,
    scores: np.ndarray,
    is_positive: np.ndarray,
    cost_matrix: np.ndarray | None = None,
    positive_label: int = 1,
) -> float:
    """The cut-off on P(positive): a number as given, else the best validation cut-off for ``rule``.

    ``cost_matrix`` is cost[true][predicted] over label ids (binary). Ties go to the lowest cut-off's
    neighbourhood median, so a flat optimum does not pick an edge.
    """
    if not isinstance(rule, str):
        return float(rule)
    scores = np.asarray(scores, dtype=np.float64)
    is_positive = np.asarray(is_positive, dtype=bool)
    cuts = _cut_points(scores)
    flagged = scores[None, :] >= cuts[:, None]  # (cuts, rows): predicted positive
    if rule == "max_f1":
        true_positive = (flagged & is_positive).sum(axis=1)
        predicted, actual = flagged.sum(axis=1), is_positive.sum()
        values = 2 * true_positive / np.maximum(predicted + actual, 1)  # higher is better
        best = values.max()
    elif rule == "min_cost":
        if cost_matrix is None:
            raise ValueError("min_cost needs a cost matrix")
        costs = np.asarray(cost_matrix, dtype=np.float64)
        other = 1 - positive_label
        # per cut: positives missed cost[pos][other], negatives flagged cost[other][pos]
        missed = (~flagged & is_positive).sum(axis=1) * costs[positive_label, other]
        false_alarms = (flagged & ~is_positive).sum(axis=1) * costs[other, positive_label]
        values = -(missed + false_alarms) / len(scores)
        best = values.max()
    else:
        raise ValueError(f"unknown threshold rule {rule!r}")
    optimal = cuts[np.isclose(values, best)]
    return float(optimal[len(optimal) // 2])


def decision_summary(
    probabilities: np.ndarray,
    labels: np.ndarray,
    positive_label: int,
    threshold: float,
    cost_matrix: np.ndarray | None,
) -> dict[str, float]:
    """Approval rate (share not predicted positive, e.g. not declined) and mean cost per row, at 0.5 and
    at ``threshold``: what moving the cut-off changes on these rows."""
    scores = np.asarray(probabilities, dtype=np.float64)[:, positive_label]
    labels = np.asarray(labels, dtype=np.int64)
    other = 1 - positive_label
    summary: dict[str, float] = {}
    for suffix, cut in (("_at_0.5", 0.5), ("", threshold)):
        flagged = scores >= cut
        summary[f"approval_rate{suffix}"] = float(1 - flagged.mean())
        if cost_matrix is not None:
            predicted = np.where(flagged, positive_label, other)
            summary[f"expected_cost{suffix}"] = float(np.asarray(cost_matrix)[labels, predicted].mean())
    return summary

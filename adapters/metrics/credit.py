"""Credit-scoring metrics on the score P(positive_label): brier, ece, ks, gini, expected_cost.

These are the numbers a credit-risk validation report asks for next to AUC. They live here as plain
numpy functions over a prepared :class:`Scores` view so they can be tested without ``evaluate`` and
reused by :mod:`adapters.metrics.modules`, which wraps each one in an ``evaluate.Metric``.

With more than two classes every function here is one-vs-rest on ``positive_label``: the score is
that class's probability and the target is ``references == positive_label``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["ECE_BINS", "Scores", "auc", "brier", "ece", "expected_cost", "gini", "ks"]

ECE_BINS = 10


@dataclass
class Scores:
    """Validated inputs of one metric computation, with derived views computed at most once.

    ``probabilities`` is (n, num_classes) float64 and ``references`` (n,) int64, both already checked
    (see ``modules.prepare_inputs``): the functions below trust them.
    """

    probabilities: np.ndarray
    references: np.ndarray
    positive_label: int = 1
    threshold: float = 0.5
    cost_matrix: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return int(self.probabilities.shape[1])

    @cached_property
    def score(self) -> np.ndarray:
        """P(positive_label) per example: the credit "score" (e.g. probability of default)."""
        return self.probabilities[:, self.positive_label]

    @cached_property
    def is_positive(self) -> np.ndarray:
        """Boolean target of the one-vs-rest view: references == positive_label."""
        return self.references == self.positive_label

    @cached_property
    def predicted(self) -> np.ndarray:
        """Hard label per example.

        Binary: ``positive_label`` when P(positive) >= threshold, else the other class, so the
        threshold is the decision cut-off a lender tunes. Multiclass: argmax (threshold unused).
        """
        if self.num_classes == 2:
            other = 1 - self.positive_label
            return np.where(self.score >= self.threshold, self.positive_label, other).astype(np.int64)
        return np.argmax(self.probabilities, axis=1).astype(np.int64)

    @cached_property
    def has_both_classes(self) -> bool:
        """Ranking metrics (AUC, KS, Gini) are undefined unless positives and negatives both occur."""
        n_pos = int(self.is_positive.sum())
        return 0 < n_pos < self.is_positive.size


def auc(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """ROC AUC of each column of ``scores`` (n,) or (n, m) against boolean ``targets`` of the same shape.

    Mann-Whitney form, AUC = (rank sum of positives - n_pos (n_pos + 1) / 2) / (n_pos n_neg), with
    average ranks for ties, which equals sklearn's trapezoidal ROC AUC. One vectorised ranking
    replaces a sklearn call per class: 77 one-vs-rest AUCs took ~0.6 s through sklearn's input
    validation and take ~10 ms this way. Columns without both classes give NaN.
    """
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=0)
    n_pos = targets.sum(axis=0).astype(np.float64)
    n_neg = targets.shape[0] - n_pos
    rank_sum = np.where(targets, ranks, 0.0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), value, np.nan)


def brier(s: Scores) -> float:
    """Brier score: mean of (P(positive) - 1[y == positive])^2; lower is better, 0 is perfect."""
    return float(np.mean((s.score - s.is_positive) ** 2))


def ece(s: Scores) -> float:
    """Expected calibration error of P(positive), with 10 equal-width bins on [0, 1].

    Definition used (the "positive-class" ECE, not the top-label confidence ECE)::

        ECE = sum_b (n_b / n) * | mean(P(positive) in b) - mean(1[y == positive] in b) |

    Bin b = [b/10, (b+1)/10); the last bin also holds 1.0; empty bins contribute nothing. For a
    default-probability model this asks "of the loans scored ~20 %, did ~20 % default?", which is the
    calibration question a credit model must answer, whatever the predicted class.
    """
    p = np.clip(s.score, 0.0, 1.0)
    bins = np.minimum((p * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    counts = np.bincount(bins, minlength=ECE_BINS)
    sum_p = np.bincount(bins, weights=p, minlength=ECE_BINS)
    sum_y = np.bincount(bins, weights=s.is_positive.astype(np.float64), minlength=ECE_BINS)
    # Sum over bins of n_b/n * |sum_p/n_b - sum_y/n_b| simplifies to sum |sum_p - sum_y| / n.
    return float(np.abs(sum_p - sum_y)[counts > 0].sum() / p.size)


def ks(s: Scores) -> float:
    """Kolmogorov-Smirnov statistic: max over thresholds of |TPR - FPR|.

    Equals the largest vertical gap between the empirical CDFs of the score among positives and
    among negatives (scipy's two-sample ``ks_2samp`` statistic). NaN when one class is absent.
    """
    if not s.has_both_classes:
        return math.nan
    order = np.argsort(s.score, kind="mergesort")
    sorted_score = s.score[order]
    pos = s.is_positive[order]
    cdf_pos = np.cumsum(pos) / pos.sum()
    cdf_neg = np.cumsum(~pos) / (~pos).sum()
    # Only compare the CDFs after the last example of each run of tied scores.
    last_of_tie = np.append(sorted_score[1:] != sorted_score[:-1], True)
    return float(np.max(np.abs(cdf_pos - cdf_neg)[last_of_tie]))


def gini(s: Scores) -> float:
    """Gini coefficient (accuracy ratio) of P(positive): 2 * AUC - 1; NaN when one class is absent."""
    return float(2.0 * auc(s.score, s.is_positive) - 1.0)


def expected_cost(s: Scores) -> float:
    """Mean misclassification cost: mean over examples of cost_matrix[true][predicted].

    Predictions are taken at ``threshold`` (binary) or argmax (multiclass), see ``Scores.predicted``.
    German credit: good=0, bad=1, cost_matrix=[[0, 1], [5, 0]] (lending to a bad borrower costs 5).
    """
    if s.cost_matrix is None:  # guarded earlier; kept so a direct call fails clearly too
        raise ValueError("expected_cost needs cost_matrix (cost[true][predicted])")
    return float(np.mean(s.cost_matrix[s.references, s.predicted]))

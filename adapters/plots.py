"""The run's plots: PNGs in the artifact directory that a person reads faster than ``metrics.json``.

* ``training.png``: train and validation loss, and the primary metric, per evaluation step, with the
  best step marked: did it learn, did it overfit, was the best adapter at the end or early?
* ``roc.png`` (classification): the test ROC curve of the positive class (one-vs-rest per class with
  more than two labels): the trade-off behind the AUC, at every cut-off rather than one.
* ``reliability.png`` (binary): mean predicted P(positive) against the observed rate in ten
  equal-width bins, before and after calibration: the picture of the ECE in ``metrics.json``.
* ``confusion.png`` (classification): test counts at the chosen cut-off (argmax with more than two
  labels), the errors the decision threshold trades.

Figures are ``matplotlib.figure.Figure`` objects rendered by Agg, never pyplot: no global figure
registry to leak into, no display needed, nothing to close. The plotting functions take arrays, so they
are tested without training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adapters.recipe import LOWER_IS_BETTER

__all__ = [
    "TRAINING_PLOT",
    "ROC_PLOT",
    "RELIABILITY_PLOT",
    "CONFUSION_PLOT",
    "plot_training",
    "plot_roc",
    "plot_reliability",
    "plot_confusion",
    "write_run_plots",
    "card_section",
]

TRAINING_PLOT = "training.png"
ROC_PLOT = "roc.png"
RELIABILITY_PLOT = "reliability.png"
CONFUSION_PLOT = "confusion.png"
MAX_ROC_CLASSES = 10  # more curves than this are unreadable: the most frequent test classes are drawn
BINS = 10  # the reliability diagram's bins are the ECE's (adapters.metrics.credit.ece)
_ANNOTATE_UP_TO = 20  # confusion cells get their numbers up to this many classes
_DPI = 100


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # Figure.savefig renders with Agg; pyplot is never imported

    return Figure(figsize=(width, height), layout="constrained")


def _series(history: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    """One history column as floats; a missing value (or a null read back from JSON) is NaN: a gap."""
    return np.array([np.nan if row.get(key) is None else float(row[key]) for row in history])


def plot_training(
    path: Path, history: Sequence[dict[str, Any]], primary_metric: str, best_step: int | None = None
) -> bool:
    """Loss (train, validation) and the validation ``primary_metric`` per step; False when no history.

    The train loss of an entry is the mean over the steps since the previous evaluation, so the two loss
    curves share the x axis. ``primary_metric == "loss"`` plots the validation loss on the right too.
    """
    if not history:
        return False
    steps = _series(history, "step")
    figure = _figure(11, 4)
    left, right = figure.subplots(1, 2)
    left.plot(steps, _series(history, "train_loss"), marker="o", ms=3, label="train (mean since last eval)")
    left.plot(steps, _series(history, "validation_loss"), marker="o", ms=3, label="validation")
    left.set_title("loss")
    right.plot(steps, _series(history, f"validation_{primary_metric}"), marker="o", ms=3, color="C2")
    better = "lower" if primary_metric in LOWER_IS_BETTER else "higher"
    right.set_title(f"validation {primary_metric} (primary metric, {better} is better)")
    for axis in (left, right):
        axis.set_xlabel("optimizer step")
        axis.grid(alpha=0.3)
        if best_step:
            axis.axvline(best_step, color="grey", linestyle=":", label=f"best step {best_step}")
        if best_step or axis is left:
            axis.legend(fontsize=8)
    figure.savefig(path, dpi=_DPI)
    return True


def plot_roc(
    path: Path, probabilities: np.ndarray, labels: np.ndarray, label_names: Sequence[str], positive: int
) -> bool:
    """Test ROC: the positive class's curve (binary) or one-vs-rest per class (at most
    ``MAX_ROC_CLASSES``, the most frequent); False, nothing written, when no class has both outcomes
    in the test split (a curve needs positives and negatives)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = np.asarray(labels)
    if len(label_names) == 2:
        classes = [positive]
    else:  # most frequent first; ties in label order
        counts = np.bincount(labels, minlength=len(label_names))
        classes = sorted(range(len(label_names)), key=lambda index: -counts[index])[:MAX_ROC_CLASSES]
    classes = [index for index in classes if 0 < np.sum(labels == index) < labels.size]
    if not classes:
        return False
    figure = _figure(5.5, 5)
    axis = figure.subplots()
    for index in classes:
        truth = labels == index
        scores = probabilities[:, index]
        fpr, tpr, _ = roc_curve(truth, scores)
        axis.plot(fpr, tpr, label=f"{label_names[index]} (AUC {roc_auc_score(truth, scores):.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    kind = f"P({label_names[positive]})" if len(label_names) == 2 else "one-vs-rest"
    if len(label_names) > 2 and len(classes) < len(label_names):
        kind += f", {len(classes)} of {len(label_names)} classes"
    axis.set_title(f"ROC on test ({labels.size} rows), {kind}", fontsize=10)
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    axis.set_aspect("equal")
    axis.legend(fontsize=8, loc="lower right")
    figure.savefig(path, dpi=_DPI)
    return True


def _binned(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per bin (the ECE's: [b/10, (b+1)/10), 1.0 in the last): count, mean score, observed rate; and ECE."""
    scores = np.clip(scores, 0.0, 1.0)
    bins = np.minimum((scores * BINS).astype(np.int64), BINS - 1)
    counts = np.bincount(bins, minlength=BINS)
    sum_p = np.bincount(bins, weights=scores, minlength=BINS)
    sum_y = np.bincount(bins, weights=truth.astype(np.float64), minlength=BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p, rate = sum_p / counts, sum_y / counts
    return counts, mean_p, rate, float(np.abs(sum_p - sum_y).sum() / scores.size)


def plot_reliability(
    path: Path,
    labels: np.ndarray,
    positive: int,
    positive_name: str,
    calibrated: np.ndarray,
    raw: np.ndarray | None = None,
) -> None:
    """Reliability diagram of P(positive) on test, before (``raw``) and after calibration, with the
    rows per bin below; one curve when there was no calibration (``raw`` None or equal)."""
    truth = np.asarray(labels) == positive
    curves = [(f"P({positive_name})", calibrated[:, positive])]
    if raw is not None and not np.allclose(raw, calibrated):
        curves = [("before calibration", raw[:, positive]), ("calibrated", calibrated[:, positive])]
    figure = _figure(5.5, 6.5)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    edges = np.linspace(0, 1, BINS + 1)
    for colour, (name, scores) in enumerate(curves):
        counts, mean_p, rate, ece = _binned(scores, truth)
        filled = counts > 0
        top.plot(
            mean_p[filled], rate[filled], marker="o", color=f"C{colour}", label=f"{name} (ECE {ece:.3f})"
        )
        bottom.stairs(counts, edges, color=f"C{colour}", label=name)
    top.set_ylabel(f"observed rate of {positive_name}")
    top.set_title(f"Reliability on test ({truth.size} rows), {BINS} equal-width bins", fontsize=10)
    top.set_ylim(-0.02, 1.02)
    top.legend(fontsize=8, loc="upper left")
    bottom.set_xlabel(f"mean predicted P({positive_name}) in the bin")
    bottom.set_ylabel("rows")
    bottom.set_xlim(0, 1)
    figure.savefig(path, dpi=_DPI)


def plot_confusion(
    path: Path,
    probabilities: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    positive: int,
    threshold: float = 0.5,
) -> None:
    """Test confusion matrix (rows: true, columns: predicted) with counts and row percentages.

    Predictions are ``adapters.metrics``' own (``Scores.predicted``: the positive class when
    P(positive) >= ``threshold`` with two labels, argmax otherwise), so the cells add up to the reported
    accuracy, precision and recall.
    """
    from sklearn.metrics import confusion_matrix

    from adapters.metrics.credit import Scores

    labels = np.asarray(labels)
    k = len(label_names)
    predicted = Scores(probabilities, labels, positive, float(threshold)).predicted
    counts = confusion_matrix(labels, predicted, labels=list(range(k)))
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = counts / counts.sum(axis=1, keepdims=True)
    size = min(4 + 0.6 * k, 14)
    figure = _figure(size + 1, size)
    axis = figure.subplots()
    image = axis.imshow(np.nan_to_num(shares), cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, label="share of the true class's rows")
    if k <= _ANNOTATE_UP_TO:
        for row in range(k):
            for column in range(k):
                share = "" if np.isnan(shares[row, column]) else f"\n{shares[row, column]:.0%}"
                dark = np.nan_to_num(shares[row, column]) > 0.5
                colour = "white" if dark else "black"
                text = f"{counts[row, column]}{share}"
                axis.text(column, row, text, ha="center", va="center", fontsize=9, color=colour)
    axis.set_xticks(range(k), label_names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    axis.set_yticks(range(k), label_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    name = label_names[positive]
    rule = f"{name} when P({name}) ≥ {threshold:.3f}" if k == 2 else "the most probable label"
    axis.set_title(f"Test ({labels.size} rows), predicted: {rule}", fontsize=10)
    figure.savefig(path, dpi=_DPI)


def write_run_plots(directory: Path, outcome: Any, recipe: Any, data: Any) -> list[str]:
    """Write the plots that apply to this run into ``directory``; return their file names in order.

    Every task gets ``training.png`` (when there is a history); classification adds ROC and confusion,
    binary classification the reliability diagram. The positive class is found as ``metric_kwargs``
    finds it (the prepared data's ``positive_label``, else the last label).
    """
    directory = Path(directory)
    written = []
    if plot_training(
        directory / TRAINING_PLOT, outcome.history, recipe.eval.primary_metric, outcome.best_step
    ):
        written.append(TRAINING_PLOT)
    if recipe.task != "classification":
        return written
    names = list(data.label_names)
    positive = names.index(data.positive_label) if data.positive_label in names else len(names) - 1
    labels = np.asarray(data.frames["test"]["label"], dtype=np.int64)
    probabilities = np.asarray(outcome.test_probabilities, dtype=np.float64)
    if plot_roc(directory / ROC_PLOT, probabilities, labels, names, positive):
        written.append(ROC_PLOT)
    if len(names) == 2:
        raw = getattr(outcome, "raw_test_probabilities", None)
        raw = None if raw is None else np.asarray(raw, dtype=np.float64)
        plot_reliability(directory / RELIABILITY_PLOT, labels, positive, names[positive], probabilities, raw)
        written.append(RELIABILITY_PLOT)
    threshold = (outcome.metrics.get("threshold") or {}).get("value", 0.5)
    plot_confusion(directory / CONFUSION_PLOT, probabilities, labels, names, positive, threshold)
    written.append(CONFUSION_PLOT)
    return written


def card_section(
    names: Sequence[str],
    recipe: Any,
    label_names: Sequence[str],
    metrics: dict[str, Any],
    summary: dict[str, Any],
) -> str:
    """The model card's "Plots" section: each written PNG, embedded, with a one-line caption; empty
    when none was written (an artifact from before the plots, or a run without history)."""
    if not names:
        return ""
    binary = len(label_names) == 2
    positive = recipe.data.positive_label or (label_names[-1] if label_names else "the positive class")
    threshold = float((metrics.get("threshold") or {}).get("value", 0.5))
    best = summary.get("best_step")
    calibrated = ", before and after calibration" if (metrics.get("calibration") or {}).get("spec") else ""
    captions = {
        TRAINING_PLOT: (
            "Training curves",
            f"train and validation loss (left) and validation `{recipe.eval.primary_metric}` (right) per "
            "optimizer step" + (f"; the dotted line marks the best step, {best}." if best else "."),
        ),
        ROC_PLOT: (
            "ROC curve",
            f"test ROC curve of P({positive}), with its AUC."
            if binary
            else f"test ROC curves, one-vs-rest per class (the {MAX_ROC_CLASSES} most frequent at most), "
            "with their AUCs.",
        ),
        RELIABILITY_PLOT: (
            "Reliability diagram",
            f"mean predicted P({positive}) against the observed rate of {positive} in {BINS} equal-width "
            f"bins on test{calibrated} (ECE in the legend), and the rows per bin below.",
        ),
        CONFUSION_PLOT: (
            "Confusion matrix",
            f"test counts and row percentages at the decision threshold {threshold:.3f} on P({positive})."
            if binary
            else "test counts and row percentages, predicting the most probable label.",
        ),
    }
    lines = []
    for name in names:
        title, caption = captions[name]
        lines += [f"![{title}]({name})", f"*`{name}`: {caption}*", ""]
    return "\n".join(lines).rstrip()

"""Built-in metrics agree with scikit-learn / scipy / hand computations, offline, via evaluate.combine.

References are computed independently of the implementation (sklearn for the standard metrics,
scipy for KS, a plain loop for ECE, by hand for expected cost) so a shared bug cannot hide.
No test touches the network: the Hub fallback is exercised with ``evaluate.load`` monkeypatched.
"""

from __future__ import annotations

import math
from pathlib import Path

import datasets
import evaluate
import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn import metrics as skm

from adapters.errors import AdaptersUserError
from adapters.metrics import BUILTIN_METRICS, compute_metrics, load_metric

GERMAN_COSTS = [[0.0, 1.0], [5.0, 0.0]]  # good=0, bad=1: cost[true][predicted]


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep evaluate away from the real HF cache and the network.

    evaluate reads HF_HOME once at import time, so the env var alone only helps subprocesses; the
    cache path it already computed is patched too.
    """
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    metrics_cache = tmp_path / "hf" / "metrics"
    monkeypatch.setattr(evaluate.config, "HF_METRICS_CACHE", metrics_cache)
    return metrics_cache


def _binary_data() -> tuple[np.ndarray, np.ndarray]:
    """60 examples with rounded scores, so ties occur (they matter for AUC and KS)."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 60)
    p_bad = np.clip(np.round(0.35 * y + rng.uniform(0, 0.65, 60), 2), 0, 1)
    return np.column_stack([1 - p_bad, p_bad]), y


def _multiclass_data(k: int = 3, n: int = 90, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k  # every class present
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True), y


def _ece_loop(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Textbook ECE: equal-width bins, |mean predicted - observed rate| weighted by bin size."""
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        in_bin = (p >= lo) & ((p < hi) if b < bins - 1 else (p <= hi))
        if in_bin.any():
            total += in_bin.sum() / p.size * abs(p[in_bin].mean() - y[in_bin].mean())
    return total


def _binary_reference(p: np.ndarray, y: np.ndarray, pos: int, threshold: float) -> dict[str, float]:
    score, target = p[:, pos], (y == pos).astype(int)
    pred = np.where(score >= threshold, pos, 1 - pos)
    auc = skm.roc_auc_score(target, score)
    fpr, tpr, _ = skm.roc_curve(target, score)
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, pos_label=pos, zero_division=0),
        "recall": skm.recall_score(y, pred, pos_label=pos, zero_division=0),
        "f1": skm.f1_score(y, pred, pos_label=pos, zero_division=0),
        "precision_macro": skm.precision_score(y, pred, average="macro", zero_division=0),
        "recall_macro": skm.recall_score(y, pred, average="macro", zero_division=0),
        "f1_macro": skm.f1_score(y, pred, average="macro", zero_division=0),
        "roc_auc": auc,
        "pr_auc": skm.average_precision_score(target, score),
        "log_loss": skm.log_loss(y, p, labels=[0, 1]),
        "brier": skm.brier_score_loss(target, score),
        "ece": _ece_loop(score, target),
        "ks": ks_2samp(score[target == 1], score[target == 0]).statistic,
        "gini": 2 * auc - 1,
        "expected_cost": float(np.mean(np.asarray(GERMAN_COSTS)[y, pred])),
    }


def test_builtin_names() -> None:
    assert BUILTIN_METRICS == (
        "accuracy", "precision", "recall", "f1", "precision_macro", "recall_macro", "f1_macro",
        "roc_auc", "pr_auc", "log_loss", "brier", "ece", "ks", "gini", "expected_cost",
    )  # fmt: skip


@pytest.mark.parametrize(("pos", "threshold"), [(1, 0.5), (1, 0.3), (0, 0.6)])
def test_binary_matches_sklearn(pos: int, threshold: float) -> None:
    p, y = _binary_data()
    got = compute_metrics(
        BUILTIN_METRICS, p, y, positive_label=pos, threshold=threshold, cost_matrix=GERMAN_COSTS
    )
    want = _binary_reference(p, y, pos, threshold)
    assert set(got) == set(BUILTIN_METRICS)
    assert all(type(v) is float for v in got.values())
    for name in BUILTIN_METRICS:
        assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12), name


def test_ks_equals_max_tpr_minus_fpr() -> None:
    """The docstring's two definitions of KS agree (ROC form vs CDF form checked above)."""
    p, y = _binary_data()
    fpr, tpr, _ = skm.roc_curve(y, p[:, 1], drop_intermediate=False)
    assert compute_metrics(["ks"], p, y)["ks"] == pytest.approx(np.max(np.abs(tpr - fpr)))


def test_multiclass_matches_sklearn() -> None:
    p, y = _multiclass_data()
    pred = p.argmax(axis=1)
    got = compute_metrics(BUILTIN_METRICS[:-1], p, y, positive_label=2, threshold=0.9)
    ovr = y == 2
    want = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(ovr, pred == 2, zero_division=0),
        "recall": skm.recall_score(ovr, pred == 2, zero_division=0),
        "f1": skm.f1_score(ovr, pred == 2, zero_division=0),
        "precision_macro": skm.precision_score(y, pred, average="macro", zero_division=0),
        "recall_macro": skm.recall_score(y, pred, average="macro", zero_division=0),
        "f1_macro": skm.f1_score(y, pred, average="macro", zero_division=0),
        "roc_auc": skm.roc_auc_score(y, p, multi_class="ovr", average="macro"),
        "pr_auc": skm.average_precision_score(ovr, p[:, 2]),
        "log_loss": skm.log_loss(y, p, labels=[0, 1, 2]),
        "brier": skm.brier_score_loss(ovr, p[:, 2]),
        "ece": _ece_loop(p[:, 2], ovr.astype(int)),
        "ks": ks_2samp(p[ovr, 2], p[~ovr, 2]).statistic,
        "gini": 2 * skm.roc_auc_score(ovr, p[:, 2]) - 1,
    }
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_many_classes() -> None:
    """A 77-class problem (intent detection size) works for the all-class metrics."""
    p, y = _multiclass_data(k=77, n=308, seed=1)
    got = compute_metrics(["accuracy", "f1_macro", "log_loss", "roc_auc"], p, y)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"), rel=1e-9)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p, labels=list(range(77))), rel=1e-9)
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, p.argmax(1), average="macro"), rel=1e-9)


def test_multiclass_roc_auc_skips_absent_classes() -> None:
    p, y = _multiclass_data()
    keep = y != 1  # class 1 never occurs; sklearn's multiclass AUC would raise here
    got = compute_metrics(["roc_auc"], p[keep], y[keep])["roc_auc"]
    want = np.mean([skm.roc_auc_score(y[keep] == c, p[keep, c]) for c in (0, 2)])
    assert got == pytest.approx(want, rel=1e-9)


def test_single_class_references_give_nan_not_errors() -> None:
    p, _ = _binary_data()
    y = np.zeros(len(p), dtype=int)
    got = compute_metrics(BUILTIN_METRICS, p, y, cost_matrix=GERMAN_COSTS)
    for name in ("roc_auc", "gini", "ks", "pr_auc"):
        assert math.isnan(got[name]), name
    assert not any(math.isnan(got[n]) for n in ("accuracy", "log_loss", "brier", "ece", "expected_cost"))
    p3, _ = _multiclass_data()
    assert math.isnan(compute_metrics(["roc_auc"], p3, np.zeros(len(p3), dtype=int))["roc_auc"])


def test_expected_cost_german_credit_by_hand() -> None:
    # P(bad): 0.9 -> predict bad, 0.2 -> good, 0.6 -> bad, 0.4 -> good (threshold 0.5)
    p_bad = np.array([0.9, 0.2, 0.6, 0.4])
    y = np.array([1, 1, 0, 0])  # bad, bad, good, good
    # costs: bad->bad 0, bad->good 5 (lent to a defaulter), good->bad 1 (refused a good one), good->good 0
    p = np.column_stack([1 - p_bad, p_bad])
    assert compute_metrics(["expected_cost"], p, y, cost_matrix=GERMAN_COSTS) == {"expected_cost": 1.5}
    # A cautious cut-off (0.15) refuses everyone: only the two good applicants cost 1 each.
    got = compute_metrics(["expected_cost"], p, y, threshold=0.15, cost_matrix=GERMAN_COSTS)
    assert got == {"expected_cost": 0.5}


def test_evaluate_combine_of_builtins() -> None:
    p, y = _binary_data()
    names = ["accuracy", "roc_auc", "ks", "expected_cost"]
    combined = evaluate.combine([load_metric(n, threshold=0.4, cost_matrix=GERMAN_COSTS) for n in names])
    got = combined.compute(predictions=p.tolist(), references=y.tolist())
    assert got == pytest.approx(compute_metrics(names, p, y, threshold=0.4, cost_matrix=GERMAN_COSTS))
    module = load_metric("brier")
    assert isinstance(module, evaluate.Metric) and module.name == "brier"
    for row, label in zip(p, y, strict=True):  # the streaming API works too
        module.add(prediction=row.tolist(), reference=int(label))
    assert module.compute() == pytest.approx({"brier": skm.brier_score_loss(y, p[:, 1])})


def test_no_cache_files_written(_offline_cache: Path) -> None:
    p, y = _binary_data()
    compute_metrics(BUILTIN_METRICS, p, y, cost_matrix=GERMAN_COSTS)
    assert not _offline_cache.exists() or not any(_offline_cache.rglob("*"))


def test_expected_cost_needs_cost_matrix() -> None:
    p, y = _binary_data()
    with pytest.raises(AdaptersUserError, match="expected_cost needs cost_matrix") as info:
        compute_metrics(["accuracy", "expected_cost"], p, y)
    assert "\n" not in str(info.value)
    with pytest.raises(AdaptersUserError, match="does not match 3 classes"):
        compute_metrics(["expected_cost"], *_multiclass_data(), cost_matrix=GERMAN_COSTS)


def test_unknown_metric_names_itself_and_lists_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline_load(name: str, *args: object, **kwargs: object) -> None:
        raise FileNotFoundError(f"Couldn't find a module script at {name}.\nIt was not found on the Hub")

    monkeypatch.setattr(evaluate, "load", offline_load)
    with pytest.raises(AdaptersUserError) as info:
        load_metric("no_such_metric_xyz")
    message = str(info.value)
    assert "\n" not in message
    assert "'no_such_metric_xyz'" in message and "roc_auc" in message and "expected_cost" in message


class _HardLabelAccuracy(evaluate.Metric):
    """Stand-in for a Hub metric: takes predicted label ids, like evaluate's own 'accuracy'."""

    def _info(self) -> evaluate.MetricInfo:
        features = datasets.Features(
            {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
        )
        return evaluate.MetricInfo(description="", citation="", inputs_description="", features=features)

    def _compute(self, predictions: list[int], references: list[int]) -> dict[str, float]:
        return {"hub_acc": float(np.mean(np.asarray(predictions) == np.asarray(references)))}


def test_hub_fallback_gets_hard_predictions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluate, "load", lambda name, **kw: _HardLabelAccuracy(keep_in_memory=True))
    p, y = _binary_data()
    got = compute_metrics(["accuracy", "my_hub_metric"], p, y, threshold=0.3)
    assert got["hub_acc"] == pytest.approx(got["accuracy"])


@pytest.mark.parametrize(
    ("probabilities", "references", "kwargs", "match"),
    [
        ([0.2, 0.8], [1, 0], {}, "n_classes >= 2"),
        ([[0.2, 0.8]], [1, 0], {}, "expected 1 label ids"),
        ([[0.2, 0.8]], [2], {}, r"label ids must lie in \[0, 1\]"),
        ([[0.2, 0.8]], [1], {"positive_label": 2}, "not a class id"),
        ([[0.2, 0.8]], [1], {"threshold": 1.5}, "threshold"),
        ([[0.2, 0.8]], [1], {"cost_matrix": [[0, 1]]}, "square"),
        (np.empty((0, 2)), [], {}, "no examples"),
    ],
)
def test_bad_inputs_raise_user_errors(
    probabilities: object, references: object, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(AdaptersUserError, match=match):
        compute_metrics(["accuracy"], probabilities, references, **kwargs)

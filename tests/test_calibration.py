"""Calibration and decision thresholds: the numpy functions, and what a trained adapter saves and applies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adapters.metrics import compute_metrics
from adapters.metrics.calibration import (
    apply_calibration,
    choose_threshold,
    decision_summary,
    fit_calibration,
)


def overconfident(rows: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose true probability is sigmoid(z) but which report sigmoid(4 z): far too sure."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.2, rows)
    labels = (rng.random(rows) < 1 / (1 + np.exp(-z))).astype(np.int64)
    p_bad = 1 / (1 + np.exp(-4 * z))
    return np.stack([1 - p_bad, p_bad], axis=1), labels


@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_calibration_reduces_ece_of_an_overconfident_model(method: str) -> None:
    probabilities, labels = overconfident()
    fit, held_out = slice(0, 1000), slice(1000, None)
    spec = fit_calibration(method, probabilities[fit], labels[fit])
    calibrated = apply_calibration(probabilities[held_out], spec)
    before = compute_metrics(["ece", "brier", "roc_auc"], probabilities[held_out], labels[held_out])
    after = compute_metrics(["ece", "brier", "roc_auc"], calibrated, labels[held_out])
    assert after["ece"] < before["ece"] / 2
    assert after["brier"] < before["brier"]
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    if method == "temperature":  # a monotone map of one number: the ranking is kept exactly
        assert spec["temperature"] == pytest.approx(4.0, rel=0.25)
        assert after["roc_auc"] == pytest.approx(before["roc_auc"], abs=1e-12)
    else:
        assert min(spec["y"]) >= 0 and max(spec["y"]) <= 1


def test_temperature_works_for_several_classes_and_none_is_identity() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (500, 4))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array(
        [rng.choice(4, p=row) for row in np.exp(logits / 3) / np.exp(logits / 3).sum(1)[:, None]]
    )
    spec = fit_calibration("temperature", probabilities, labels)
    assert spec["temperature"] == pytest.approx(3.0, rel=0.3)
    assert fit_calibration("none", probabilities, labels) is None
    assert apply_calibration(probabilities, None) is not None
    assert np.array_equal(apply_calibration(probabilities, None), probabilities)
    with pytest.raises(ValueError, match="two classes"):
        fit_calibration("isotonic", probabilities, labels)


def test_min_cost_threshold_is_the_cheapest_cut_on_the_rows() -> None:
    probabilities, labels = overconfident(rows=600, seed=3)
    calibrated = apply_calibration(probabilities, fit_calibration("temperature", probabilities, labels))
    scores, bad = calibrated[:, 1], labels == 1
    cost = np.array([[0.0, 1.0], [5.0, 0.0]])  # cost[true][predicted]: accepting a bad applicant costs 5
    chosen = choose_threshold("min_cost", scores, bad, cost)

    def mean_cost(cut: float) -> float:
        return float(cost[labels, (scores >= cut).astype(int)].mean())

    grid = np.linspace(0.001, 0.999, 999)
    assert mean_cost(chosen) <= min(mean_cost(cut) for cut in grid) + 1e-12
    assert 0.05 < chosen < 0.4  # near the Bayes cut 1 / (1 + 5) for calibrated scores
    summary = decision_summary(calibrated, labels, 1, chosen, cost)
    assert summary["expected_cost"] == pytest.approx(mean_cost(chosen))
    assert summary["expected_cost"] < summary["expected_cost_at_0.5"]
    assert summary["approval_rate"] == pytest.approx(float((scores < chosen).mean()))
    assert summary["approval_rate"] < summary["approval_rate_at_0.5"]


def test_max_f1_threshold_and_fixed_threshold() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    positive = np.array([False, False, True, True, True, False])
    chosen = choose_threshold("max_f1", scores, positive)
    assert 0.2 < chosen < 0.3  # flag 0.3, 0.6, 0.7, 0.9: F1 = 6/7, the best any cut gives
    assert choose_threshold(0.35, scores, positive) == 0.35


def test_trained_adapter_saves_and_applies_calibration_and_threshold(recipe_for, frame, tmp_path) -> None:
    import adapters

    recipe = recipe_for(eval={"calibration": "temperature", "threshold": "min_cost"}, training={"epochs": 2})
    result = adapters.train(recipe, data=frame, output_dir=tmp_path / "out", progress=False)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    spec = config["calibration"]
    assert spec["method"] == "temperature" and spec["temperature"] > 0
    assert metrics["calibration"]["spec"] == spec
    assert set(metrics["calibration"]["test_after"]) == {"ece", "brier", "log_loss"}
    assert metrics["threshold"]["rule"] == "min_cost"
    assert config["decision_threshold"] == metrics["threshold"]["value"]
    test = metrics["threshold"]["test"]
    assert {"approval_rate", "approval_rate_at_0.5", "expected_cost", "expected_cost_at_0.5"} <= set(test)

    classifier = result.load()
    texts = frame["note"].head(16).tolist()
    logits = classifier.logits(texts).astype(np.float64)
    expected = np.exp(logits / spec["temperature"])
    expected /= expected.sum(axis=1, keepdims=True)
    assert np.allclose(classifier.predict_proba(texts), expected, atol=1e-6)
    bad = classifier.label_names.index("bad")
    decided = classifier.predict(texts)
    assert decided == ["bad" if p >= config["decision_threshold"] else "good" for p in expected[:, bad]]
    # predictions.csv holds the calibrated probabilities too, and test metrics use the chosen cut-off
    predictions = (tmp_path / "out" / "predictions.csv").read_text()
    assert "prob_bad" in predictions
    assert metrics["test"]["expected_cost"] == pytest.approx(test["expected_cost"])


def test_isotonic_and_threshold_rules_refuse_more_than_two_labels(recipe_for, frame, tmp_path) -> None:
    import adapters
    from adapters.errors import AdaptersUserError

    three = frame.assign(outcome=["good", "bad", "review"] * (len(frame) // 3) + ["good"] * (len(frame) % 3))
    recipe = recipe_for(
        data={"label_names": ["good", "bad", "review"]},
        eval={"metrics": ["accuracy"], "primary_metric": "accuracy", "calibration": "isotonic"},
    )
    with pytest.raises(AdaptersUserError, match="eval.calibration"):
        adapters.train(recipe, data=three, output_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()

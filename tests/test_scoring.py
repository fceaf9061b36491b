"""Metric options shared by every scored system (positive class, cut-off, cost matrix by label name), and
the calibration and cut-off fitted on validation."""

from __future__ import annotations

import pytest

from adapters.recipe import load_recipe
from adapters.scoring import metric_kwargs


def test_metric_kwargs_cost_matrix_by_label_name() -> None:
    recipe = load_recipe("german-credit/lora")
    kwargs = metric_kwargs(
        recipe.model_copy(update={"data": recipe.data.model_copy(update={"positive_label": "bad"})}),
        ["good", "bad"],
    )
    assert kwargs == {"positive_label": 1, "threshold": 0.5, "cost_matrix": [[0.0, 1.0], [5.0, 0.0]]}


def test_cost_matrix_labels_must_exist() -> None:
    from adapters.errors import AdaptersUserError

    recipe = load_recipe({"eval": {"cost_matrix": {"yes": {"no": 5}}}})
    with pytest.raises(AdaptersUserError, match="eval.cost_matrix"):
        metric_kwargs(recipe, ["good", "bad"])


def test_fit_decision_on_calibrated_scores_keeps_them_and_cuts_at_the_cost_ratio() -> None:
    """Scores that are already calibrated keep temperature ≈ 1, and a 5:1 cost matrix puts the cheapest
    cut-off near 1 / (1 + 5); the cut-off and calibration come from validation only."""
    import numpy as np

    from adapters.scoring import fit_decision

    recipe = load_recipe("german-credit/lora")  # temperature, min_cost, bad accepted costs 5, good refused 1
    rng = np.random.default_rng(0)

    def split(rows: int) -> tuple[np.ndarray, np.ndarray]:
        bad = rng.uniform(0.02, 0.98, rows)
        return np.column_stack([1 - bad, bad]), (rng.uniform(size=rows) < bad).astype(int)

    (val, val_labels), (test, test_labels) = split(6000), split(3000)
    options = metric_kwargs(recipe, ["good", "bad"])
    decision, calibrated_val, calibrated_test = fit_decision(
        recipe, val, val_labels, test, test_labels, options
    )
    assert decision["calibration"]["spec"]["temperature"] == pytest.approx(1.0, abs=0.1)
    assert decision["threshold"]["value"] == pytest.approx(1 / 6, abs=0.05)
    assert calibrated_val.shape == val.shape and calibrated_test.shape == test.shape
    np.testing.assert_allclose(calibrated_test.sum(axis=1), 1.0, atol=1e-9)
    after, before = (
        decision["calibration"]["test_after"]["ece"],
        decision["calibration"]["test_before"]["ece"],
    )
    assert after < 0.05 and before < 0.05

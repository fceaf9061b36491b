"""The classical baselines of adapters.baselines: valid probabilities from every registered estimator,
multi-class included, and the old logistic-regression entry point (the fairness report's) unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adapters.baselines import (
    BASELINES,
    baseline_probabilities,
    baselines_for,
    class_weight_for,
    logistic_regression_baseline,
    prepared_probabilities,
)
from adapters.data import prepare_data
from adapters.recipe import DataConfig
from tests.conftest import make_frame


def _tables() -> tuple[dict[str, pd.DataFrame], np.ndarray]:
    """200 training rows (HistGB ignores categories with under 10 rows in a split), 15 + 15 scored."""
    frame = make_frame(230).drop(columns="applicant")
    frame["word"] = frame.pop("note").str.split().str[0]  # one of 12 words, each telling the class
    frame.loc[::7, "income"] = np.nan  # missing numbers: HistGB routes them, LR imputes
    labels = (frame.pop("outcome") == "bad").astype(int).to_numpy()
    return {"train": frame.iloc[:200], "validation": frame.iloc[200:215], "test": frame.iloc[215:]}, labels


def _valid(probabilities: np.ndarray, rows: int, columns: int) -> None:
    assert probabilities.shape == (rows, columns)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-9)


@pytest.mark.parametrize("name", ["logistic_regression", "hist_gradient_boosting"])
def test_column_baselines_give_probabilities_that_separate_the_toy_classes(name: str) -> None:
    tables, labels = _tables()
    scored = baseline_probabilities(name, tables, labels[:200], 2, ["word", "income"])
    assert set(scored) == {"validation", "test"}
    _valid(scored["validation"], 15, 2)
    _valid(scored["test"], 15, 2)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(labels[200:215], scored["validation"][:, 1]) > 0.8


def test_hist_gradient_boosting_treats_unseen_categories_as_missing() -> None:
    tables, labels = _tables()
    tables["test"] = tables["test"].assign(word="never seen")
    scored = baseline_probabilities("hist_gradient_boosting", tables, labels[:200], 2, ["word", "income"])
    _valid(scored["test"], 15, 2)


def test_tfidf_baseline_is_multi_class_and_scores_an_untrained_label_zero() -> None:
    texts = pd.Series(["salary house"] * 10 + ["debt late"] * 10 + ["loan risk"] * 10)
    labels = np.array([0] * 10 + [1] * 10 + [3] * 10)  # label 2 never seen in training
    inputs = {"train": texts, "test": pd.DataFrame({"text": ["salary", "late debt", "risk loan", "other"]})}
    scored = baseline_probabilities("tfidf_logistic_regression", inputs, labels, 4)["test"]
    _valid(scored, 4, 4)
    assert np.all(scored[:, 2] == 0)
    assert list(scored[:3].argmax(axis=1)) == [0, 1, 3]


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_balanced_class_weights_raise_the_rare_class_as_the_adapters_loss_does(name: str) -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(200) < 0.1).astype(int)  # 10 % positive, with a weak, noisy signal
    words = np.where(rng.random(200) < 0.6, np.where(labels == 1, "debt", "salary"), "house")
    table = pd.DataFrame({"word": words, "income": rng.normal(size=200) + labels})
    inputs = {"train": table, "test": table}
    if BASELINES[name].reads == "text":
        inputs = {split: pd.Series(frame["word"] + " words") for split, frame in inputs.items()}
    plain = baseline_probabilities(name, inputs, labels, 2, ["word", "income"])["test"][:, 1]
    weighted = baseline_probabilities(name, inputs, labels, 2, ["word", "income"], "balanced")["test"][:, 1]
    assert weighted.mean() > plain.mean() + 0.05  # the training rows themselves: trees fit them closely


def test_class_weight_for_maps_the_recipes_setting() -> None:
    assert class_weight_for("none", ["good", "bad"]) is None
    assert class_weight_for("balanced", ["good", "bad"]) == "balanced"
    assert class_weight_for({"bad": 3.0}, ["good", "bad"]) == {0: 1.0, 1: 3.0}


def test_logistic_regression_entry_point_keeps_its_signature_and_values() -> None:
    from adapters.baselines import _feature_frame, _logistic_regression

    tables, labels = _tables()
    columns = ["word", "income"]
    scores = logistic_regression_baseline(tables, labels[:200], ["good", "bad"], "bad", columns)
    assert scores["test"].shape == (15,)
    model = _logistic_regression(["word"], ["income"])
    model.fit(_feature_frame(tables["train"], columns, ["word"]), labels[:200])
    expected = model.predict_proba(_feature_frame(tables["test"], columns, ["word"]))[:, 1]
    np.testing.assert_allclose(scores["test"], expected)


def test_baselines_for_follows_where_the_text_came_from() -> None:
    assert baselines_for(DataConfig(text_columns=["note"])) == ["tfidf_logistic_regression"]
    assert baselines_for(DataConfig(text_columns=["note", "income"])) == [
        "logistic_regression",
        "hist_gradient_boosting",
    ]
    assert set(BASELINES) >= {"logistic_regression", "hist_gradient_boosting", "tfidf_logistic_regression"}


@pytest.mark.parametrize("columns", [["note"], ["note", "income"]])
def test_prepared_probabilities_cover_validation_and_test_rows(columns: list[str]) -> None:
    config = DataConfig(
        text_columns=columns, label_column="outcome", label_names=["good", "bad"], id_column="applicant"
    )
    data = prepare_data(config, make_frame(60))
    for name in baselines_for(config):
        scored = prepared_probabilities(name, config, data)
        for split in ("validation", "test"):
            _valid(scored[split], len(data.frames[split]), 2)

"""The run's plots: the right PNGs per task, valid images, and a card that shows only those written."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

import adapters
from adapters.plots import (
    CONFUSION_PLOT,
    RELIABILITY_PLOT,
    ROC_PLOT,
    TRAINING_PLOT,
    card_section,
    plot_confusion,
    plot_roc,
    plot_training,
    write_run_plots,
)
from tests.conftest import make_frame, tiny_recipe

HISTORY = [
    {
        "step": step,
        "epoch": step / 10,
        "seconds": step * 0.5,
        "train_loss": 1 / step,
        "validation_loss": 0.9 / step,
    }
    | {"validation_roc_auc": 0.5 + step / 100}
    for step in (10, 20, 30)
]


def _is_png(path: Path) -> bool:
    image = imread(path)
    return path.read_bytes().startswith(b"\x89PNG") and image.ndim == 3 and min(image.shape[:2]) > 100


def _probabilities(labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Scores that lean towards the true class, rows summing to one."""
    logits = np.random.default_rng(seed).normal(size=(labels.size, k))
    logits[np.arange(labels.size), labels] += 1.5
    scores = np.exp(logits)
    return scores / scores.sum(axis=1, keepdims=True)


def _run(task: str, label_names: list[str], rows: int = 60, calibrated: bool = True):
    """The three objects ``write_run_plots`` reads, without training."""
    labels = np.arange(rows) % len(label_names)
    raw = _probabilities(labels, len(label_names))
    test = np.sqrt(raw) / np.sqrt(raw).sum(axis=1, keepdims=True) if calibrated else raw
    outcome = SimpleNamespace(
        history=HISTORY,
        best_step=20,
        test_probabilities=test if task == "classification" else raw[:, :1],
        raw_test_probabilities=raw if task == "classification" else None,
        metrics={"threshold": {"value": 0.3}} if len(label_names) == 2 else {},
    )
    recipe = SimpleNamespace(
        task=task,
        eval=SimpleNamespace(primary_metric="roc_auc" if task == "classification" else "loss"),
        data=SimpleNamespace(positive_label=label_names[-1] if task == "classification" else None),
    )
    data = SimpleNamespace(
        label_names=label_names,
        positive_label=recipe.data.positive_label,
        frames={"test": pd.DataFrame({"label": labels})},
    )
    return outcome, recipe, data


@pytest.mark.parametrize(
    ("task", "label_names", "expected"),
    [
        ("classification", ["good", "bad"], [TRAINING_PLOT, ROC_PLOT, RELIABILITY_PLOT, CONFUSION_PLOT]),
        ("classification", ["a", "b", "c", "d"], [TRAINING_PLOT, ROC_PLOT, CONFUSION_PLOT]),
        ("regression", ["price"], [TRAINING_PLOT]),
        ("multi_label", ["x", "y", "z"], [TRAINING_PLOT]),
    ],
)
def test_each_task_gets_its_plots(
    tmp_path: Path, task: str, label_names: list[str], expected: list[str]
) -> None:
    written = write_run_plots(tmp_path, *_run(task, label_names))
    assert written == expected
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(expected)
    assert all(_is_png(tmp_path / name) for name in written)


def test_no_history_no_training_plot_and_uncalibrated_reliability(tmp_path: Path) -> None:
    outcome, recipe, data = _run("classification", ["good", "bad"], calibrated=False)
    outcome.history, outcome.raw_test_probabilities = [], outcome.test_probabilities
    assert write_run_plots(tmp_path, outcome, recipe, data) == [ROC_PLOT, RELIABILITY_PLOT, CONFUSION_PLOT]
    assert not plot_training(tmp_path / "none.png", [], "roc_auc") and not (tmp_path / "none.png").exists()


def test_training_plot_tolerates_gaps_and_a_loss_primary(tmp_path: Path) -> None:
    history = [dict(row, validation_roc_auc=None) for row in HISTORY[:1]] + HISTORY[1:]
    assert plot_training(tmp_path / "a.png", history, "roc_auc", best_step=None)
    assert plot_training(tmp_path / "b.png", history, "loss", best_step=30)
    assert _is_png(tmp_path / "a.png") and _is_png(tmp_path / "b.png")


def test_roc_skips_what_is_undefined(tmp_path: Path) -> None:
    one_class = np.zeros(20, dtype=np.int64)
    probabilities = _probabilities(one_class, 2)
    assert not plot_roc(tmp_path / "roc.png", probabilities, one_class, ["good", "bad"], 1)
    assert not (tmp_path / "roc.png").exists()
    many = np.arange(150) % 15  # 15 classes: the 10 most frequent are drawn
    assert plot_roc(tmp_path / "roc.png", _probabilities(many, 15), many, [f"c{i}" for i in range(15)], 0)


def test_confusion_counts_follow_the_metrics_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The matrix uses the same rule as adapters.metrics: positive when P(positive) >= the cut-off."""
    import sklearn.metrics

    seen = {}
    real = sklearn.metrics.confusion_matrix

    def spy(truth, predicted, **kwargs):
        seen["predicted"] = np.asarray(predicted)
        return real(truth, predicted, **kwargs)

    monkeypatch.setattr(sklearn.metrics, "confusion_matrix", spy)
    probabilities = np.array([[0.7, 0.3], [0.71, 0.29], [0.2, 0.8]])
    plot_confusion(tmp_path / "c.png", probabilities, np.array([1, 0, 1]), ["good", "bad"], 1, threshold=0.3)
    assert seen["predicted"].tolist() == [1, 0, 1]  # 0.3 >= 0.3 is positive, 0.29 is not
    assert _is_png(tmp_path / "c.png")


def test_card_section_lists_only_what_was_written() -> None:
    recipe = SimpleNamespace(
        eval=SimpleNamespace(primary_metric="roc_auc"), data=SimpleNamespace(positive_label="bad")
    )
    metrics = {"threshold": {"value": 0.25}}
    assert card_section([], recipe, ["good", "bad"], metrics, {"best_step": 3}) == ""
    text = card_section([TRAINING_PLOT, CONFUSION_PLOT], recipe, ["good", "bad"], metrics, {"best_step": 3})
    assert "(training.png)" in text and "(confusion.png)" in text and "roc.png" not in text
    assert "0.250" in text and "best step, 3" in text


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, run_plots: None) -> Path:
    """A tiny binary artifact with a few evaluations and temperature calibration, plots rendered."""
    recipe = tiny_recipe(tiny_model_dir, training={"eval_every": 3}, eval={"calibration": "temperature"})
    output = tmp_path_factory.mktemp("plots") / "tiny"
    return adapters.train(recipe, data=make_frame(80), output_dir=output, progress=False).output_dir


def test_trained_artifact_has_plots_linked_from_its_card(trained: Path) -> None:
    expected = [TRAINING_PLOT, ROC_PLOT, RELIABILITY_PLOT, CONFUSION_PLOT]
    assert json.loads((trained / "training_summary.json").read_text())["plots"] == expected
    card = (trained / "README.md").read_text()
    assert "## Plots" in card
    for name in expected:
        assert _is_png(trained / name), name
        assert f"]({name})" in card, name
    assert card.index("## Plots") < card.index("## Cost and energy")

"""Artifacts: atomic, complete, self-describing, and reloadable with plain PEFT to identical scores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors import safe_open

import adapters
from adapters.artifact import ARTIFACT_FILES, check_parity
from adapters.errors import AdaptersUserError
from tests.conftest import make_frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> adapters.api.TrainResult:
    from tests.conftest import tiny_recipe

    output = tmp_path_factory.mktemp("artifacts") / "tiny"
    recipe = tiny_recipe(
        tiny_model_dir,
        training={"epochs": 2, "log_with": ["tensorboard"]},
        method={"modules_to_save": ["pooler"]},
    )
    return adapters.train(recipe, data=make_frame(80), output_dir=output, progress=False)


def test_artifact_files(trained) -> None:
    directory = trained.output_dir
    for name in ARTIFACT_FILES:
        assert (directory / name).is_file(), name
    assert not list(directory.parent.glob(".tiny.*")), "staging dir left behind"
    assert not list(directory.glob("*.bin")) and not list(directory.glob("*.pt")), "only safetensors"
    assert list((directory / "logs").rglob("events.out.tfevents.*")), "TensorBoard logs"
    metrics = json.loads((directory / "metrics.json").read_text())
    assert set(metrics) == {"validation", "test", "calibration", "threshold", "cost"}
    cost = metrics["cost"]
    assert 0 < cost["trainable_params"] < cost["total_params"]
    assert cost["trainable_percent"] == pytest.approx(
        100 * cost["trainable_params"] / cost["total_params"], 1e-3
    )
    assert cost["model_memory_footprint_bytes"] > 4 * cost["total_params"] * 0.9  # fp32 weights
    assert cost["peak_rss_bytes"] > 50e6 and cost["train_samples_per_second"] > 0
    assert {"roc_auc", "accuracy", "f1", "log_loss", "expected_cost"} <= set(metrics["test"])
    card = (directory / "README.md").read_text()
    assert "base_model:" in card and "lora" in card and "roc_auc" in card


def test_task_head_and_pooler_saved(trained) -> None:
    with safe_open(str(trained.output_dir / "adapter_model.safetensors"), framework="pt") as handle:
        keys = list(handle.keys())
    assert any("classifier" in key for key in keys)
    assert any("pooler" in key for key in keys)
    config = json.loads((trained.output_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "good", "1": "bad"}
    assert config["problem_type"] == "single_label_classification"
    assert config["decision_threshold"] == 0.5 and config["positive_label"] == "bad"


def test_loaded_classifier_keeps_decision_settings(trained) -> None:
    """The adapter's config.json settings reach the reloaded model (not only the base model's config)."""
    classifier = adapters.load(trained.output_dir)
    assert classifier.positive_label == "bad" and classifier.threshold == 0.5
    assert classifier.decide(np.array([[0.45, 0.55], [0.55, 0.45]])) == ["bad", "good"]


def test_predictions_csv_matches_loaded_classifier(trained) -> None:
    predictions = pd.read_csv(trained.output_dir / "predictions.csv", dtype={"row_id": str})
    assert list(predictions.columns) == ["row_id", "label", "prob_good", "prob_bad"]
    frame = make_frame(80).set_index("applicant").loc[predictions["row_id"]].reset_index()
    classifier = adapters.load(trained.output_dir)
    probabilities = classifier.predict_proba(frame)
    np.testing.assert_allclose(probabilities, predictions[["prob_good", "prob_bad"]].to_numpy(), atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert predictions["label"].tolist() == frame["outcome"].tolist()
    labels = classifier.predict(frame)
    assert set(labels) <= {"good", "bad"}
    assert labels == ["bad" if p >= 0.5 else "good" for p in probabilities[:, 1]]


def test_plain_peft_loads_without_adapters(trained) -> None:
    """A fresh interpreter that never imports ``adapters`` reproduces the probabilities and label names."""
    texts = make_frame(80)["note"].head(5).tolist()
    script = f"""
import json, sys
import torch
from peft import AutoPeftModelForSequenceClassification
from transformers import AutoConfig, AutoTokenizer
path = {str(trained.output_dir)!r}
config = AutoConfig.from_pretrained(path)
model = AutoPeftModelForSequenceClassification.from_pretrained(
    path, id2label=config.id2label, label2id=config.label2id, num_labels=config.num_labels).eval()
tokenizer = AutoTokenizer.from_pretrained(path)
batch = tokenizer({texts!r}, padding=True, return_tensors="pt")
with torch.no_grad():
    logits = model(**batch).logits
# the README's recipe: the temperature fitted on validation is in config.json
probs = (logits / config.calibration["temperature"]).softmax(-1).tolist()
assert "adapters" not in sys.modules
print(json.dumps({{"probs": probs, "labels": model.config.id2label}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    expected = adapters.load(trained.output_dir).predict_proba(texts)
    np.testing.assert_allclose(np.array(payload["probs"]), expected, atol=1e-5)
    assert payload["labels"] == {"0": "good", "1": "bad"}


def test_parity_check_catches_a_lost_head(trained) -> None:
    classifier = adapters.load(trained.output_dir)
    model = classifier.model
    head = model.base_model.model.classifier.modules_to_save["default"]
    with __import__("torch").no_grad():
        head.weight[1].add_(1.0)  # the in-memory model now differs from what is on disk
    with pytest.raises(RuntimeError, match="parity check failed"):
        check_parity(
            model, classifier.tokenizer, trained.output_dir, ["salary house owner", "debt late risk"]
        )


def test_parity_against_recorded_probabilities(trained) -> None:
    """Sharded runs (FSDP/DeepSpeed) compare the reloaded adapter with the probabilities the run reported."""
    import torch

    classifier = adapters.load(trained.output_dir)
    texts = ["salary house owner", "debt late risk"]
    recorded = torch.from_numpy(classifier.logits(texts)).softmax(-1).numpy()  # uncalibrated
    difference = check_parity(
        classifier.model, classifier.tokenizer, trained.output_dir, texts, expected=recorded
    )
    assert difference < 1e-5
    with pytest.raises(RuntimeError, match="parity check failed"):
        check_parity(
            classifier.model,
            classifier.tokenizer,
            trained.output_dir,
            texts,
            expected=recorded[:, ::-1].copy(),
        )


def test_existing_output_refused_and_nothing_half_written(trained, recipe_for, tmp_path: Path) -> None:
    with pytest.raises(AdaptersUserError, match="exists"):
        adapters.train(recipe_for(), data=make_frame(80), output_dir=trained.output_dir)
    broken = make_frame(80)
    broken.loc[5, "outcome"] = "unknown-label"
    target = tmp_path / "never"
    with pytest.raises(AdaptersUserError, match="row 6"):
        adapters.train(recipe_for(), data=broken, output_dir=target)
    assert not target.exists() and not list(tmp_path.iterdir())


def test_failed_training_leaves_nothing(recipe_for, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import adapters.artifact as artifact

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(artifact, "write_model_card", explode, raising=False)
    monkeypatch.setattr("adapters.card.write_model_card", explode)
    target = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk full"):
        adapters.train(
            recipe_for(training={"max_steps": 1}), data=make_frame(80), output_dir=target, progress=False
        )
    assert not list(tmp_path.iterdir())


def test_overwrite_replaces(recipe_for, tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    adapters.train(
        recipe_for(training={"max_steps": 1}),
        data=make_frame(80),
        output_dir=target,
        overwrite=True,
        progress=False,
    )
    assert not (target / "stale.txt").exists() and (target / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_evaluate_and_predict_api(trained, tmp_path: Path) -> None:
    frame = make_frame(40, seed=5)
    path = tmp_path / "holdout.csv"
    frame.to_csv(path, index=False)
    metrics = adapters.evaluate(trained.output_dir, path)
    assert 0.0 <= metrics["roc_auc"] <= 1.0 and "expected_cost" in metrics
    out = tmp_path / "scored.csv"
    result = adapters.predict(trained.output_dir, path, out)
    written = pd.read_csv(out)
    assert list(written.columns) == [*frame.columns, "prob_good", "prob_bad", "prediction"]
    assert len(written) == 40 and len(result) == 40
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("method", [{"type": "prompt_tuning", "num_virtual_tokens": 4}, {"type": "ia3"}])
def test_other_methods_write_loadable_artifacts(recipe_for, tmp_path: Path, method: dict) -> None:
    recipe = recipe_for(training={"max_steps": 2})
    recipe["method"] = method
    result = adapters.train(recipe, data=make_frame(80), output_dir=tmp_path / "out", progress=False)
    assert result.summary["parity_max_abs_diff"] <= 1e-4
    assert adapters.load(result.output_dir).predict_proba(["salary house owner"]).shape == (1, 2)


def test_output_location_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.artifact import check_output_location

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    csv = data_dir / "loans.csv"
    csv.write_text("note,outcome\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("{}")
    monkeypatch.chdir(data_dir)
    check_output_location(data_dir / "outputs" / "x", csv)  # data in the working dir, default outputs/
    with pytest.raises(AdaptersUserError, match="contains the data"):
        check_output_location(data_dir, csv)
    with pytest.raises(AdaptersUserError, match="inside the data directory"):
        check_output_location(data_dir / "out", data_dir)  # a directory source: never inside it
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AdaptersUserError, match="inside the data directory"):
        check_output_location(data_dir / "out", csv)
    with pytest.raises(AdaptersUserError, match="contains the data or recipe"):
        check_output_location(tmp_path, csv, [recipe])
    check_output_location(tmp_path / "out", csv, [recipe])
    with pytest.raises(AdaptersUserError, match="not writable"):
        check_output_location(recipe / "out", csv)

"""Tasks beyond single-label classification: multi-label (sigmoid, per-label thresholds) and regression."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import adapters
from adapters.errors import AdaptersUserError
from adapters.recipe import load_recipe
from tests.conftest import tiny_recipe, write_data

FLAGS = {
    "debt": "arrears",
    "late": "arrears",
    "unemployed": "income_loss",
    "salary": "stable",
    "owner": "stable",
}


def flagged_frame(rows: int = 160, seed: int = 0) -> pd.DataFrame:
    """Notes of 3 words; each row's labels are the flags of its words ("" when none), its score the
    number of risk words (a learnable regression target)."""
    rng = random.Random(seed)
    words = [*FLAGS, "teacher", "house", "loan"]
    records = []
    for index in range(rows):
        note = [rng.choice(words) for _ in range(3)]
        flags = sorted({FLAGS[word] for word in note if word in FLAGS})
        risk = sum(word in ("debt", "late", "unemployed") for word in note) * 10.0 + 100.0
        records.append(
            {"applicant": f"A{index:03d}", "note": " ".join(note), "flags": "|".join(flags), "risk": risk}
        )
    return pd.DataFrame(records)


def task_recipe(model_dir: Path, task: str, label_column: str) -> dict:
    recipe = tiny_recipe(
        model_dir,
        training={"epochs": 8, "per_device_batch_size": 8, "learning_rate": 3e-2, "log_with": []},
    )
    recipe["task"] = task
    recipe["data"] = {
        "text_columns": ["note"],
        "label_column": label_column,
        "id_column": "applicant",
        "max_length": 32,
    }
    recipe.pop("eval")  # the task's own default metrics
    return recipe


def test_multi_label_trains_tunes_thresholds_and_predicts(tiny_model_dir: Path, tmp_path: Path) -> None:
    frame = flagged_frame()
    result = adapters.train(
        task_recipe(tiny_model_dir, "multi_label", "flags"),
        data=frame,
        output_dir=tmp_path / "ml",
        progress=False,
    )
    assert set(result.metrics["test"]) >= {"f1_micro", "f1_macro", "subset_accuracy", "loss"}
    assert result.metrics["test"]["f1_micro"] > 0.7
    saved = pd.read_csv(result.output_dir / "predictions.csv", keep_default_na=False)
    assert list(saved.columns) == ["row_id", "label", "prob_arrears", "prob_income_loss", "prob_stable"]
    classifier = adapters.load(result.output_dir)
    assert classifier.label_names == ["arrears", "income_loss", "stable"]
    assert len(classifier.label_thresholds) == 3 and all(0 < t < 1 for t in classifier.label_thresholds)
    probabilities = classifier.predict_proba(["debt late teacher", "salary owner house"])
    assert probabilities.shape == (2, 3) and not np.allclose(probabilities.sum(1), 1)  # independent sigmoids
    predicted = classifier.predict(["debt late teacher", "salary owner house"])
    assert "arrears" in predicted[0].split("|") and "stable" in predicted[1].split("|")
    scored = adapters.evaluate(result.output_dir, write_data(tmp_path, frame.head(40), "holdout.csv"))
    assert 0 <= scored["f1_micro"] <= 1


def test_regression_learns_standardised_target_and_reports_units(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    frame = flagged_frame()
    result = adapters.train(
        task_recipe(tiny_model_dir, "regression", "risk"),
        data=frame,
        output_dir=tmp_path / "reg",
        progress=False,
    )
    test = result.metrics["test"]
    assert set(test) >= {"mse", "rmse", "mae", "r2"} and test["r2"] > 0.5
    assert test["rmse"] == pytest.approx(test["mse"] ** 0.5)
    saved = pd.read_csv(result.output_dir / "predictions.csv")
    assert list(saved.columns) == ["row_id", "label", "prediction"]
    assert 90 < saved["prediction"].mean() < 130  # in the target's own units (100-130), not standardised
    classifier = adapters.load(result.output_dir)
    low, high = classifier.predict(["teacher house loan", "debt late unemployed"])
    assert high > low + 5
    out = adapters.predict(result.output_dir, frame.head(5))
    assert "prediction" in out and not any(column.startswith("prob_") for column in out)


def test_task_data_errors_name_the_row(tiny_model_dir: Path) -> None:
    frame = flagged_frame(40)
    frame["risk"] = frame["risk"].astype(object)  # as read from a CSV with a word in a number column
    frame.loc[7, "risk"] = "high"
    with pytest.raises(AdaptersUserError, match=r"row 8.*'risk'|'risk'.*row 8"):
        adapters.train(
            task_recipe(tiny_model_dir, "regression", "risk"), data=frame, output_dir="x", progress=False
        )
    recipe = task_recipe(tiny_model_dir, "multi_label", "flags")
    recipe["data"]["label_names"] = ["arrears", "stable", "income_loss"]
    frame = flagged_frame(40)
    frame.loc[3, "flags"] = "arrears|fraud"
    with pytest.raises(AdaptersUserError, match=r"row 4, column 'flags': label 'fraud' is not one of"):
        adapters.train(recipe, data=frame, output_dir="x", progress=False)


def test_task_recipe_rules() -> None:
    recipe = load_recipe({"task": "regression", "data": {"label_column": "risk"}})
    assert recipe.eval.primary_metric == "r2" and recipe.eval.greater_is_better is not False
    assert load_recipe({"task": "multi_label"}).eval.primary_metric == "f1_micro"
    with pytest.raises(AdaptersUserError, match="for classification"):
        load_recipe({"task": "regression", "eval": {"cost_matrix": {"bad": {"good": 5}}}})
    with pytest.raises(AdaptersUserError, match="verbalizer is for classification"):
        load_recipe(
            {"task": "multi_label", "model": {"head": "verbalizer", "verbalizer": {"words": {"a": " a"}}}}
        )


def test_regression_recipe_tiny_twin(tiny_model_dir: Path, tmp_path: Path) -> None:
    """recipes/german-credit/regression-amount.yaml on the built-in data, with the tiny model."""
    overrides = {
        "model.name_or_path": str(tiny_model_dir),
        "training.max_steps": 3,
        "training.eval_every": 3,
        "data.max_length": 32,
        "data.train_fraction": 0.2,
    }
    result = adapters.train(
        "german-credit/regression-amount", overrides, output_dir=tmp_path / "r", progress=False
    )
    assert set(result.metrics["test"]) == {"loss", "mse", "rmse", "mae", "r2"}
    saved = pd.read_csv(result.output_dir / "predictions.csv")
    assert len(saved) == 200 and 1000 < saved["prediction"].mean() < 6000  # DM, not standardised
    assert 1000 < saved["label"].mean() < 6000


def test_risk_flags_recipe_tiny_twin(tiny_model_dir: Path, tmp_path: Path) -> None:
    """recipes/loan-notes/risk-flags.yaml on the built-in synthetic notes, with the tiny model."""
    overrides = {
        "model.name_or_path": str(tiny_model_dir),
        "training.max_steps": 3,
        "training.eval_every": 3,
        "data.max_length": 32,
        "data.train_fraction": 0.2,
    }
    result = adapters.train("loan-notes/risk-flags", overrides, output_dir=tmp_path / "f", progress=False)
    assert set(result.metrics["test"]) == {
        "loss",
        "f1_micro",
        "f1_macro",
        "precision_micro",
        "recall_micro",
        "subset_accuracy",
    }
    saved = pd.read_csv(result.output_dir / "predictions.csv", keep_default_na=False)
    assert [c for c in saved.columns if c.startswith("prob_")] == [
        "prob_arrears",
        "prob_collateral",
        "prob_guarantor",
        "prob_income_loss",
    ]


def test_loan_notes_are_reproducible_and_tagged() -> None:
    from adapters.data.synthetic import PII_TAGS, loan_notes

    first, second = loan_notes(50), loan_notes(50)
    pd.testing.assert_frame_equal(first, second)
    for tokens, tags in zip(first["tokens"], first["pii_tags"], strict=True):
        assert len(tokens.split()) == len(tags.split()) and set(tags.split()) <= set(PII_TAGS)
    assert first["pii_tags"].str.contains("B-IBAN").any() and first["pii_tags"].str.contains("I-NAME").any()


PII_OVERRIDES = {
    "training.epochs": 8,
    "training.learning_rate": 3e-2,
    "training.early_stopping_patience": None,
    "data.train_fraction": 0.5,
    "data.max_length": 64,
}


def test_pii_tagging_recipe_tags_words_and_reloads(tiny_model_dir: Path, tmp_path: Path) -> None:
    """recipes/loan-notes/pii-tagging.yaml (token classification) with the tiny model."""
    from peft import PeftModel
    from transformers import AutoModelForTokenClassification

    overrides = {"model.name_or_path": str(tiny_model_dir), **PII_OVERRIDES}
    result = adapters.train("loan-notes/pii-tagging", overrides, output_dir=tmp_path / "pii", progress=False)
    test = result.metrics["test"]
    assert set(test) == {"loss", "entity_f1", "entity_precision", "entity_recall", "token_accuracy"}
    assert test["entity_f1"] > 0.2 and test["token_accuracy"] > 0.9  # learns; most words are O
    assert result.summary["parity_max_abs_diff"] < 1e-4
    saved = pd.read_csv(result.output_dir / "predictions.csv")
    assert list(saved.columns) == ["row_id", "label", "prediction"]
    classifier = adapters.load(result.output_dir)
    assert classifier.label_names[0] == "O" and set(classifier.label_names) == {
        "O",
        "B-NAME",
        "I-NAME",
        "B-IBAN",
        "B-PHONE",
    }
    note = "Salary is paid into account DE12345678901234567890 ."
    (tags,) = classifier.tag([note])
    assert len(tags) == len(note.split()) and tags[5] == "B-IBAN"
    with pytest.raises(AdaptersUserError, match="tags words"):
        classifier.predict_proba([note])
    from adapters.data.synthetic import loan_notes

    scored = adapters.evaluate(result.output_dir, write_data(tmp_path, loan_notes(40), "holdout.csv"))
    assert 0 <= scored["entity_f1"] <= 1 and scored["token_accuracy"] > 0.8
    out = adapters.predict(result.output_dir, loan_notes(3))
    assert [len(tags.split()) for tags in out["prediction"]] == [
        len(words.split()) for words in out["tokens"]
    ]
    # plain transformers + PEFT give the same per-token logits
    base = AutoModelForTokenClassification.from_pretrained(
        str(tiny_model_dir), num_labels=5, id2label=dict(enumerate(classifier.label_names))
    )
    plain = PeftModel.from_pretrained(base, str(result.output_dir)).eval()
    encoded = classifier.tokenizer([note], return_tensors="pt")
    import torch

    with torch.no_grad():
        torch.testing.assert_close(plain(**encoded).logits, classifier.model(**encoded).logits)


def test_word_tags_errors_and_alignment(tiny_model_dir: Path) -> None:
    from adapters.data.synthetic import loan_notes
    from adapters.data.tokenize import align_word_tags

    assert align_word_tags([None, 0, 0, 1, None], [3, 4]) == [-100, 3, -100, 4, -100]
    frame = loan_notes(40)
    frame.loc[2, "pii_tags"] = "O O"
    recipe = tiny_recipe(tiny_model_dir)
    recipe["task"] = "token_classification"
    recipe["data"] = {"text_columns": ["tokens"], "label_column": "pii_tags", "max_length": 32}
    recipe.pop("eval")
    with pytest.raises(AdaptersUserError, match=r"row 3, column 'pii_tags': 2 tags for \d+ words"):
        adapters.train(recipe, data=frame, output_dir="x", progress=False)
    with pytest.raises(AdaptersUserError, match="exactly one data.text_columns"):
        load_recipe({"task": "token_classification", "data": {"text_columns": ["a", "b"]}})


def test_sft_recipe_tiny_twin_learns_the_responses(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """recipes/loan-notes/sft-flags.yaml, tiny random Llama: response-only loss, perplexity, generate."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from adapters.data.tokenize import prompt_response_ids

    overrides = {
        "model.name_or_path": str(tiny_llama_dir),
        "training.epochs": 3,
        "training.learning_rate": 1e-2,
        "training.eval_every": 5,
        "training.early_stopping_patience": None,
        "data.train_fraction": 0.3,
        "data.max_length": 96,
    }
    result = adapters.train("loan-notes/sft-flags", overrides, output_dir=tmp_path / "sft", progress=False)
    perplexities = [record["validation_perplexity"] for record in result.summary["history"]]
    assert perplexities[-1] < 0.9 * perplexities[0]  # the responses became more predictable
    assert (
        set(result.metrics["test"]) == {"loss", "perplexity"} and result.summary["parity_max_abs_diff"] < 1e-4
    )
    saved = pd.read_csv(result.output_dir / "predictions.csv")
    assert (
        list(saved.columns) == ["row_id", "label", "loss_per_token"]
        and saved["label"].str.startswith("Risk").all()
    )
    classifier = adapters.load(result.output_dir)
    (answer,) = classifier.predict(["List the risk flags in this loan note.\nNote: No other loans are open."])
    assert isinstance(answer, str)
    # the prompt is context only: its tokens are not scored
    ids, labels = prompt_response_ids(classifier.tokenizer, "a prompt", "Risk flags: none.", 64)
    prompt_length = len(classifier.tokenizer("a prompt\n")["input_ids"])
    assert labels[:prompt_length] == [-100] * prompt_length and -100 not in labels[prompt_length:]
    assert labels[prompt_length:] == ids[prompt_length:]
    assert labels[-1] == classifier.tokenizer.eos_token_id
    plain = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)), str(result.output_dir)
    )
    encoded = classifier.tokenizer(["Note: late payment"], return_tensors="pt")
    import torch

    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(**encoded).logits, classifier.model(**encoded).logits)

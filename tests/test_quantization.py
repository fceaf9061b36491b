"""8/4-bit bases on CPU: train → evaluate → train → save → reload reproduces what the run reported.

bitsandbytes' AVX512-BF16 CPU kernels corrupted 4-bit weights after the first evaluation pass (silently in
the saved adapter with double quantization, a crash in the next step otherwise); evaluations between
training steps are exactly what this test interleaves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import adapters
from adapters.data import prepare_data, resolve_data_config
from adapters.recipe import load_recipe
from tests.conftest import make_frame


@pytest.mark.bnb
@pytest.mark.parametrize(
    ("bits", "double_quant"),
    [("8bit", False), ("4bit", False), ("4bit", True)],
    ids=["8bit", "nf4", "nf4-double"],
)
def test_quantized_train_eval_train_save_reload(
    recipe_for, tmp_path: Path, bits: str, double_quant: bool
) -> None:
    recipe = recipe_for(
        model={"quantization": bits, "double_quant": double_quant},
        training={"epochs": 3, "eval_every": 4, "learning_rate": 1e-2},
    )
    frame = make_frame(96)
    result = adapters.train(recipe, data=frame, output_dir=tmp_path / "q", progress=False)
    assert len(result.summary["history"]) >= 3  # evaluations between training steps
    assert result.summary["parity_max_abs_diff"] < 2e-2
    assert result.metrics["test"]["roc_auc"] > 0.7  # still learns with a quantized base
    reported = pd.read_csv(result.output_dir / "predictions.csv").set_index("row_id")
    test = prepare_data(resolve_data_config(load_recipe(recipe).data), frame).frames["test"]
    reloaded = adapters.load(result.output_dir).predict_proba(test["text"].tolist())
    expected = reported.loc[test["row_id"], ["prob_good", "prob_bad"]].to_numpy()
    np.testing.assert_allclose(reloaded, expected, atol=2e-2)
    cost = result.summary.get("base_model", {})
    assert cost.get("quantization") == bits


@pytest.mark.bnb
@pytest.mark.parametrize("task", ["multi_label", "regression"])
def test_other_tasks_train_on_a_4bit_base(tiny_model_dir: Path, tmp_path: Path, task: str) -> None:
    from tests.test_tasks import flagged_frame, task_recipe

    recipe = task_recipe(tiny_model_dir, task, "flags" if task == "multi_label" else "risk")
    recipe["model"]["quantization"] = "4bit"
    recipe["training"]["epochs"] = 2
    result = adapters.train(recipe, data=flagged_frame(80), output_dir=tmp_path / task, progress=False)
    assert result.summary["parity_max_abs_diff"] < 2e-2
    classifier = adapters.load(result.output_dir)
    assert (
        classifier.problem_type
        == {"multi_label": "multi_label_classification", "regression": "regression"}[task]
    )
    assert np.isfinite(classifier.predict_proba(["debt late teacher"])).all()


@pytest.mark.bnb
def test_token_classification_on_a_4bit_base(tiny_model_dir: Path, tmp_path: Path) -> None:
    overrides = {
        "model.name_or_path": str(tiny_model_dir),
        "model.quantization": "4bit",
        "training.max_steps": 4,
        "training.eval_every": 2,
        "data.train_fraction": 0.2,
        "data.max_length": 48,
    }
    result = adapters.train("loan-notes/pii-tagging", overrides, output_dir=tmp_path / "tok4", progress=False)
    assert result.summary["parity_max_abs_diff"] < 2e-2
    (tags,) = adapters.load(result.output_dir).tag(["Call Anna Weber on +49-0301234567 ."])
    assert len(tags) == 6


@pytest.mark.bnb
def test_sft_on_a_4bit_base(tiny_llama_dir: Path, tmp_path: Path) -> None:
    overrides = {
        "model.name_or_path": str(tiny_llama_dir),
        "model.quantization": "4bit",
        "training.max_steps": 4,
        "training.eval_every": 2,
        "data.train_fraction": 0.1,
        "data.max_length": 64,
    }
    result = adapters.train("loan-notes/sft-flags", overrides, output_dir=tmp_path / "sft4", progress=False)
    assert result.summary["parity_max_abs_diff"] < 2e-2 and result.metrics["test"]["perplexity"] > 1
    classifier = adapters.load(result.output_dir)
    from bitsandbytes.nn import Linear4bit

    assert not isinstance(classifier.model.get_base_model().lm_head, Linear4bit)
    assert isinstance(classifier.predict(["List the risk flags.\nNote: late"])[0], str)

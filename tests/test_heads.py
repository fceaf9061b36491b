"""Verbalizer classification with a causal LM: answer-word scores, training, plain-PEFT reload, 4-bit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import adapters
from adapters.errors import AdaptersUserError
from adapters.heads import class_weight_tensor
from adapters.recipe import load_recipe
from tests.conftest import make_frame, tiny_recipe

VERBALIZER = {
    "question": "Is this applicant a good credit risk? Answer:",
    "words": {"good": " yes", "bad": " no"},
}


def verbalizer_recipe(model_dir: Path, **sections: dict) -> dict:
    recipe = tiny_recipe(
        model_dir,
        model={"head": "verbalizer", "verbalizer": VERBALIZER},
        method={"type": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        training={"epochs": 4, "per_device_batch_size": 8, "learning_rate": 1e-2, "log_with": []},
    )
    for section, values in sections.items():
        recipe[section] = {**recipe[section], **values}
    return recipe


def test_verbalizer_trains_and_reloads_with_plain_peft(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = adapters.train(
        verbalizer_recipe(tiny_llama_dir), data=make_frame(120), output_dir=tmp_path / "out", progress=False
    )
    assert result.metrics["test"]["roc_auc"] > 0.8  # the toy task is learnable through " yes" / " no"
    saved = pd.read_csv(result.output_dir / "predictions.csv")
    classifier = adapters.load(result.output_dir)
    assert classifier.label_names == ["good", "bad"] and classifier.verbalizer["words"]["bad"] == " no"

    # What a user without this package does: base LM + adapter, next-token logits of the answer words.
    tokenizer = AutoTokenizer.from_pretrained(result.output_dir)
    assert tokenizer.padding_side == "left"
    base = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir))
    model = PeftModel.from_pretrained(base, str(result.output_dir)).eval()
    texts = ["salary house owner", "debt late default"]
    yes, no = (tokenizer(word, add_special_tokens=False)["input_ids"][0] for word in (" yes", " no"))
    encoded = tokenizer([f"{t}\n{VERBALIZER['question']}" for t in texts], return_tensors="pt", padding=True)
    import torch

    temperature = json.loads((result.output_dir / "config.json").read_text())["calibration"]["temperature"]
    with torch.no_grad():  # the answer words' logits, divided by the temperature fitted on validation
        plain = (model(**encoded).logits[:, -1, [yes, no]] / temperature).softmax(-1).numpy()
    np.testing.assert_allclose(classifier.predict_proba(texts), plain, atol=1e-5)
    assert list(saved.columns) == ["row_id", "label", "prob_good", "prob_bad"]


def test_verbalizer_refuses_shared_first_tokens_and_encoders(
    tiny_llama_dir: Path, tiny_model_dir: Path
) -> None:
    clash = verbalizer_recipe(
        tiny_llama_dir, model={"verbalizer": {**VERBALIZER, "words": {"good": " no", "bad": " no"}}}
    )
    with pytest.raises(AdaptersUserError, match="model.verbalizer.words"):
        adapters.train(clash, data=make_frame(40), output_dir="unused", progress=False)
    encoder = verbalizer_recipe(tiny_model_dir, method={"target_modules": ["query", "value"]})
    with pytest.raises(AdaptersUserError, match="has none"):
        adapters.train(encoder, data=make_frame(40), output_dir="unused", progress=False)


def test_verbalizer_recipe_checks() -> None:
    with pytest.raises(AdaptersUserError, match="go together"):
        load_recipe({"model": {"head": "verbalizer"}})
    with pytest.raises(AdaptersUserError, match=r"no word for labels \['bad'\]"):
        load_recipe(
            {
                "model": {"head": "verbalizer", "verbalizer": {"words": {"good": " yes"}}},
                "data": {"label_names": ["good", "bad"]},
            }
        )
    with pytest.raises(AdaptersUserError, match="cannot be used for causal_lm"):
        load_recipe({"model": {"head": "verbalizer", "verbalizer": VERBALIZER}, "method": {"type": "poly"}})


@pytest.mark.bnb
def test_verbalizer_in_4bit_on_cpu(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """The LM head stays full precision (it scores the answers); train → eval → save → reload parity."""
    recipe = verbalizer_recipe(tiny_llama_dir, model={"quantization": "4bit"}, training={"epochs": 2})
    result = adapters.train(recipe, data=make_frame(80), output_dir=tmp_path / "q", progress=False)
    classifier = adapters.load(result.output_dir)
    from bitsandbytes.nn import Linear4bit

    base = classifier.model.get_base_model()
    assert not isinstance(base.lm_head, Linear4bit)
    assert any(isinstance(module, Linear4bit) for module in base.modules())
    saved = pd.read_csv(result.output_dir / "predictions.csv")
    assert np.isfinite(saved["prob_bad"]).all()


@pytest.mark.bnb
def test_qlora_decoder_recipe_tiny_twin(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """recipes/german-credit/qlora-decoder.yaml as shipped (4-bit NF4 + double quant, bf16, checkpointing,
    LoRA on all linear layers, verbalizer), with a tiny random Llama and the toy data."""
    recipe = load_recipe("german-credit/qlora-decoder")
    assert recipe.model.quantization == "4bit" and recipe.training.gradient_checkpointing
    overrides = {
        "model.name_or_path": str(tiny_llama_dir),
        "training.epochs": 1,
        "data.text_columns": ["note"],
        "data.label_column": "outcome",
        "data.label_names": ["good", "bad"],
        "data.positive_label": "bad",
        "data.id_column": "applicant",
        "data.max_length": 32,
    }
    result = adapters.train(
        "german-credit/qlora-decoder",
        overrides,
        # the recipe's fairness report reads these columns (kept out of the text)
        data=make_frame(64).assign(
            age=[22 + (7 * i) % 40 for i in range(64)],
            foreign_worker=["a foreign worker" if i % 5 == 0 else "not a foreign worker" for i in range(64)],
            personal_status_sex="a single female",
        ),
        output_dir=tmp_path / "twin",
        progress=False,
    )
    classifier = adapters.load(result.output_dir)
    probabilities = classifier.predict_proba(["salary house owner"])
    assert probabilities.shape == (1, 2) and abs(probabilities.sum() - 1) < 1e-5
    assert result.summary["parity_max_abs_diff"] < 2e-2
    assert (result.output_dir / "fairness.json").is_file()


def test_class_weights() -> None:
    labels = np.array([0, 0, 0, 1])
    balanced = class_weight_tensor("balanced", labels, ["good", "bad"])
    assert balanced.tolist() == pytest.approx([4 / 6, 2.0])
    assert class_weight_tensor({"bad": 3.0}, labels, ["good", "bad"]).tolist() == [1.0, 3.0]
    assert class_weight_tensor("none", labels, ["good", "bad"]) is None

"""Model building: head found from the load report, every listed PEFT method trains, 8-bit on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adapters.base_model import new_module_names
from adapters.errors import AdaptersUserError
from adapters.modeling import build_model, build_peft_config
from adapters.quantization import quantization_config
from adapters.recipe import MethodConfig, ModelConfig

LABELS = ["good", "bad"]


def test_head_found_from_load_report(tiny_model_dir: Path) -> None:
    torch.manual_seed(0)
    built = build_model(
        ModelConfig(name_or_path=str(tiny_model_dir)),
        MethodConfig(type="lora", r=4, target_modules=["query"], modules_to_save=["pooler"]),
        LABELS,
        "bad",
        0.3,
    )
    assert built.head_modules == ["classifier"]
    assert set(built.provenance["modules_to_save"]) == {"classifier", "pooler"}
    config = built.model.base_model.model.config
    assert config.id2label == {0: "good", 1: "bad"} and config.label2id == {"good": 0, "bad": 1}
    assert config.decision_threshold == 0.3 and config.positive_label == "bad"
    assert config.name_or_path == str(tiny_model_dir)
    trainable = {name for name, param in built.model.named_parameters() if param.requires_grad}
    assert any("classifier" in name and "modules_to_save" in name for name in trainable)
    assert any("pooler" in name and "modules_to_save" in name for name in trainable)


def test_new_module_names_collapses_to_parent() -> None:
    model = torch.nn.Sequential()
    model.add_module("body", torch.nn.Linear(2, 2))
    head = torch.nn.Sequential()
    head.add_module("dense", torch.nn.Linear(2, 2))
    head.add_module("out_proj", torch.nn.Linear(2, 2))
    model.add_module("classifier", head)
    missing = [f"classifier.{part}.{kind}" for part in ("dense", "out_proj") for kind in ("weight", "bias")]
    assert new_module_names(model, missing) == ["classifier"]
    assert new_module_names(model, ["classifier.dense.weight", "classifier.dense.bias"]) == [
        "classifier.dense"
    ]


def test_head_always_in_modules_to_save() -> None:
    config = build_peft_config(MethodConfig(type="lora", r=2, target_modules=["query"]), ["score"])
    assert config.modules_to_save == ["score"]


def test_bad_method_value_is_user_error() -> None:
    with pytest.raises(AdaptersUserError, match="method"):
        build_peft_config(
            MethodConfig(type="lora", r=2, target_modules=["query"], layers_pattern="layer"), ["x"]
        )


def test_missing_base_model_is_user_error(tmp_path: Path) -> None:
    with pytest.raises(AdaptersUserError, match="model.name_or_path"):
        build_model(ModelConfig(name_or_path=str(tmp_path / "nothing")), MethodConfig(type="lora"), LABELS)


def _prefix_tuning_supported(model_dir: Path) -> bool:
    try:
        build_model(ModelConfig(name_or_path=str(model_dir)), MethodConfig(type="prefix_tuning"), LABELS)
    except AdaptersUserError as error:
        assert "past_key_values" in str(error) and "prompt_tuning" in str(error)
        return False
    return True


def test_prefix_tuning_needs_past_key_values(tiny_model_dir: Path, tiny_gpt2_dir: Path) -> None:
    """BERT never takes past_key_values; with transformers 5 + PEFT 0.21 no model does (upstream)."""
    assert not _prefix_tuning_supported(tiny_model_dir)
    _prefix_tuning_supported(tiny_gpt2_dir)  # either trains (older stacks) or fails with the clear error


def test_quantization_config_skips_head() -> None:
    assert quantization_config(ModelConfig(), ["classifier"]) is None
    config = quantization_config(ModelConfig(quantization="8bit"), ["classifier", "pooler"])
    assert config.load_in_8bit and config.llm_int8_skip_modules == ["classifier", "pooler"]
    config = quantization_config(ModelConfig(quantization="4bit"), ["classifier"])
    assert config.load_in_4bit and config.llm_int8_skip_modules == ["classifier"]


@pytest.mark.bnb
@pytest.mark.parametrize("bits", ["8bit", "4bit"])
def test_quantized_model_trains_with_full_precision_head(tiny_model_dir: Path, bits: str) -> None:
    torch.manual_seed(0)
    built = build_model(
        ModelConfig(name_or_path=str(tiny_model_dir), quantization=bits),
        MethodConfig(type="lora", r=4, target_modules=["query", "value"], modules_to_save=["pooler"]),
        LABELS,
    )
    model = built.model
    assert built.head_modules == ["classifier"]
    quantized = [
        name
        for name, module in model.named_modules()
        if type(module).__name__ in ("Linear8bitLt", "Linear4bit")
    ]
    assert quantized and not any("classifier" in name or "pooler" in name for name in quantized)
    head = [param for name, param in model.named_parameters() if "classifier" in name and param.requires_grad]
    assert head and all(param.dtype == torch.float32 for param in head)
    batch = built.tokenizer(["salary house owner", "debt late default"], return_tensors="pt", padding=True)
    model.train()
    model(**batch, labels=torch.tensor([0, 1])).loss.backward()
    assert all(param.grad is not None for param in head)

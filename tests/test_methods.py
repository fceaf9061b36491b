"""The method matrix: every PEFT registry type usable for classification trains, saves and reloads.

The list is PEFT's own registry (``adapters.methods.method_types``), so a tuner added to PEFT is tested
here without anyone adding it: if it cannot work, this test says so and it gets a reason in
``NOT_FOR_TASK``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from adapters.errors import AdaptersUserError
from adapters.methods import NOT_FOR_TASK, method_types, peft_config_class, unsupported_methods
from adapters.modeling import _KV_PREFIX_METHODS, build_model
from adapters.recipe import MethodConfig, ModelConfig, load_recipe
from adapters.reload import load_adapter_model

LABELS = ["good", "bad"]

# Sizes that fit the tiny test model (hidden size 32); PEFT's defaults assume real model sizes.
TINY_ARGS = {
    "adalora": {"init_r": 4, "target_r": 2},
    "c3a": {"block_size": 8},
    "ia3": {"target_modules": ["key", "value", "output.dense"], "feedforward_modules": ["output.dense"]},
    "ln_tuning": {"target_modules": ["LayerNorm"]},
    "miss": {"r": 8},
    "road": {"group_size": 8},
    "shira": {"r": 4},
    "vblora": {"vector_length": 8, "num_vectors": 32},
    "waveft": {"n_frequency": 64},
    "p_tuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 16},
}


def tiny_args(method: str) -> dict:
    """Arguments for ``method`` on the tiny BERT: its sizes, attention targets, few virtual tokens."""
    fields = {field.name for field in dataclasses.fields(peft_config_class(method))}
    args: dict = {}
    if "num_virtual_tokens" in fields:
        args["num_virtual_tokens"] = 4
    elif "target_modules" in fields:
        args["target_modules"] = ["query", "value"]
    return {**args, **TINY_ARGS.get(method, {})}


def test_matrix_is_peft_registry_minus_reasoned_exclusions() -> None:
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    registry = {str(key.value).lower() for key in PEFT_TYPE_TO_CONFIG_MAPPING}
    usable, excluded = set(method_types()), set(unsupported_methods())
    assert registry == (usable - {"dora", "rslora"}) | excluded
    assert not usable & excluded and {"dora", "rslora", "lora", "ia3", "prompt_tuning"} <= usable
    assert all(len(reason) > 20 for reason in NOT_FOR_TASK["classification"].values())


def test_excluded_method_is_refused_with_task_and_alternatives() -> None:
    name, reason = next(iter(unsupported_methods().items()))
    with pytest.raises(AdaptersUserError) as info:
        load_recipe({"method": {"type": name}})
    message = str(info.value)
    assert "classification" in message and reason in message and "lora" in message and "\n" not in message


@pytest.mark.parametrize("method", sorted(method_types()))
def test_method_trains_saves_and_reloads_with_plain_peft(
    tiny_model_dir: Path, tiny_gpt2_dir: Path, tmp_path: Path, method: str
) -> None:
    base = tiny_gpt2_dir if method in _KV_PREFIX_METHODS else tiny_model_dir  # prefixes need a decoder
    torch.manual_seed(0)
    try:
        built = build_model(
            ModelConfig(name_or_path=str(base)),
            MethodConfig(type=method, **tiny_args(method)),
            LABELS,
            total_steps=10,
        )
    except AdaptersUserError as error:
        if method in _KV_PREFIX_METHODS and "past_key_values" in str(error):
            pytest.skip(f"{method} needs past_key_values, which this transformers/PEFT pair cannot pass")
        raise
    model, tokenizer = built.model, built.tokenizer
    batch = tokenizer(["salary house owner", "debt late default"], return_tensors="pt", padding=True)
    trainable = {
        name: param.detach().clone() for name, param in model.named_parameters() if param.requires_grad
    }
    assert trainable and sum(param.numel() for param in model.parameters() if not param.requires_grad) > 0
    optimizer = torch.optim.AdamW([param for param in model.parameters() if param.requires_grad], lr=1e-2)
    model.train()
    model(**batch, labels=torch.tensor([0, 1])).loss.backward()
    optimizer.step()
    changed = [
        name
        for name, param in model.named_parameters()
        if name in trainable and not torch.equal(param, trainable[name])
    ]
    head = built.head_modules[0]
    assert any(head in name for name in changed), f"{method}: head did not train"
    assert any(head not in name for name in changed), f"{method}: adapter did not train"

    model.save_pretrained(tmp_path, safe_serialization=True)
    tokenizer.save_pretrained(tmp_path)
    model.get_base_model().config.save_pretrained(tmp_path)
    assert not list(tmp_path.glob("*.bin"))
    reloaded, _ = load_adapter_model(tmp_path)  # plain transformers + PEFT
    model.eval()
    with torch.no_grad():
        expected = model(**batch).logits
        actual = reloaded(**batch).logits
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)

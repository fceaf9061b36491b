"""The CPU dropout masks: the drop probability, independence, scaling, seeding and the model swap."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adapters.dropout import FastCpuDropout, dropout_keep_mask, use_fast_cpu_dropout

ROWS, COLS = 1000, 1001  # an odd count: the last 32-bit draw masks one element, not two


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_masks_drop_with_probability_p(p: float) -> None:
    torch.manual_seed(0)
    keep = dropout_keep_mask(torch.Size([ROWS, COLS]), p)
    assert keep.shape == (ROWS, COLS) and keep.dtype == torch.bool
    standard_error = (p * (1 - p) / keep.numel()) ** 0.5
    assert abs((~keep).float().mean().item() - p) < 5 * standard_error


def test_the_two_elements_of_one_draw_are_independent() -> None:
    """Elements 2i and 2i+1 share a 32-bit draw: both dropped must happen p² of the time, as for any pair."""
    torch.manual_seed(1)
    p = 0.3
    dropped = ~dropout_keep_mask(torch.Size([2_000_000]), p)
    both = (dropped[0::2] & dropped[1::2]).float().mean().item()
    assert abs(both - p * p) < 5 * (p * p * (1 - p * p) / 1_000_000) ** 0.5
    across = (dropped[1:-1:2] & dropped[2::2]).float().mean().item()  # neighbours from different draws
    assert abs(across - p * p) < 5 * (p * p * (1 - p * p) / 1_000_000) ** 0.5


def test_forward_zeroes_and_rescales_and_backward_uses_the_same_mask() -> None:
    torch.manual_seed(2)
    inputs = (torch.rand(64, 33) + 1).requires_grad_()  # no zeros: a zero output means dropped
    layer = FastCpuDropout(0.25).train()
    outputs = layer(inputs)
    kept = outputs != 0
    assert 0.6 < kept.float().mean().item() < 0.9
    torch.testing.assert_close(outputs[kept], inputs.detach()[kept] / 0.75)
    outputs.sum().backward()
    torch.testing.assert_close(inputs.grad, kept.float() / 0.75)


def test_seeded_masks_repeat_and_eval_is_the_identity() -> None:
    layer, inputs = FastCpuDropout(0.1).train(), torch.ones(8, 16)
    torch.manual_seed(3)
    first = layer(inputs)
    torch.manual_seed(3)
    assert torch.equal(layer(inputs), first)
    assert not torch.equal(layer(inputs), first)  # the next draw is another mask
    assert layer.eval()(inputs) is inputs
    assert FastCpuDropout(0.0).train()(inputs) is inputs


def test_swap_replaces_every_dropout_with_p_and_keeps_eval_outputs(tmp_path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    from adapters.testing import save_random_bert

    base_dir = save_random_bert(tmp_path / "base", dropout=0.1)  # hidden and attention dropout 0.1
    torch.manual_seed(0)
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=2)
    model = get_peft_model(
        base, LoraConfig(task_type="SEQ_CLS", r=4, lora_dropout=0.1, target_modules=["query", "value"])
    )
    model.eval()
    features = {"input_ids": torch.tensor([[101, 2000, 2001, 102]]), "attention_mask": torch.ones(1, 4)}
    before = model(**features).logits
    expected = sum(type(module) is nn.Dropout and module.p > 0 for module in model.modules())
    assert expected >= 8  # embeddings, attention and output per layer, LoRA dropout per target, classifier
    assert use_fast_cpu_dropout(model) == expected
    assert not any(type(module) is nn.Dropout and module.p > 0 for module in model.modules())
    assert sum(isinstance(module, FastCpuDropout) for module in model.modules()) == expected
    torch.testing.assert_close(model(**features).logits, before)

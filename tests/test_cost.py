"""The cost report's measures: FLOPs estimated from shapes, tokens and padding, a per-run memory peak."""

from __future__ import annotations

import numpy as np
import peft
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertConfig, BertForSequenceClassification

from adapters.cost import count_tokens, estimate_training_flops, peak_rss_bytes, reset_peak_rss
from adapters.first_token import use_first_token_last_layer


def _lora_bert(layers: int) -> torch.nn.Module:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=64,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=128,
        attn_implementation="eager",  # plain matmuls, which FlopCounterMode counts
    )
    model = BertForSequenceClassification(config)
    return peft.get_peft_model(
        model, peft.LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"])
    )


def _batch(rows: int = 4, length: int = 48) -> dict[str, torch.Tensor]:
    mask = torch.ones(rows, length, dtype=torch.long)
    mask[0, 30:] = 0  # one padded row
    return {"input_ids": torch.randint(0, 100, (rows, length)), "attention_mask": mask}


def test_count_tokens_separates_real_from_padded() -> None:
    tokens = {"real": 0, "computed": 0, "squared": 0}
    count_tokens(_batch(), tokens)
    count_tokens({"input_ids": torch.zeros(2, 10, dtype=torch.long)}, tokens)  # no mask: all real
    assert tokens == {
        "real": 4 * 48 - 18 + 20,
        "computed": 4 * 48 + 20,
        "squared": 4 * 48**2 + 2 * 100,
        "rows": 6,
    }


@pytest.mark.parametrize("first_token", [False, True])
@pytest.mark.parametrize("layers", [4, 6])
def test_flop_estimate_matches_torchs_counter(layers: int, first_token: bool) -> None:
    """Within 15 % of what torch counts for a forward + backward step of a LoRA model, with the full last
    layer or the first-token one; the estimate is slightly high because the first layer's frozen input
    needs no gradient."""
    model, batch = _lora_bert(layers), _batch()
    layer = use_first_token_last_layer(model) if first_token else None
    with FlopCounterMode(display=False) as counter:
        model(**batch, labels=torch.tensor([0, 1, 0, 1])).loss.backward()
    tokens = {"real": 0, "computed": 0, "squared": 0}
    count_tokens(batch, tokens)
    estimate = estimate_training_flops(model.get_base_model(), tokens, first_token_layer=layer)
    assert 1.0 <= estimate / counter.get_total_flops() < 1.15
    if first_token:  # and it counts less than the full layer would
        assert estimate < 0.95 * estimate_training_flops(model.get_base_model(), tokens)


def test_full_fine_tuning_costs_more_than_lora_per_token() -> None:
    """A frozen base gets no weight gradients: 4N + 2N_trainable per token, against 6N when all train."""
    tokens = {"real": 100, "computed": 100, "squared": 0}
    lora = _lora_bert(2).get_base_model()
    full = BertForSequenceClassification(lora.config)
    ratio = estimate_training_flops(full, tokens) / estimate_training_flops(lora, tokens)
    assert 1.4 < ratio < 1.5  # 6N / (4N + a few LoRA weights)


def test_peak_rss_is_per_run_after_reset() -> None:
    block = np.ones(100_000_000 // 8)  # 100 MB held, then freed
    block.sum()
    before = peak_rss_bytes()
    del block
    if not reset_peak_rss():
        pytest.skip("this kernel does not allow resetting the peak (/proc/self/clear_refs)")
    assert peak_rss_bytes() < before - 50_000_000

"""The first-token last layer: the same logits and gradients as the full layer, only where the head reads
the first token, undone by ``restore_full_last_layer``, and the same trained model through
``adapters.train``."""

from __future__ import annotations

import pytest
import torch

from adapters.first_token import (
    last_layer_if_first_token_read,
    restore_full_last_layer,
    use_first_token_last_layer,
)


def lora_classifier(architecture: str, attention: str = "sdpa") -> torch.nn.Module:
    """A tiny random sequence classifier with LoRA on query, key and value, without dropout."""
    from peft import LoraConfig, get_peft_model
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    config_class, model_class = {
        "bert": (BertConfig, BertForSequenceClassification),
        "roberta": (RobertaConfig, RobertaForSequenceClassification),
    }[architecture]
    config = config_class(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=2,
        pad_token_id=1,
    )
    config._attn_implementation = attention
    torch.manual_seed(0)
    model = model_class(config)
    lora = {
        "r": 4,
        "lora_dropout": 0.0,
        "target_modules": ["query", "key", "value"],
        "init_lora_weights": False,
    }
    return get_peft_model(model, LoraConfig(task_type="SEQ_CLS", **lora))


def padded_batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    input_ids = torch.randint(3, 100, (3, 9))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 5:], input_ids[0, 5:] = 0, 1  # a padded row: its keys past 5 must stay masked
    attention_mask[2, 7:], input_ids[2, 7:] = 0, 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@pytest.mark.parametrize(
    ("architecture", "attention"), [("bert", "sdpa"), ("bert", "eager"), ("roberta", "sdpa")]
)
def test_logits_and_lora_gradients_match_the_full_last_layer(architecture: str, attention: str) -> None:
    model = lora_classifier(architecture, attention).train()
    batch, labels = padded_batch(), torch.tensor([0, 1, 1])

    def logits_and_gradients() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model.zero_grad()
        logits = model(**batch).logits
        torch.nn.functional.cross_entropy(logits, labels).backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
        return logits.detach(), grads

    full_logits, full_grads = logits_and_gradients()
    layer = last_layer_if_first_token_read(model)
    patched = use_first_token_last_layer(model)
    assert patched is layer and "forward" in vars(layer)
    logits, grads = logits_and_gradients()
    torch.testing.assert_close(logits, full_logits, rtol=1e-5, atol=1e-6)
    assert grads.keys() == full_grads.keys() and any("layer.1." in name for name in grads)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, full_grads[name], rtol=1e-4, atol=1e-6, msg=name)
    # the last layer's output really is one position now
    hidden = model.get_base_model().base_model(**batch).last_hidden_state
    assert hidden.shape[1] == 1
    restore_full_last_layer(patched)
    assert "forward" not in vars(layer)
    assert model.get_base_model().base_model(**batch).last_hidden_state.shape[1] == 9


def test_heads_that_read_other_positions_are_left_alone() -> None:
    from transformers import BertConfig, BertForTokenClassification, GPT2Config, GPT2ForSequenceClassification

    tagger = BertForTokenClassification(
        BertConfig(
            vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
        )
    )
    last_token = GPT2ForSequenceClassification(GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2))
    for model in (tagger, last_token):
        assert last_layer_if_first_token_read(model) is None
        assert use_first_token_last_layer(model) is None


def test_training_with_and_without_gives_the_same_model(tmp_path, recipe_for, monkeypatch) -> None:
    """Without dropout both runs compute the same numbers: the same test scores. Training restores the
    full layer before the model leaves it (saving, export and explanations see a plain model)."""
    import pandas as pd

    import adapters
    import adapters.training
    from tests.conftest import make_frame

    restored = []

    def recorded(layer: torch.nn.Module) -> None:
        patched = "forward" in vars(layer)
        restore_full_last_layer(layer)
        restored.append(patched and "forward" not in vars(layer))

    monkeypatch.setattr(adapters.training, "restore_full_last_layer", recorded)
    scores = {}
    for first_token in (True, False):
        recipe = recipe_for(
            training={"first_token_last_layer": first_token, "max_steps": 6}, method={"lora_dropout": 0.0}
        )
        result = adapters.train(
            recipe, data=make_frame(80), output_dir=tmp_path / str(first_token), progress=False
        )
        predictions = pd.read_csv(result.output_dir / "predictions.csv")
        scores[first_token] = predictions.select_dtypes("number").to_numpy()
    assert restored == [True]  # patched once (the first run), restored once
    assert scores[True].shape == scores[False].shape and scores[True].size > 0
    assert abs(scores[True] - scores[False]).max() < 1e-4


def test_first_token_only_is_undone_and_leaves_a_running_swap_alone() -> None:
    """Prediction uses the swap inside a ``with`` block: the same logits, the full layer afterwards; a model
    already swapped (inside training) keeps its swap when the block ends."""
    from adapters.first_token import first_token_only

    model = lora_classifier("bert").eval()
    batch = padded_batch()
    layer = last_layer_if_first_token_read(model)
    with torch.no_grad():
        full = model(**batch).logits
        with first_token_only(model):
            assert "forward" in vars(layer)
            torch.testing.assert_close(model(**batch).logits, full, rtol=1e-5, atol=1e-6)
        assert "forward" not in vars(layer)
        use_first_token_last_layer(model)
        with first_token_only(model):
            pass
        assert "forward" in vars(layer)
    restore_full_last_layer(layer)

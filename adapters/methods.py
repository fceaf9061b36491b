"""The ``method`` section: which PEFT tuner, and keys checked against PEFT's own config class.

Nothing here mirrors PEFT. The method types are PEFT's own registry of tuners
(``PEFT_TYPE_TO_CONFIG_MAPPING``), so a tuner added to PEFT is offered here without a code change.
Only the few that cannot serve a task are listed, each with the reason. The valid keys are the fields
of PEFT's config dataclass for the tuner, and their types are PEFT's annotations. PEFT itself does not
check those types, so a ``None`` rank would otherwise fail deep inside.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

__all__ = [
    "TASKS",
    "MethodConfig",
    "method_types",
    "check_method_for_task",
    "unsupported_methods",
    "peft_config_class",
    "peft_config_fields",
]

TASKS = ("classification", "causal_lm")

# Names that are not registry types but fixed settings of one: method.type -> (registry type, settings).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "dora": ("lora", {"use_dora": True}),
    "rslora": ("lora", {"use_rslora": True}),
}

# Registry types that cannot serve a task, and why. Every other registry type is offered; the
# parametrized test in tests/test_methods.py trains, saves and reloads each one, so a new PEFT tuner
# that does not work shows up there.
NOT_FOR_TASK: dict[str, dict[str, str]] = {
    "classification": {
        "adaption_prompt": "it adapts the attention of Llama-family decoders for text generation only",
        "cpt": "PEFT allows it for causal language modelling only",
        "multitask_prompt_tuning": "it needs a task id with every example",
        "poly": "it needs a task id with every example",
        "xlora": "it mixes LoRA adapters that were trained before; train those first",
        "trainable_tokens": "it trains token embeddings only and cannot train or save a task head",
        "shadow": "its shadow network fails on encoder classifiers in PEFT (ShadowCarrier has no view)",
    },
    "causal_lm": {
        "multitask_prompt_tuning": "it needs a task id with every example",
        "poly": "it needs a task id with every example",
        "xlora": "it mixes LoRA adapters that were trained before; train those first",
        "cpt": "it needs its own in-context example token ids and masks with every example",
        "trainable_tokens": "it trains token embeddings only, not the answer",
        "shadow": "its shadow network is built for text generation with a separate loss",
        "adaption_prompt": "it supports only some decoder families and no quantized bases",
    },
}

# Keys the library sets itself; a recipe setting them would be overwritten or would break saving.
_MANAGED_PEFT_KEYS = {
    "task_type",
    "peft_type",
    "base_model_name_or_path",
    "revision",
    "inference_mode",
    "auto_mapping",
    "peft_version",
}


@functools.cache
def _registry() -> dict[str, type]:
    """PEFT's tuner registry as ``{"lora": LoraConfig, ...}`` (PEFT is imported here, once)."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    return {str(peft_type.value).lower(): config for peft_type, config in PEFT_TYPE_TO_CONFIG_MAPPING.items()}


def unsupported_methods(task: str = "classification") -> dict[str, str]:
    """Registry types that cannot serve ``task``, with the reason (only those PEFT has)."""
    return {name: why for name, why in NOT_FOR_TASK[task].items() if name in _registry()}


def method_types(task: str = "classification") -> dict[str, tuple[str, dict[str, Any]]]:
    """Every ``method.type`` usable for ``task``: name -> (registry type, fixed settings), sorted."""
    excluded = NOT_FOR_TASK[task]
    usable = {name: (name, {}) for name in _registry() if name not in excluded}
    usable.update({name: spec for name, spec in VARIANTS.items() if spec[0] in usable})
    return dict(sorted(usable.items()))


def check_method_for_task(method_type: str, task: str) -> None:
    """Raise ``ValueError`` naming the task, the reason and the usable types if the method cannot serve it."""
    if method_type not in method_types(task):
        reason = NOT_FOR_TASK[task].get(method_type, "PEFT does not offer it")
        raise ValueError(
            f"method.type: PEFT method {method_type!r} cannot be used for {task}: {reason}; "
            f"usable for {task}: {', '.join(method_types(task))}"
        )


def peft_config_class(method_type: str) -> type:
    """PEFT's config class for a method type (variants resolve to their registry type)."""
    registry_type = VARIANTS.get(method_type, (method_type, {}))[0]
    return _registry()[registry_type]


class MethodConfig(BaseModel):
    """``type`` picks the PEFT tuner; every other key goes to that tuner's PEFT config class."""

    model_config = ConfigDict(extra="allow")

    type: str = "lora"

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        value = value.lower().replace("-", "_")
        if value not in _registry() and value not in VARIANTS:
            usable = ", ".join(method_types("classification"))
            raise ValueError(f"unknown PEFT method {value!r}; usable for classification: {usable}")
        return value

    @model_validator(mode="after")
    def _keys_belong_to_peft(self) -> MethodConfig:
        valid = peft_config_fields(self.type)
        for key in self.peft_kwargs():
            if key in _MANAGED_PEFT_KEYS:
                raise ValueError(f"method.{key} is set by peft-recipes itself and cannot be given")
            if key not in valid:
                raise ValueError(
                    f"unknown key method.{key} for {self.type}; valid keys: "
                    f"{', '.join(sorted(valid - _MANAGED_PEFT_KEYS))}"
                )
        if self.model_extra:  # PEFT's config classes do not check types; a None rank fails deep in PEFT
            self.model_extra.update(_peft_typed(self.type, self.model_extra))
        return self

    def peft_kwargs(self) -> dict[str, Any]:
        """The keys meant for PEFT's config class (everything but ``type``)."""
        return dict(self.model_extra or {})

    def fixed_settings(self) -> dict[str, Any]:
        """Settings implied by the type name (``dora`` is LoRA with ``use_dora: true``)."""
        return dict(VARIANTS.get(self.type, (self.type, {}))[1])


def peft_config_fields(method_type: str) -> set[str]:
    """Field names of PEFT's config class for ``method_type``."""
    return {field.name for field in dataclasses.fields(peft_config_class(method_type))}


def _peft_typed(method_type: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` checked (and coerced: "8" → 8) against the PEFT field types pydantic can express.

    Literal and nested-config fields are left to PEFT: their annotations do not always say what PEFT
    accepts (``init_lora_weights: pissa_niter_4`` is valid but matches no Literal).
    """
    from pydantic import TypeAdapter

    def plain(annotation: Any) -> bool:
        if annotation in (int, float, bool, str, type(None)):
            return True
        arguments = typing.get_args(annotation)
        origin = typing.get_origin(annotation)
        return origin in (list, dict, typing.Union, types.UnionType) and all(map(plain, arguments))

    try:
        hints = typing.get_type_hints(peft_config_class(method_type))
    except (NameError, TypeError):  # an annotation that cannot be resolved: leave the checks to PEFT
        return {}
    typed = {}
    for key, value in kwargs.items():
        if key in hints and plain(hints[key]):
            try:
                typed[key] = TypeAdapter(hints[key]).validate_python(value)
            except ValidationError as exc:
                reason = exc.errors()[0]["msg"]
                raise ValueError(f"method.{key}: {reason} for {method_type} (got {value!r})") from None
    return typed

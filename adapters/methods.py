"""The ``method`` section: which PEFT tuner, and keys checked against PEFT's own config class.

Nothing here mirrors PEFT: the valid keys are the fields of PEFT's config dataclass for the tuner, and their
types are PEFT's annotations (PEFT itself does not check them, so a ``None`` rank would fail deep inside).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

__all__ = ["PEFT_METHODS", "MethodConfig", "peft_config_fields"]

# method.type -> (PEFT config class name, fixed settings that define the variant)
PEFT_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "lora": ("LoraConfig", {}),
    "dora": ("LoraConfig", {"use_dora": True}),
    "rslora": ("LoraConfig", {"use_rslora": True}),
    "ia3": ("IA3Config", {}),
    "loha": ("LoHaConfig", {}),
    "lokr": ("LoKrConfig", {}),
    "adalora": ("AdaLoraConfig", {}),
    "prompt_tuning": ("PromptTuningConfig", {}),
    "prefix_tuning": ("PrefixTuningConfig", {}),
    "p_tuning": ("PromptEncoderConfig", {}),
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


class MethodConfig(BaseModel):
    """``type`` picks the PEFT tuner; every other key goes to that tuner's PEFT config class."""

    model_config = ConfigDict(extra="allow")

    type: str = "lora"

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        value = value.lower().replace("-", "_")
        if value not in PEFT_METHODS:
            raise ValueError(
                f"unsupported PEFT method {value!r}; supported for sequence classification: "
                f"{', '.join(PEFT_METHODS)}"
            )
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


def peft_config_fields(method_type: str) -> set[str]:
    """Field names of PEFT's config class for ``method_type`` (PEFT is imported only here)."""
    import peft

    class_name, _ = PEFT_METHODS[method_type]
    return {field.name for field in dataclasses.fields(getattr(peft, class_name))}


def _peft_typed(method_type: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` checked (and coerced: "8" → 8) against the PEFT field types pydantic can express.

    Literal and nested-config fields are left to PEFT: their annotations do not always say what PEFT
    accepts (``init_lora_weights: pissa_niter_4`` is valid but matches no Literal).
    """
    import peft
    from pydantic import TypeAdapter

    def plain(annotation: Any) -> bool:
        if annotation in (int, float, bool, str, type(None)):
            return True
        arguments = typing.get_args(annotation)
        origin = typing.get_origin(annotation)
        return origin in (list, dict, typing.Union, types.UnionType) and all(map(plain, arguments))

    hints = typing.get_type_hints(getattr(peft, PEFT_METHODS[method_type][0]))
    typed = {}
    for key, value in kwargs.items():
        if key in hints and plain(hints[key]):
            try:
                typed[key] = TypeAdapter(hints[key]).validate_python(value)
            except ValidationError as exc:
                reason = exc.errors()[0]["msg"]
                raise ValueError(f"method.{key}: {reason} for {method_type} (got {value!r})") from None
    return typed

"""Saving an adapter whose weights were gathered from FSDP / DeepSpeed shards.

The gathered state dict (``accelerator.get_state_dict``) has clean keys, but under FSDP the unwrapped
PEFT model still holds the wrapped units, so its module names carry ``_fsdp_wrapped_module.`` segments.
PEFT 0.21 picks an adapter's entries by walking those module names, so it matched none of the tuner
weights and wrote an adapter with only the head (measured on an H100: parity off by 0.50). Here the
state dict is keyed the way the modules are named, PEFT selects and writes it, and the file's keys are
then cleaned, so the adapter loads with plain PEFT like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FSDP_SEGMENT = "_fsdp_wrapped_module."

__all__ = ["FSDP_SEGMENT", "save_adapter"]


def _keyed_like_modules(state: dict[str, Any], wrapped_names: dict[str, str]) -> dict[str, Any]:
    """``state`` with each key's module path replaced by its FSDP-wrapped name, where it has one."""
    keyed = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        wrapped = wrapped_names.get(module, module)
        keyed[f"{wrapped}.{leaf}" if wrapped else leaf] = value
    return keyed


def _clean_saved_keys(adapter_file: Path) -> None:
    """Rewrite ``adapter_file`` without FSDP's wrapper segments in its keys (it sits in a staging dir)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(adapter_file), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {key.replace(FSDP_SEGMENT, ""): handle.get_tensor(key) for key in handle.keys()}
    save_file(tensors, str(adapter_file), metadata=metadata)


def save_adapter(model: Any, directory: Path, full_state: dict[str, Any] | None) -> None:
    """``model.save_pretrained`` in safetensors; ``full_state``: the gathered weights of a sharded run."""
    # clean module name -> the model's own, for the modules inside FSDP units (none when unsharded)
    wrapped_names = {
        name.replace(FSDP_SEGMENT, ""): name for name, _ in model.named_modules() if FSDP_SEGMENT in name
    }
    wrapped = full_state is not None and bool(wrapped_names)
    state = _keyed_like_modules(full_state, wrapped_names) if wrapped else full_state
    # save_embedding_layers=False: "auto" asks the Hub whether the base's vocabulary changed (we never
    # resize it), which is a network call at save time.
    model.save_pretrained(directory, safe_serialization=True, state_dict=state, save_embedding_layers=False)
    if wrapped:
        _clean_saved_keys(Path(directory) / "adapter_model.safetensors")

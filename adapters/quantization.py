"""bitsandbytes 8/4-bit bases and making a loaded base trainable, on CPU and CUDA alike.

The two platforms need different handling, measured here: on CUDA, PEFT's
``prepare_model_for_kbit_training``; on CPU (bitsandbytes 0.50) not that call, which breaks 8-bit
layers, but full-precision task heads and the safe 4-bit kernels (``support_avx512bf16_for_cpu=False``).
"""

from __future__ import annotations

from typing import Any

import torch

from adapters.errors import AdaptersUserError
from adapters.recipe import ModelConfig

__all__ = ["DTYPES", "quantization_config", "prepare_for_training", "disable_avx512bf16"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _compute_dtype(config: ModelConfig) -> torch.dtype:
    if config.torch_dtype in DTYPES and config.torch_dtype != "float32":
        return DTYPES[config.torch_dtype]
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported() and config.quantization != "none":
        return torch.bfloat16
    return torch.float32


def quantization_config(config: ModelConfig, skip_modules: list[str], sharded: bool = False) -> Any | None:
    """A ``BitsAndBytesConfig`` that works on CPU and CUDA; the task head and trained modules are skipped.

    ``sharded`` (FSDP): 4-bit weights are stored in the compute dtype, so FSDP can flatten them together
    with the unquantized parameters (QLoRA-FSDP).
    """
    if config.quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    if config.quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(skip_modules))
    compute_dtype = _compute_dtype(config)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=config.quant_type,
        bnb_4bit_use_double_quant=config.double_quant,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_quant_storage=compute_dtype if sharded else torch.uint8,
        llm_int8_skip_modules=list(skip_modules),
    )


def prepare_for_training(
    model: torch.nn.Module, quantized: bool, device: torch.device, gradient_checkpointing: bool
) -> None:
    """Make a loaded base model trainable on ``device``, before PEFT wraps it.

    On CUDA, a k-bit model gets PEFT's ``prepare_model_for_kbit_training`` (norms in fp32, input grads
    for checkpointing). On CPU that call breaks bitsandbytes 0.50 (``'Parameter' object has no attribute
    'CB'``), so it is skipped there. Checkpointing is always non-reentrant: the reentrant variant fails
    under DDP ("marked ready twice", peft #313) and needs the inputs to require grad.
    """
    kwargs = {"use_reentrant": False}
    if quantized and device.type == "cuda":
        from peft import prepare_model_for_kbit_training

        prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing, gradient_checkpointing_kwargs=kwargs
        )
    elif gradient_checkpointing:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise AdaptersUserError(
                f"{type(model).__name__} does not support gradient checkpointing",
                where="training.gradient_checkpointing",
            )
        enable = getattr(model, "activation_checkpointing_enable", None)  # transformers >= 5.2x name
        if enable is not None:
            enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        model.config.use_cache = False


def disable_avx512bf16(model: torch.nn.Module) -> None:
    """bitsandbytes' AVX512-BF16 CPU kernels corrupt 4-bit weights after an eval pass; use the safe path."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False

"""``adapters doctor``: a preflight that reads configs and file headers only, and says what will go wrong.

Every check is one row (OK / WARN / FAIL) with the reason. The known multi-device and quantization traps
are here, so a user finds them before renting GPUs rather than an hour into a run. Nothing heavy is
loaded: the model is built on the meta device (no memory, no weights), the checkpoint is read from its
safetensors headers, and the data from its files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from adapters.errors import AdaptersUserError

__all__ = ["Check", "run_doctor", "format_table", "doctor_exit_code"]

_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "auto": 4}


@dataclass
class Check:
    """One row of the report."""

    name: str
    status: str  # OK | WARN | FAIL
    detail: str


def format_table(checks: Iterable[Check]) -> str:
    """Aligned plain-text table (readable in CI logs and terminals alike)."""
    rows = [("check", "status", "detail"), *((c.name, c.status, c.detail) for c in checks)]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}" for row in rows)


def _gib(count: float) -> str:
    return f"{count / 2**30:.2f} GiB"


def _launcher(config_file: str | None) -> tuple[Any, list[Check]]:
    """The Accelerate config (or the plain single-process default) and its checks."""
    if config_file is None:
        return None, [Check("launcher", "OK", "one process (no --config_file); 'accelerate launch' for more")]
    from accelerate.commands.config.config_args import load_config_from_file

    try:
        config = load_config_from_file(config_file)
    except Exception as exc:  # accelerate raises ValueError/TypeError/FileNotFoundError for bad files
        return None, [Check("launcher", "FAIL", f"{config_file}: {str(exc).splitlines()[0]}")]
    kind = str(config.distributed_type).split(".")[-1]
    checks = [Check("launcher", "OK", f"{config_file}: {kind}, {config.num_processes} process(es)")]
    if config.use_cpu and kind == "NO" and config.num_processes > 1:
        checks.append(
            Check(
                "cpu processes",
                "FAIL",
                "--cpu with num_processes > 1 silently runs ONE process; use "
                "recipes/accelerate/cpu-2proc.yaml (MULTI_GPU + use_cpu)",
            )
        )
    return config, checks


def run_doctor(
    recipe_ref: str, overrides: list[str] | None = None, config_file: str | None = None
) -> list[Check]:
    """All checks for a recipe (and launcher config); never raises for a user problem, it reports it."""
    import torch

    from adapters.data import prepare_data, resolve_data_config
    from adapters.recipe import load_recipe

    checks: list[Check] = []
    try:
        recipe = load_recipe(recipe_ref, overrides)
    except AdaptersUserError as exc:
        return [Check("recipe", "FAIL", str(exc))]
    checks.append(
        Check("recipe", "OK", f"{recipe.name}: {recipe.method.type} on {recipe.model.name_or_path}")
    )
    launcher, launcher_checks = _launcher(config_file)
    checks += launcher_checks
    kind = str(getattr(launcher, "distributed_type", "NO")).split(".")[-1]
    processes = getattr(launcher, "num_processes", 1) or 1
    cuda = torch.cuda.is_available()

    # Data: read and split (files are small next to a model); counts per split.
    try:
        data = prepare_data(resolve_data_config(recipe.data), task=recipe.task)
        rows = ", ".join(f"{name} {count}" for name, count in data.info["rows"].items())
        checks.append(Check("data", "OK", f"{rows} rows; labels {', '.join(data.label_names)}"))
        label_names = data.label_names
    except AdaptersUserError as exc:
        checks.append(Check("data", "FAIL", str(exc)))
        label_names = recipe.data.label_names or ["0", "1"]

    # Model: config, tokenizer and checkpoint headers only; the model on the meta device.
    checks += _model_checks(recipe, label_names, kind, processes, cuda)

    # Batch and precision.
    training = recipe.training
    accumulation = training.gradient_accumulation_steps
    global_batch = training.per_device_batch_size * processes * accumulation
    checks.append(
        Check(
            "global batch",
            "OK",
            f"{training.per_device_batch_size} per device x {processes} process(es) x "
            f"{accumulation} accumulation = {global_batch}",
        )
    )
    if kind == "DEEPSPEED":
        ds_steps = (launcher.deepspeed_config or {}).get("gradient_accumulation_steps")
        if ds_steps not in (None, "auto", accumulation):
            checks.append(
                Check(
                    "deepspeed",
                    "FAIL",
                    f"config says gradient_accumulation_steps {ds_steps}, "
                    f"the recipe {accumulation}; make them equal",
                )
            )
        try:
            import deepspeed  # noqa: F401
        except ImportError:
            checks.append(Check("deepspeed", "FAIL", "not installed: pip install deepspeed"))
    precision = training.mixed_precision or (getattr(launcher, "mixed_precision", None) or "no")
    if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        checks.append(Check("precision", "FAIL", "bf16 asked for, but this GPU has no bf16; use fp16"))
    elif precision == "fp16" and not cuda:
        checks.append(
            Check("precision", "WARN", "fp16 on CPU is slow and unsupported by many kernels; use bf16 or no")
        )
    else:
        checks.append(Check("precision", "OK", f"mixed_precision {precision}"))
    if training.gradient_checkpointing:
        checks.append(Check("checkpointing", "OK", "non-reentrant activation checkpointing (safe under DDP)"))
    if kind == "MULTI_GPU" and getattr(launcher, "use_cpu", False) and cuda:
        checks.append(
            Check(
                "cpu processes",
                "WARN",
                "this machine has GPUs: prefix the command with "
                "ACCELERATE_USE_CPU=1 to keep the processes on the CPU",
            )
        )
    checks.append(_hub_check(recipe))
    return checks


def _model_checks(recipe: Any, label_names: list[str], kind: str, processes: int, cuda: bool) -> list[Check]:
    import torch
    from transformers import AutoConfig, AutoTokenizer

    from adapters.base_model import (
        auto_model_class,
        check_has_head,
        head_plan,
        model_kind,
        resolve_base_model,
    )

    model = recipe.model
    checks: list[Check] = []
    load_path, _ = resolve_base_model(model.name_or_path)
    common = {"revision": model.revision, "trust_remote_code": model.trust_remote_code}
    verbalizer = model.verbalizer is not None
    try:
        base_config = AutoConfig.from_pretrained(load_path, **common, **model.config_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(load_path, **common)
        check_has_head(base_config, model.name_or_path, model_kind(recipe.task, verbalizer))
    except AdaptersUserError as exc:
        return [Check("model", "FAIL", str(exc))]
    except Exception as exc:  # unreachable Hub, missing files, unknown model type
        return [
            Check(
                "model", "FAIL", f"cannot read the model's config or tokenizer ({str(exc).splitlines()[0]})"
            )
        ]
    base_config.num_labels = len(label_names)
    checks.append(Check("model", "OK", f"{base_config.model_type} from {load_path}"))
    if tokenizer.pad_token is None:
        checks.append(
            Check(
                "pad token",
                "WARN" if not verbalizer else "OK",
                "no pad token: EOS will pad and config.pad_token_id is set to it, so the "
                "classifier reads the last real token (transformers #34055)",
            )
        )
    extra = list(recipe.method.peft_kwargs().get("modules_to_save") or [])
    auto_class = auto_model_class(model_kind(recipe.task, verbalizer))
    try:
        heads, _ = head_plan(load_path, base_config, model.revision, extra, auto_class)
    except Exception as exc:  # no safetensors, or the Hub unreachable
        checks.append(Check("head", "WARN", f"cannot read checkpoint headers ({str(exc).splitlines()[0]})"))
        heads = []
    if verbalizer:
        status = "FAIL" if heads else "OK"
        detail = (
            f"checkpoint lacks {heads}: no trained LM head"
            if heads
            else "LM head from the checkpoint scores the answers"
        )
        checks.append(Check("head", status, detail))
    elif heads:
        checks.append(Check("head", "OK", f"new modules {heads} will train and be saved (modules_to_save)"))
    else:
        checks.append(
            Check("head", "FAIL", "the checkpoint already has a classification head; start from a base model")
        )

    with torch.device("meta"):
        skeleton = auto_class.from_config(base_config)
    total = sum(param.numel() for param in skeleton.parameters())
    trainable = _trainable_on_meta(recipe, skeleton, heads, checks)
    checks += _quantization_checks(model.quantization, kind, cuda)
    weight_bytes = {"8bit": 1.0, "4bit": 0.5}.get(model.quantization, _BYTES[model.torch_dtype])
    weights = total * weight_bytes
    optimizer = trainable * (4 + 4 + 8)  # fp32 weights, gradients and Adam's two moments
    if kind in ("FSDP", "DEEPSPEED"):
        weights, optimizer = (
            (weights / processes, optimizer / processes)
            if kind == "FSDP"
            else (weights, optimizer / processes)
        )
    layers = getattr(base_config, "num_hidden_layers", 12)
    hidden = getattr(base_config, "hidden_size", 768)
    tokens = recipe.training.per_device_batch_size * recipe.data.max_length
    factor = 2 if recipe.training.gradient_checkpointing else 34  # bytes per token-hidden-layer, roughly
    activations = (
        tokens
        * hidden
        * layers
        * factor
        * (2 if recipe.training.mixed_precision in ("bf16", "fp16") else 4)
        / 2
    )
    checks.append(
        Check(
            "memory / device",
            "OK",
            f"~{_gib(weights + optimizer + activations)} (weights {_gib(weights)}, trainable+optimizer "
            f"{_gib(optimizer)}, activations at full length ~{_gib(activations)}); "
            f"{total / 1e6:.1f}M params, {trainable / 1e6:.2f}M trainable",
        )
    )
    return checks


def _trainable_on_meta(recipe: Any, skeleton: Any, heads: list[str], checks: list[Check]) -> int:
    """Wrap the meta skeleton with PEFT: checks target modules and counts trainable parameters."""
    import warnings

    import peft

    from adapters.base_model import model_kind, peft_task_type
    from adapters.modeling import _peft_error, build_peft_config

    try:
        config = build_peft_config(
            recipe.method,
            heads,
            total_steps=100,
            task_type=peft_task_type(model_kind(recipe.task, recipe.model.verbalizer is not None)),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # PEFT reads a deprecated checkpointing flag
            wrapped = peft.get_peft_model(skeleton, config)
    except AdaptersUserError as exc:
        checks.append(Check("method", "FAIL", str(exc)))
        return 0
    except ValueError as exc:  # PEFT's refusal, e.g. target modules that match no layer
        checks.append(Check("method", "FAIL", str(_peft_error(exc, recipe.method, skeleton))))
        return 0
    trainable, _ = wrapped.get_nb_trainable_parameters()
    checks.append(Check("method", "OK", f"{recipe.method.type}: {trainable:,} trainable parameters"))
    return int(trainable)


def _quantization_checks(quantization: str, kind: str, cuda: bool) -> list[Check]:
    if quantization == "none":
        return []
    checks = []
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return [Check("quantization", "FAIL", "bitsandbytes is not installed: pip install bitsandbytes")]
    if kind == "FSDP" and quantization == "8bit":
        checks.append(
            Check("quantization", "FAIL", "FSDP cannot shard bitsandbytes 8-bit weights; use 4bit or DDP")
        )
    elif cuda:
        checks.append(
            Check("quantization", "OK", f"{quantization} on CUDA with prepare_model_for_kbit_training")
        )
    else:
        checks.append(
            Check(
                "quantization",
                "WARN",
                f"{quantization} on CPU: works (head kept full precision, no "
                "prepare_model_for_kbit_training) but is slower than fp32 there",
            )
        )
    return checks


def _hub_check(recipe: Any) -> Check:
    """Whether the recipe needs the Hub, and whether it is reachable (a short request, or offline mode)."""
    from adapters.base_model import resolve_base_model
    from adapters.hub import looks_like_hub_id

    needs = [name for name in (recipe.model.name_or_path,) if looks_like_hub_id(resolve_base_model(name)[0])]
    if recipe.data.format == "hub" or (
        recipe.data.source and looks_like_hub_id(recipe.data.source) and "/" in recipe.data.source
    ):
        needs.append(recipe.data.source)
    if not needs:
        return Check("hub", "OK", "not needed (model and data are local or embedded)")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return Check(
            "hub",
            "WARN",
            f"needed for {', '.join(needs)} but HF_HUB_OFFLINE is set; the local cache must hold them",
        )
    try:
        from huggingface_hub import HfApi

        HfApi().model_info(needs[0], timeout=5)
        return Check("hub", "OK", f"reachable; {needs[0]} found")
    except Exception as exc:
        return Check("hub", "FAIL", f"needed for {', '.join(needs)} and not reachable ({type(exc).__name__})")


def doctor_exit_code(checks: list[Check]) -> int:
    """1 when any check failed, else 0."""
    return 1 if any(check.status == "FAIL" for check in checks) else 0

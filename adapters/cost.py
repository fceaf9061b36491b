"""What a run cost: parameters trained, memory held, time spent (metrics.json's ``cost`` and the card)."""

from __future__ import annotations

from typing import Any

import torch
from accelerate import Accelerator

__all__ = [
    "cost_report",
    "peak_rss_bytes",
    "proc_status_bytes",
    "reset_peak_rss",
    "count_tokens",
    "total_tokens",
    "estimate_training_flops",
    "EnergyMeter",
    "check_energy_country",
]

_STATUS = "/proc/self/status"
_TOKEN_KEYS = ("real", "computed", "squared", "rows")


def proc_status_bytes(*fields: str) -> dict[str, int]:
    """Memory fields of Linux ``/proc/self/status`` (``VmRSS``, ``VmHWM``, ``RssAnon``, ...) in bytes; the
    fields it lacks, and every field where there is no such file, are left out."""
    found = {}
    try:
        with open(_STATUS, encoding="ascii") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in fields:
                    found[key] = int(rest.split()[0]) * 1024  # the file gives kB
    except OSError:
        pass
    return found


def peak_rss_bytes() -> int:
    """This process's peak resident memory since :func:`reset_peak_rss` (Linux ``VmHWM``), else since start
    (``ru_maxrss``: Linux reports kilobytes, macOS bytes)."""
    import resource
    import sys

    status = proc_status_bytes("VmHWM")
    if "VmHWM" in status:
        return status["VmHWM"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def reset_peak_rss() -> bool:
    """Start a new peak-memory window (Linux: ``5`` into ``/proc/self/clear_refs``), so a run's peak is its
    own and not that of an earlier run in the same process (a curve's cells, a notebook). False where
    the kernel does not allow it; the peak then counts from the process start."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def count_tokens(batch: Any, tokens: dict[str, int]) -> None:
    """Add a training batch to ``tokens``: real tokens (attention mask), computed ones (padding
    included), rows × length² (the size of the attention-score matrices) and rows."""
    mask = batch.get("attention_mask")
    rows, length = batch["input_ids"].shape[0], batch["input_ids"].shape[-1]
    tokens["real"] += int(mask.sum()) if mask is not None else rows * length
    tokens["computed"] += rows * length
    tokens["squared"] += rows * length * length
    tokens["rows"] = tokens.get("rows", 0) + rows  # a checkpoint from before rows were counted has none


def total_tokens(tokens: dict[str, int], accelerator: Accelerator) -> dict[str, int]:
    """``tokens`` summed over all processes (every process must call this)."""
    local = torch.tensor([tokens.get(key, 0) for key in _TOKEN_KEYS], dtype=torch.float64)
    summed = accelerator.reduce(local.to(accelerator.device), reduction="sum").cpu().tolist()
    return {key: int(value) for key, value in zip(_TOKEN_KEYS, summed, strict=True)}


def _linear_params(model: torch.nn.Module) -> tuple[int, int]:
    """Weights used as matrix multiplies per token (all ``nn.Linear``, bitsandbytes' included, LoRA's
    too), and those of them that get weight gradients."""
    total = trainable = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            size = module.in_features * module.out_features
            total += size
            trainable += size if module.weight.requires_grad else 0
    return total, trainable


def estimate_training_flops(
    model: torch.nn.Module,
    tokens: dict[str, int],
    gradient_checkpointing: bool = False,
    first_token_layer: torch.nn.Module | None = None,
) -> int:
    """Training FLOPs from the model's shapes and the tokens computed (padding included).

    Per computed token, every linear layer costs 2·N in the forward pass and 2·N for the input gradients
    in the backward pass; only trainable weights add 2·N for their own gradients (a frozen base does not:
    4·N + 2·N_trainable, not the 6·N of full fine-tuning). Recomputed activations add another forward.
    Attention scores add 12 · hidden · layers per row per length² (QKᵀ and AV forward, four products
    backward). Embedding lookups are free. ``first_token_layer``: the last layer computed the first
    token only (adapters/first_token.py): its weights other than key and value ran once per row, and
    its attention scores are rows × length. Checked against torch's FlopCounterMode in tests/test_cost.py.
    """
    forward_backward = 6 if gradient_checkpointing else 4
    linear, trainable = _linear_params(model)
    per_token = forward_backward * linear + 2 * trainable
    config = getattr(model, "config", None)
    hidden = getattr(config, "hidden_size", 0) or 0
    layers = getattr(config, "num_hidden_layers", 0) or 0
    scores = layers * tokens["squared"]
    skipped = 0
    if first_token_layer is not None and tokens.get("rows"):
        attention = first_token_layer.attention.self
        every_token = [_linear_params(attention.key), _linear_params(attention.value)]
        layer_linear, layer_trainable = _linear_params(first_token_layer)
        once_linear = layer_linear - sum(part[0] for part in every_token)
        once_trainable = layer_trainable - sum(part[1] for part in every_token)
        skipped = (forward_backward * once_linear + 2 * once_trainable) * (
            tokens["computed"] - tokens["rows"]
        )
        scores += tokens["computed"] - tokens["squared"]  # one query a row in the last layer
    attention_flops = (16 if gradient_checkpointing else 12) * hidden * scores
    return int(per_token * tokens["computed"] - skipped + attention_flops)


def cost_report(
    built: Any,
    accelerator: Accelerator,
    seconds: float,
    steps: int,
    samples_per_step: int,
    tokens: dict[str, int] | None = None,
    gradient_checkpointing: bool = False,
    first_token_layer: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """What the run cost: parameters trained, memory held, time spent, tokens seen and an estimate of
    the FLOPs (the card, metrics.json and a learning curve's full fine-tuning ratios show it)."""
    model = accelerator.unwrap_model(built.model)
    if hasattr(model, "get_nb_trainable_parameters"):  # PEFT counts 4-bit packed weights correctly
        trainable, total = (int(n) for n in model.get_nb_trainable_parameters())
    else:  # full fine-tuning: a plain transformers model
        total = sum(param.numel() for param in model.parameters())
        trainable = sum(param.numel() for param in model.parameters() if param.requires_grad)
    saved_bytes = sum(  # what the artifact's weights file holds: the trainable tensors, as trained
        param.numel() * param.element_size() for param in model.parameters() if param.requires_grad
    )
    report: dict[str, Any] = {
        "trainable_params": trainable,
        "total_params": total,
        "trainable_percent": round(100 * trainable / max(total, 1), 4),
        "checkpoint_bytes": int(saved_bytes),
        "model_memory_footprint_bytes": built.provenance.get("memory_footprint_bytes"),
        "peak_rss_bytes": peak_rss_bytes(),
        "train_seconds": round(seconds, 2),
        "train_samples_per_second": round(steps * samples_per_step / seconds, 2) if seconds > 0 else None,
        "device": str(accelerator.device.type),
        "num_processes": accelerator.num_processes,
        "mixed_precision": str(accelerator.mixed_precision),
    }
    if tokens is not None and tokens["computed"]:
        from adapters.modeling import base_model_of

        flops = estimate_training_flops(
            base_model_of(model), tokens, gradient_checkpointing, first_token_layer
        )
        report.update(
            {
                "train_tokens": tokens["real"],
                "train_tokens_computed": tokens["computed"],
                "padding_fraction": round(1 - tokens["real"] / tokens["computed"], 4),
                "train_tokens_per_second": round(tokens["real"] / seconds, 1) if seconds > 0 else None,
                "estimated_train_flops": flops,
                "achieved_gflops_per_second": round(flops / seconds / 1e9, 3) if seconds > 0 else None,
            }
        )
    if accelerator.device.type == "cuda":
        report["peak_cuda_memory_bytes"] = int(torch.cuda.max_memory_allocated(accelerator.device))
    return report


class EnergyMeter:
    """codecarbon's offline tracker around the training loop (extra ``[energy]``).

    Energy is an estimate (RAPL counters where readable, else the CPU's TDP times its load, plus RAM and
    NVML for GPUs). CO2 needs the grid's carbon intensity, a per-country figure, so it is reported only
    when ``training.energy_country`` is set. Nothing here may fail a run: a tracker that cannot start or
    read its counters gives ``energy_kwh: null`` with the reason. Multi-process runs measure on the main
    process in machine mode (all processes), single-process runs in process mode.
    """

    def __init__(self, enabled: bool, country: str | None, main_process: bool, num_processes: int) -> None:
        self.country = country
        self.tracker: Any = None
        self.reason: str | None = None if enabled else "training.track_energy is off"
        if not enabled or not main_process:
            return
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError:
            self.reason = "codecarbon not installed: pip install 'peft-recipes[energy]'"
            return
        import logging

        logging.getLogger("codecarbon").setLevel(logging.ERROR)  # after import: it sets its own level
        try:
            self.tracker = OfflineEmissionsTracker(
                country_iso_code=country,
                save_to_file=False,
                log_level="error",
                tracking_mode="process" if num_processes == 1 else "machine",
                measure_power_secs=5,
            )
            self.tracker.start()
        except Exception as exc:  # noqa: BLE001 - a power counter must never stop training
            self.tracker, self.reason = None, f"tracker failed to start: {exc}"

    def stop(self) -> dict[str, Any]:
        """The energy section of the cost report (``None`` values with a ``note`` when not measured)."""
        report: dict[str, Any] = {"energy_kwh": None, "co2_kg": None, "country_iso_code": self.country}
        if self.tracker is None:
            return {**report, "note": self.reason}
        try:
            self.tracker.stop()
            data = self.tracker.final_emissions_data
        except Exception as exc:  # noqa: BLE001
            return {**report, "note": f"tracker failed to read its counters: {exc}"}
        from importlib.metadata import version

        report.update(
            {
                "energy_kwh": float(data.energy_consumed),
                "cpu_energy_kwh": float(data.cpu_energy),
                "gpu_energy_kwh": float(data.gpu_energy),
                "ram_energy_kwh": float(data.ram_energy),
                "cpu_power_w": float(data.cpu_power),
                "co2_kg": float(data.emissions) if self.country else None,
                "tracker": f"codecarbon {version('codecarbon')} offline ({data.tracking_mode} mode)",
            }
        )
        if not self.country:
            report["note"] = "CO2 not estimated: set training.energy_country (ISO 3166 alpha-3)"
        return report


def check_energy_country(country: str | None) -> None:
    """Refuse a country code codecarbon has no grid data for, before any training."""
    if country is None:
        return
    try:
        from codecarbon.input import DataSource
    except ImportError:
        return  # the run will say energy is not measured
    known = DataSource().get_global_energy_mix_data()
    if country not in known:
        from adapters.errors import AdaptersUserError

        raise AdaptersUserError(
            f"no grid carbon data for {country!r} (ISO 3166 alpha-3, e.g. DEU, USA, FRA)",
            where="training.energy_country",
        )

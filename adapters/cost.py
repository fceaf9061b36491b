"""What a run cost: parameters trained, memory held, time spent (metrics.json's ``cost`` and the card)."""

from __future__ import annotations

from typing import Any

import torch
from accelerate import Accelerator

__all__ = ["cost_report", "peak_rss_bytes"]


def peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux reports kilobytes, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def cost_report(
    built: Any, accelerator: Accelerator, seconds: float, steps: int, samples_per_step: int
) -> dict[str, Any]:
    """What the run cost: parameters trained, memory held, time spent (the card and metrics.json show it)."""
    model = accelerator.unwrap_model(built.model)
    trainable, total = (int(n) for n in model.get_nb_trainable_parameters())
    report: dict[str, Any] = {
        "trainable_params": trainable,
        "total_params": total,
        "trainable_percent": round(100 * trainable / max(total, 1), 4),
        "model_memory_footprint_bytes": built.provenance.get("memory_footprint_bytes"),
        "peak_rss_bytes": peak_rss_bytes(),
        "train_seconds": round(seconds, 2),
        "train_samples_per_second": round(steps * samples_per_step / seconds, 2) if seconds > 0 else None,
        "device": str(accelerator.device.type),
        "num_processes": accelerator.num_processes,
        "mixed_precision": str(accelerator.mixed_precision),
    }
    if accelerator.device.type == "cuda":
        report["peak_cuda_memory_bytes"] = int(torch.cuda.max_memory_allocated(accelerator.device))
    return report

"""Shared by the benchmark scripts: one training run of a recipe and what it cost, as a flat record."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    else:
        info["cpu"] = platform.processor() or platform.machine()
    return info


def run(recipe: str, overrides: list[str], workdir: Path | None = None) -> dict[str, Any]:
    """Train ``recipe`` with ``overrides``; return test metrics, cost and the adapter's size on disk."""
    import adapters

    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        result = adapters.train(recipe, overrides, output_dir=Path(scratch) / "run", progress=False)
        adapter = result.output_dir / "adapter_model.safetensors"
        size = adapter.stat().st_size
        cost = json.loads((result.output_dir / "metrics.json").read_text())["cost"]
    epochs_run = result.summary["history"][-1]["epoch"]  # evaluations end at the last step
    return {
        "test": result.metrics["test"],
        "validation": result.metrics["validation"],
        "cost": cost,
        "adapter_bytes": size,
        "steps": result.summary["steps"],
        "seconds_per_step": cost["train_seconds"] / max(1, result.summary["steps"]),
        "seconds_per_epoch": cost["train_seconds"] / max(1e-9, epochs_run),
    }

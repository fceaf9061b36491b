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
    info.update(cpu_model())
    return info


def cpu_model() -> dict[str, str]:
    """The CPU's name, family / model / stepping and vector extensions from /proc/cpuinfo (Linux): machines
    named alike ("AMD EPYC" under KVM) have differed 2.6x in GEMM peak, so results say which one ran."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.split("\n\n")[0].splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {
        "cpu_model": fields.get("model name", ""),
        "cpu_family_model_stepping": "/".join(
            fields.get(k, "?") for k in ("cpu family", "model", "stepping")
        ),
        "cpu_vector_extensions": " ".join(sorted(f for f in flags if f.startswith(("avx", "amx")))),
    }


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
        "best_step": result.summary["best_step"],
        "seconds_per_step": cost["train_seconds"] / max(1, result.summary["steps"]),
        "seconds_per_epoch": cost["train_seconds"] / max(1e-9, epochs_run),
    }


def worker_env(threads: int, **extra: str) -> dict[str, str]:
    """The environment of a benchmark's worker process: fixed threads, offline, quiet tokenizers."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **extra,
    }


def tiny_bert(directory: Path, hidden: int = 64, layers: int = 2) -> Path:
    """A random BERT (``hidden`` wide, ``layers`` deep, 512 positions, BERT's default dropout, no head) with
    MiniLM's tokenizer: a stand-in base model for smoke tests and for timing the data path, not accuracy."""
    from adapters.testing import save_random_bert

    return save_random_bert(
        directory, hidden, layers, max(1, hidden // 32), 4 * hidden, max_positions=512, dropout=0.1
    )


def rss_bytes() -> dict[str, int]:
    """This process's resident memory now and at its peak, and its anonymous part now (Linux /proc: VmRSS,
    VmHWM, RssAnon; ``anon`` is None where the kernel does not report it)."""
    from adapters.cost import proc_status_bytes

    status = proc_status_bytes("VmRSS", "VmHWM", "RssAnon")
    return {"now": status["VmRSS"], "peak": status["VmHWM"], "anon": status.get("RssAnon")}


class ProcessPeak:
    """This process's peak RSS, kept across the library's ``reset_peak_rss``.

    ``run_training`` starts a new peak window (Linux ``VmHWM``) so that ``cost.peak_rss_bytes`` is the
    run's own; a benchmark that wants the whole process (data preparation included) records the peak
    just before each reset. Create it before calling ``adapters.train``.
    """

    def __init__(self) -> None:
        self.before: list[int] = []
        import adapters.training as training

        original = getattr(training, "reset_peak_rss", None)
        if original is None:  # a library without the reset: VmHWM is already the whole process's
            return

        def reset() -> bool:
            self.before.append(rss_bytes()["peak"])
            return original()

        training.reset_peak_rss = reset

    def peak(self) -> int:
        return max([*self.before, rss_bytes()["peak"]])


class AnonymousPeak:
    """The peak of this process's anonymous resident memory (Linux ``RssAnon``), sampled every 5 ms.

    ``VmHWM`` also counts file pages mapped into the process: a memory-mapped Arrow file's pages count
    while mapped, though they are page cache the kernel can drop and re-read. ``RssAnon`` is the memory
    the process itself holds (heaps, allocator pools, tensors). Linux keeps no peak of it, so a thread
    samples it; a spike shorter than the interval can be missed. Use as a context manager.
    """

    def __init__(self, interval: float = 0.005) -> None:
        import threading

        self.interval, self.peak, self.peak_file = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        from adapters.cost import proc_status_bytes

        while True:
            status = proc_status_bytes("RssAnon", "RssFile")
            self.peak = max(self.peak, status.get("RssAnon", 0))
            self.peak_file = max(self.peak_file, status.get("RssFile", 0))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> AnonymousPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

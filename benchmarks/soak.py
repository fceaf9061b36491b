"""Soak: many back-to-back train + predict cycles in ONE process must not grow memory.

A notebook user or a service retrains and predicts again and again in the same Python process; any state
that outlives a run (Accelerate singletons, trackers, process groups, dataset caches, models kept alive by
a reference) shows up here as resident memory that keeps growing.

    python benchmarks/soak.py [--cycles 20] [--target-mb 50]

Prints RSS after every cycle and the growth from cycle 1 (after warm-up: imports, allocator pools and
first-call caches are in place by then) to the last; writes ``benchmarks/results/soak.json``; exits 1 if
the growth exceeds the target.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    """Current resident set size (Linux /proc; falls back to the peak from resource elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--target-mb", type=float, default=50.0)
    args = parser.parse_args()

    import adapters
    from tests.conftest import make_frame, save_tiny_bert

    work = Path(tempfile.mkdtemp(prefix="adapters-soak-"))
    model_dir = save_tiny_bert(work / "tiny-bert")
    frame = make_frame(120)
    recipe = {
        "name": "soak",
        "model": {"name_or_path": str(model_dir)},
        "data": {
            "text_columns": ["note"],
            "label_column": "outcome",
            "positive_label": "bad",
            "max_length": 32,
        },
        "method": {"type": "lora", "r": 4, "target_modules": ["query", "value"]},
        "training": {"epochs": 1, "per_device_batch_size": 8, "log_with": ["tensorboard"]},
        "eval": {"metrics": ["roc_auc", "accuracy"]},
    }
    readings: list[dict[str, float]] = []
    baseline = rss_mb()
    print(f"before cycle 1 (imports done): RSS {baseline:8.1f} MB", flush=True)
    for cycle in range(1, args.cycles + 1):
        started = time.perf_counter()
        result = adapters.train(recipe, data=frame, output_dir=work / "out", overwrite=True, progress=False)
        predictions = adapters.predict(result.output_dir, frame.drop(columns="outcome"))
        del result, predictions
        gc.collect()
        readings.append(
            {"cycle": cycle, "rss_mb": round(rss_mb(), 1), "seconds": time.perf_counter() - started}
        )
        print(
            f"cycle {cycle:3d}: RSS {readings[-1]['rss_mb']:8.1f} MB  ({readings[-1]['seconds']:.1f} s)",
            flush=True,
        )

    growth = readings[-1]["rss_mb"] - readings[0]["rss_mb"]
    per_cycle = growth / max(1, len(readings) - 1)
    verdict = "PASS" if growth < args.target_mb else "FAIL"
    print(
        f"RSS growth cycle 1 → {len(readings)}: {growth:+.1f} MB ({per_cycle:+.2f} MB/cycle); "
        f"target < {args.target_mb:.0f} MB: {verdict} (first cycle's warm-up: "
        f"{readings[0]['rss_mb'] - baseline:+.1f} MB)"
    )
    results = REPO / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "soak",
        "cycles": args.cycles,
        "rss_before_first_cycle_mb": round(baseline, 1),
        "growth_mb": round(growth, 1),
        "growth_mb_per_cycle": round(per_cycle, 2),
        "target_mb": args.target_mb,
        "passed": growth < args.target_mb,
        "readings": readings,
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count()},
    }
    (results / "soak.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0 if growth < args.target_mb else 1


if __name__ == "__main__":
    sys.exit(main())

"""Memory of N adapters on one base model (MultiAdapter) vs N separate Classifiers.

Trains N one-step LoRA adapters (r=16, classifier head) on the default base model (all-MiniLM-L6-v2,
embedded, no download) from a toy DataFrame, then, each in a fresh process, loads them both ways and
reports parameters (``sum(p.numel())`` over the model(s)), parameter bytes, and the RSS added by loading
and then by predicting once with every adapter (transformers memory-maps the fp32 safetensors on CPU, so
base weights become resident only when used, and separate loads partly share them through the page
cache; on a GPU each separate model holds its own copy, so parameter bytes are the figure there).
Writes ``benchmarks/results/multi_adapter_memory.json``.

    python benchmarks/multi_adapter_memory.py [N]
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, machine

MEASURE = """
import gc, json, sys, psutil
import adapters, adapters.api, adapters.multi, peft, torch, transformers  # imports before the baseline
def rss():
    gc.collect()
    return psutil.Process().memory_info().rss
before = rss()
dirs = json.loads(sys.argv[2])
texts = ["debt late loan default salary"] * 64
if sys.argv[1] == "multi":
    multi = adapters.MultiAdapter(dirs)
    models, loaded = [multi.model], rss()
    for name in multi.names:
        multi.predict_proba(texts, adapter=name)
else:
    classifiers = [adapters.load(d) for d in dirs]
    models, loaded = [c.model for c in classifiers], rss()
    for classifier in classifiers:
        classifier.predict_proba(texts)
params = [p for m in models for p in m.parameters()]
print(json.dumps({"params": sum(p.numel() for p in params),
                  "param_bytes": sum(p.numel() * p.element_size() for p in params),
                  "rss_added_after_loading_bytes": loaded - before,
                  "rss_added_after_predicting_bytes": rss() - before}))
"""


def toy_frame(rows: int = 64, seed: int = 0):
    import pandas as pd

    rng = random.Random(seed)
    good, bad = ["salary", "savings", "house", "stable"], ["debt", "late", "default", "loan"]
    return pd.DataFrame(
        [
            {
                "note": " ".join(rng.choice(bad if i % 3 == 0 else good) for _ in range(4)),
                "outcome": "bad" if i % 3 == 0 else "good",
            }
            for i in range(rows)
        ]
    )


def main(count: int = 4) -> dict:
    import adapters

    recipe = {
        "name": "memory",
        "data": {"text_columns": ["note"], "label_column": "outcome", "max_length": 32},
        "method": {"type": "lora", "r": 16, "lora_alpha": 32, "target_modules": ["query", "value"]},
        "training": {"max_steps": 1, "per_device_batch_size": 8, "log_with": []},
        "eval": {"metrics": ["roc_auc", "accuracy"]},
    }
    with tempfile.TemporaryDirectory() as scratch:
        dirs = []
        for index in range(count):
            recipe["training"]["seed"] = index
            output = Path(scratch) / f"adapter_{index}"
            adapters.train(recipe, data=toy_frame(seed=index), output_dir=output, progress=False)
            dirs.append(str(output))
        measured = {}
        for how in ("separate", "multi"):
            result = subprocess.run(
                [sys.executable, "-c", MEASURE, how, json.dumps(dirs)],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO,
            )
            measured[how] = json.loads(result.stdout.strip().splitlines()[-1])
    record = {"adapters": count, "base_model": "all-MiniLM-L6-v2 (fp32)", **measured, "machine": machine()}
    out = REPO / "benchmarks" / "results" / "multi_adapter_memory.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 4), indent=2))

"""Reason-code speed: explained rows/s, scored texts/s, and explain time over predict time for the same rows.

    python benchmarks/explain.py [--model DIR] [--input FILE] [--rows 200] [--top 4] [--batch-size 64]

Explaining a row with k attributes scores k + 1 texts (the row and the row without each attribute), so
explain time / predict time near k + 1 means the variants batch as well as plain rows do; much more would
mean per-variant overhead. Without ``--model`` a tiny adapter (2-layer BERT, hidden 32) is trained on the
synthetic table of ``tests/test_explain.py`` in a temporary directory: the ratio, not the absolute speed,
is the figure that carries over to MiniLM. Rows come from ``--input``, else the adapter's built-in data
set (German credit), else the synthetic table. Each repeat times one predict and one explain pass of the
same rows after a warm-up; figures are medians. Writes ``benchmarks/results/explain.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from _common import REPO, machine


def tiny_adapter(workdir: Path) -> Path:
    """Train the tiny table adapter of the tests (a few seconds to a minute on 2 cores)."""
    import adapters
    from tests.test_explain import save_sharper_bert, synthetic_table, table_recipe

    print(f"no --model: training a tiny adapter on the synthetic table in {workdir}", flush=True)
    base = save_sharper_bert(workdir / "bert")
    recipe = table_recipe(base)
    return adapters.train(
        recipe, data=synthetic_table(300, 0), output_dir=workdir / "out", progress=False
    ).output_dir


def input_rows(classifier: Any, source: str | None, rows: int) -> tuple[pd.DataFrame, str]:
    """The rows to explain and where they came from."""
    from adapters.data.builtin import BUILTIN_DATASETS, load_builtin
    from adapters.data.readers import read_source

    if source:
        frame = pd.concat(read_source(source, "auto").values(), ignore_index=True)
        return frame.head(rows), source
    data_source = classifier.recipe.data.source
    if data_source in BUILTIN_DATASETS:
        return load_builtin(data_source).head(rows), data_source
    from tests.test_explain import synthetic_table

    return synthetic_table(rows, 1), "synthetic table (tests/test_explain.py)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a trained artifact dir (default: train a tiny one)")
    parser.add_argument("--input", help="rows to explain (csv/jsonl/parquet; default: see above)")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--top", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(REPO / "benchmarks/results/explain.json"))
    args = parser.parse_args()

    import torch

    import adapters
    from adapters.reasons import explain_frame, pieces_of

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        model = Path(args.model) if args.model else tiny_adapter(Path(scratch))
        classifier = adapters.load(model)
        frame, origin = input_rows(classifier, args.input, args.rows)
        pieces = sum(len(row.variants) for row in pieces_of(classifier, frame)) / max(len(frame), 1)
        print(f"{len(frame)} rows from {origin}, {pieces:.1f} attributes/words per row", flush=True)
        classifier.predict_proba(frame, args.batch_size)  # warm-up
        explain_frame(classifier, frame, args.top, args.batch_size)
        predict_seconds, explain_seconds, scored = [], [], 0
        for repeat in range(args.repeats):
            start = time.perf_counter()
            classifier.predict_proba(frame, args.batch_size)
            predict_seconds.append(time.perf_counter() - start)
            start = time.perf_counter()
            _, scored = explain_frame(classifier, frame, args.top, args.batch_size)
            explain_seconds.append(time.perf_counter() - start)
            print(
                f"repeat {repeat + 1}: predict {predict_seconds[-1]:.2f}s, explain {explain_seconds[-1]:.2f}s"
            )

    predict, explain = statistics.median(predict_seconds), statistics.median(explain_seconds)
    result = {
        "explained_rows_per_second": len(frame) / explain,
        "scored_texts_per_second": scored / explain,
        "predict_rows_per_second": len(frame) / predict,
        "texts_per_row": scored / len(frame),
        "explain_over_predict": explain / predict,
    }
    print(
        f"explained {result['explained_rows_per_second']:.1f} rows/s, "
        f"scored {result['scored_texts_per_second']:.1f} texts/s (originals + variants), "
        f"predict {result['predict_rows_per_second']:.1f} rows/s"
    )
    print(
        f"explain / predict time: {result['explain_over_predict']:.2f} "
        f"for {result['texts_per_row']:.1f} texts per row (k + 1)"
    )
    payload = {
        "machine": machine(),
        "model": str(args.model) if args.model else "tiny: 2-layer BERT (hidden 32) on the synthetic table",
        "rows": len(frame),
        "rows_from": origin,
        "top": args.top,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "repeats": args.repeats,
        "predict_seconds": predict_seconds,
        "explain_seconds": explain_seconds,
        **result,
    }
    Path(args.output).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print("wrote", args.output)


if __name__ == "__main__":
    main()

"""``adapters`` command line: a thin argparse shell over :mod:`adapters.api`.

User errors print one line naming the file, row or key and exit 2 (``--debug`` shows the traceback);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from adapters.errors import AdaptersUserError

__all__ = ["main", "build_parser"]


FAIRNESS_EXIT = 3  # --strict: the fairness gap exceeded eval.fairness_max_gap (user errors exit 2)
_STRICT_HELP = f"exit {FAIRNESS_EXIT} when a fairness gap exceeds eval.fairness_max_gap (default: warn only)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adapters", description="Parameter-efficient transfer learning recipes."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for user errors too")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a recipe and write its artifact directory")
    train.add_argument("recipe", help="a recipe YAML file or a built-in name (see 'adapters recipes')")
    train.add_argument("overrides", nargs="*", metavar="section.key=value", help="recipe overrides")
    train.add_argument("--output", help="output directory (default: the recipe's training.output_dir)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its newest complete checkpoint (training.checkpoint_every)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--strict", action="store_true", help=_STRICT_HELP)

    curve = commands.add_parser("curve", help="learning curve: quality vs fraction of labels, with baselines")
    curve.add_argument("recipe", help="a recipe YAML file or a built-in name; its data.source is re-drawn")
    curve.add_argument("overrides", nargs="*", metavar="section.key=value", help="recipe overrides")
    curve.add_argument(
        "--fractions", default="0.05,0.1,0.25,0.5,1.0", help="fractions of the training labels"
    )
    curve.add_argument(
        "--seeds",
        default="3",
        help="draws per fraction: a count (3: seeds 0, 1, 2) or the seeds, comma-separated "
        "(1,2,5; one seed: 5,)",
    )
    curve.add_argument("--draws-small", type=int, default=10, help="draws at fractions <= 0.1 (default 10)")
    curve.add_argument("--baselines", action="store_true", help="classical baselines on the same draws")
    curve.add_argument("--stack", action="store_true", help="also the adapter blended with the best baseline")
    curve.add_argument("--full-finetune", action="store_true", help="the base model trained without PEFT")
    curve.add_argument(
        "--variant",
        nargs="+",
        action="append",
        metavar=("NAME", "section.key=value"),
        help="the adapter made another way, on the same draws (repeatable): NAME then its overrides",
    )
    curve.add_argument(
        "--ensemble",
        type=int,
        default=1,
        metavar="K",
        help="also the average of K adapters per draw, trained with other seeds (a seed ensemble)",
    )
    curve.add_argument("--keep-adapters", action="store_true", help="keep each cell's adapter weights")
    curve.add_argument("--output", help="output directory (default: outputs/curve-{recipe name})")
    curve.add_argument("--no-progress", action="store_true", help="no progress bar")

    evaluate = commands.add_parser("eval", help="metrics of a trained artifact")
    evaluate.add_argument("directory", help="an artifact directory or a Hub repo id (org/name)")
    evaluate.add_argument(
        "--data", help="a labelled csv/jsonl/parquet file (default: the recipe's test split)"
    )
    evaluate.add_argument("--strict", action="store_true", help=_STRICT_HELP)

    predict = commands.add_parser("predict", help="probabilities for new rows")
    predict.add_argument("directory", help="an artifact directory or a Hub repo id (org/name)")
    predict.add_argument("--input", required=True, help="csv/jsonl/parquet file with the recipe's columns")
    predict.add_argument("--output", required=True, help="CSV to write (input columns + prob_<label>)")
    predict.add_argument("--batch-rows", type=int, default=2048, help="rows read and scored at a time")
    predict.add_argument("--no-progress", action="store_true", help="no progress bar")

    explain = commands.add_parser("explain", help="reason codes: what raised each row's probability")
    explain.add_argument("directory", help="an artifact directory or a Hub repo id (org/name)")
    explain.add_argument("--input", required=True, help="csv/jsonl/parquet file with the recipe's columns")
    explain.add_argument("--output", required=True, help="CSV to write (row_id, score, reason_1.., reasons)")
    explain.add_argument("--top", type=int, default=4, help="reasons per row at most (default 4)")
    explain.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default 64)")

    lineage = commands.add_parser("lineage", help="where an adapter's knowledge came from, as a tree")
    lineage.add_argument("directory", help="an artifact directory or Hub repo id")
    lineage.add_argument("--json", action="store_true", help="print lineage.json in full")

    push = commands.add_parser("push", help="upload an artifact directory to the Hugging Face Hub")
    push.add_argument("directory", help="the artifact directory `adapters train` wrote")
    push.add_argument("repo_id", help="the Hub model repo, org/name (created if missing)")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--dry-run", action="store_true", help="write and list what would be uploaded only")
    push.add_argument("--dry-run-dir", help="where the dry run writes the files (default: DIR.push-preview)")
    push.add_argument(
        "--include-predictions",
        action="store_true",
        help="upload predictions.csv too (it holds the test rows' ids and true labels)",
    )

    combine = commands.add_parser("combine", help="combine LoRA adapters of one base model into one")
    combine.add_argument(
        "adapters",
        nargs="+",
        metavar="ADAPTER",
        help="artifact directories or Hub repo ids (NAME=PATH names one)",
    )
    combine.add_argument("--method", default="linear", help="linear (default), ties, dare_ties or cat")
    combine.add_argument("--weights", help="one weight per adapter, comma-separated (default: equal)")
    combine.add_argument("--density", type=float, help="share of entries kept by ties / dare_ties (0.5)")
    combine.add_argument("--output", required=True, help="the combined artifact directory to write")
    combine.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="a labelled file to evaluate on instead of adapter NAME's recipe test split (repeatable)",
    )
    combine.add_argument("--seed", type=int, default=0, help="seed of DARE's random drops")
    combine.add_argument("--overwrite", action="store_true", help="replace an existing output directory")

    merge = commands.add_parser(
        "merge", help="merge an adapter into its base: a standalone transformers model"
    )
    merge.add_argument("directory", help="an artifact directory or a Hub repo id (org/name)")
    merge.add_argument("output", help="the merged model directory to write")
    merge.add_argument("--overwrite", action="store_true", help="replace an existing output directory")

    export = commands.add_parser("export", help="export a classification adapter (merged) to ONNX")
    export.add_argument("directory", help="an artifact directory or a Hub repo id (org/name)")
    export.add_argument("output", help="the directory to write model.onnx, tokenizer and parity.json to")
    export.add_argument("--onnx", action="store_true", help="export to ONNX (the one format so far)")
    export.add_argument("--int8", action="store_true", help="also write model.int8.onnx (dynamic int8)")
    export.add_argument(
        "--data", help="labelled rows for the parity check (default: the recipe's test split)"
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing output directory")

    doctor = commands.add_parser("doctor", help="preflight: what will go wrong with this recipe and launcher")
    doctor.add_argument("recipe")
    doctor.add_argument("overrides", nargs="*", metavar="section.key=value")
    doctor.add_argument("--config_file", help="the Accelerate config you will launch with")

    commands.add_parser("recipes", help="list the built-in recipes")
    return parser


def _push(args: argparse.Namespace) -> int:
    """``adapters push``: list what goes (or would go) to the Hub; the token is never printed."""
    from adapters.share import push

    result = push(
        args.directory,
        args.repo_id,
        private=args.private,
        dry_run=args.dry_run or bool(args.dry_run_dir),
        dry_run_dir=args.dry_run_dir,
        include_predictions=args.include_predictions,
    )
    for path, size in result.files:
        print(f"{size:>12,d}  {path}")
    print(f"{result.total_bytes:>12,d}  total, {len(result.files)} files")
    for path, why in result.left_out.items():
        print(f"left out: {path} ({why})")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.preview_dir is not None:
        print(f"dry run: nothing uploaded; the files are in {result.preview_dir}")
    else:
        print(f"uploaded to {args.repo_id}: {result.commit_url}")
    return 0


def _pairs(items: Sequence[str], where: str) -> dict[str, str]:
    """``NAME=VALUE`` arguments as a dict (an existing path that contains '=' is not split)."""
    from pathlib import Path

    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value or Path(item).exists():
            raise AdaptersUserError(f"expected NAME=VALUE, got {item!r}", where=where)
        pairs[name] = value
    return pairs


def _combine(args: argparse.Namespace) -> int:
    """``adapters combine``: write the combined artifact and print its evaluation table."""
    from pathlib import Path

    from adapters.combine import combine

    named = [item for item in args.adapters if "=" in item and not Path(item).exists()]
    sources = _pairs(args.adapters, "ADAPTER") if named else args.adapters
    if named and len(named) != len(args.adapters):
        raise AdaptersUserError("name all adapters (NAME=PATH) or none", where="ADAPTER")
    try:
        weights = [float(part) for part in args.weights.split(",")] if args.weights else None
    except ValueError:
        raise AdaptersUserError(f"not comma-separated numbers: {args.weights!r}", where="--weights") from None
    result = combine(
        sources,
        args.output,
        method=args.method,
        weights=weights,
        density=args.density,
        data=_pairs(args.data, "--data"),
        overwrite=args.overwrite,
        seed=args.seed,
    )
    print(result.table)
    print(f"artifact: {result.output_dir}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    """``adapters merge``: write the merged model; say so when it was merged into a full-precision base."""
    from adapters.hub import artifact_dir
    from adapters.merge import MERGE_FILE, merge_adapter

    output = merge_adapter(artifact_dir(args.directory), args.output, overwrite=args.overwrite)
    record = json.loads((output / MERGE_FILE).read_text(encoding="utf-8"))
    if record.get("note"):
        print(f"note: {record['note']}")
    print(f"merged model: {output} (loads with transformers.pipeline({record['pipeline']!r}, model=...))")
    return 0


def _export(args: argparse.Namespace) -> int:
    """``adapters export --onnx``: write the ONNX model(s) and print the parity report's summary."""
    from adapters.hub import artifact_dir

    if not args.onnx:
        raise AdaptersUserError("choose the format: --onnx (the only one so far)", where="export")
    from adapters.export import export_onnx

    report = export_onnx(
        artifact_dir(args.directory), args.output, int8=args.int8, overwrite=args.overwrite, data=args.data
    )
    if report.get("merge_note"):
        print(f"note: {report['merge_note']}")
    auc = report["reference_roc_auc"]
    print(f"parity on {report['rows']} rows ({report['rows_from']}); PyTorch ROC-AUC {auc}")
    for row in (report[key] for key in ("onnx_fp32", "onnx_int8") if key in report):
        size, diff = row["bytes"] / 2**20, row["max_abs_prob_diff"]
        print(f"{row['file']}: {size:.1f} MiB, max |p - p_torch| {diff:.2e}, ROC-AUC {row['roc_auc']}")
    print(f"exported to {args.output}")
    return 0


def _fairness_exit(report: dict | None, strict: bool, where: str) -> int:
    """The exit code after train/eval: ``FAIRNESS_EXIT`` under ``--strict`` when the gap was exceeded (the
    warning itself was printed when the report was made; the artifact, if any, is written). The summary
    line goes to stderr so that eval's stdout stays one JSON document."""
    if report is None:
        if strict:
            print("note: --strict checks nothing: the recipe lists no eval.fairness", file=sys.stderr)
        return 0
    gap, limit = report.get("max_gap"), report.get("max_gap_allowed")
    shown = "n/a" if gap is None else f"{gap:.3f}"
    print(f"fairness: largest gap {shown} (eval.fairness_max_gap {limit}); see {where}", file=sys.stderr)
    if strict and report.get("gap_exceeded"):
        print(
            f"error: fairness gap {shown} exceeds eval.fairness_max_gap {limit} (--strict)", file=sys.stderr
        )
        return FAIRNESS_EXIT
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "combine":
        return _combine(args)
    if args.command == "push":
        return _push(args)
    if args.command == "merge":
        return _merge(args)
    if args.command == "export":
        return _export(args)
    if args.command == "recipes":
        from adapters.recipe import list_recipes

        for name, path in list_recipes().items():
            first = next(
                (
                    line[1:].strip()
                    for line in path.read_text(encoding="utf-8").splitlines()
                    if line.startswith("#") and line[1:].strip()
                ),
                "",
            )
            print(f"{name:28s} {first}")
        return 0

    if args.command == "doctor":
        from adapters.doctor import doctor_exit_code, format_table, run_doctor

        checks = run_doctor(args.recipe, args.overrides, args.config_file)
        print(format_table(checks))
        return doctor_exit_code(checks)

    if args.command == "lineage":
        from adapters.hub import artifact_dir
        from adapters.lineage import format_lineage, read_lineage

        found = read_lineage(artifact_dir(args.directory))
        if found is None:
            raise AdaptersUserError(
                "no lineage.json (trained elsewhere or by an older version)", args.directory
            )
        print(json.dumps(found, indent=2) if args.json else format_lineage(found))
        return 0

    from adapters import api

    if args.command == "train":
        result = api.train(
            args.recipe,
            args.overrides,
            output_dir=args.output,
            overwrite=args.overwrite,
            resume=args.resume,
            progress=not args.no_progress,
        )
        from accelerate import PartialState

        if PartialState().is_main_process:  # already initialised by train()
            print(json.dumps(result.metrics, indent=2))
            print(f"artifact: {result.output_dir}")
            return _fairness_exit(result.summary.get("fairness"), args.strict, "fairness.json")
    elif args.command == "curve":
        from adapters.learning_curve import curve
        from adapters.learning_curve import logger as curve_logger

        # The draws each fraction runs, once the settings are checked ("--seeds 2" is a count, "2," a seed).
        plan = logging.StreamHandler(sys.stderr)
        plan.setFormatter(logging.Formatter("%(message)s"))
        level = curve_logger.level
        curve_logger.addHandler(plan)
        curve_logger.setLevel(logging.INFO)
        try:
            result = curve(
                args.recipe,
                args.overrides,
                fractions=args.fractions,
                seeds=args.seeds,
                draws_small=args.draws_small,
                baselines=args.baselines,
                stack=args.stack,
                full_finetune=args.full_finetune,
                variants={name: changes for name, *changes in args.variant or []},
                ensemble=args.ensemble,
                output_dir=args.output,
                keep_adapters=args.keep_adapters,
                progress=not args.no_progress,
            )
        finally:
            curve_logger.removeHandler(plan)
            curve_logger.setLevel(level)
        print(f"{len(result.rows)} cells ({result.computed} computed, the rest cached)")
        print(f"curve: {result.output_dir / 'curve.md'} (curve.csv, curve.png beside it)")
    elif args.command == "eval":
        evaluated = api.evaluate(args.directory, args.data, with_fairness=True)
        print(json.dumps(evaluated, indent=2))
        return _fairness_exit(evaluated.get("fairness"), args.strict, 'the "fairness" key')
    elif args.command == "predict":
        if args.batch_rows < 1:
            raise AdaptersUserError("must be a positive number of rows", where="--batch-rows")
        done = api.predict_file(
            args.directory, args.input, args.output, args.batch_rows, progress=not args.no_progress
        )
        print(f"wrote {done['rows']} rows to {args.output} ({done['rows_per_second']} rows/s)")
    elif args.command == "explain":
        import time

        from adapters.reasons import check_settings

        check_settings(args.top, args.batch_size)  # before loading the model
        classifier = api.load(args.directory)
        started = time.perf_counter()  # rows/s of reading and explaining, as `predict` reports it
        explained = api.explain(classifier, args.input, args.output, args.top, args.batch_size)
        rate = len(explained) / max(time.perf_counter() - started, 1e-9)
        print(f"explained {len(explained)} rows into {args.output} ({rate:.1f} rows/s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may follow options too (`train RECIPE --overwrite a.b=1`); argparse alone refuses that.
    args, extra = parser.parse_known_args(argv)
    stray = [
        item for item in extra if args.command not in ("train", "doctor", "curve") or item.startswith("-")
    ]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        return _run(args)
    except AdaptersUserError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

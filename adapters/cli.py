"""``adapters`` command line: a thin argparse shell over :mod:`adapters.api`.

User errors print one line naming the file, row or key and exit 2 (``--debug`` shows the traceback);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from adapters.errors import AdaptersUserError

__all__ = ["main", "build_parser"]


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

    evaluate = commands.add_parser("eval", help="metrics of a trained artifact")
    evaluate.add_argument("directory")
    evaluate.add_argument(
        "--data", help="a labelled csv/jsonl/parquet file (default: the recipe's test split)"
    )

    predict = commands.add_parser("predict", help="probabilities for new rows")
    predict.add_argument("directory")
    predict.add_argument("--input", required=True, help="csv/jsonl/parquet file with the recipe's columns")
    predict.add_argument("--output", required=True, help="CSV to write (input columns + prob_<label>)")

    doctor = commands.add_parser("doctor", help="preflight: what will go wrong with this recipe and launcher")
    doctor.add_argument("recipe")
    doctor.add_argument("overrides", nargs="*", metavar="section.key=value")
    doctor.add_argument("--config_file", help="the Accelerate config you will launch with")

    commands.add_parser("recipes", help="list the built-in recipes")
    return parser


def _run(args: argparse.Namespace) -> int:
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
    elif args.command == "eval":
        print(json.dumps(api.evaluate(args.directory, args.data), indent=2))
    elif args.command == "predict":
        frame = api.predict(args.directory, args.input, args.output)
        print(f"wrote {len(frame)} rows to {args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may follow options too (`train RECIPE --overwrite a.b=1`); argparse alone refuses that.
    args, extra = parser.parse_known_args(argv)
    stray = [item for item in extra if args.command not in ("train", "doctor") or item.startswith("-")]
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

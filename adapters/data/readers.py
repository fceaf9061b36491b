"""Read a recipe's ``data.source`` into pandas frames, one per split the source already has.

Files and Hub datasets are read with ``datasets`` (so Hub ids, local dirs of csv/json/parquet and single
files all go through one loader); built-in datasets come from package data. Every failure becomes a
one-line user error that names the source.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pandas as pd

from adapters.errors import AdaptersUserError
from adapters.hub import HUB_UNREACHABLE, hub_unreachable, looks_like_hub_id, quiet_loading, root_cause

__all__ = ["read_source", "stream_source", "detect_format", "SPLIT_ALIASES"]

_SUFFIX_FORMAT = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
_DATASETS_BUILDER = {"csv": "csv", "jsonl": "json", "parquet": "parquet"}
_WHOLE_FILE = 2**31 - 1  # rows per pandas chunk when reading a CSV file: all of them

SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}


def detect_format(source: str, declared: str = "auto") -> str:
    """``builtin``, ``csv``, ``jsonl``, ``parquet``, ``dir`` or ``hub`` for ``source``."""
    if declared != "auto":
        return declared
    from adapters.data.builtin import BUILTIN_DATASETS

    if source in BUILTIN_DATASETS:
        return "builtin"
    path = Path(source)
    if path.is_dir():
        return "dir"
    if path.suffix.lower() in _SUFFIX_FORMAT:
        if not path.is_file():
            raise AdaptersUserError("data file not found", where=source)
        return _SUFFIX_FORMAT[path.suffix.lower()]
    if path.exists():
        raise AdaptersUserError(
            f"unknown file type {path.suffix!r}; use .csv, .tsv, .jsonl or .parquet (or set data.format)",
            where=source,
        )
    if looks_like_hub_id(source):
        return "hub"
    raise AdaptersUserError(
        f"not a file, a directory, a Hub dataset id or a built-in dataset ({', '.join(BUILTIN_DATASETS)})",
        where=source,
    )


def _diagnose(path: Path, kind: str) -> str | None:
    """After a failed read, what is wrong with a local file in its author's terms (a line number).

    ``datasets`` reports these as "An error occurred while generating the dataset" with the cause
    (a decode error at some byte of some chunk) buried in the chain; reading the file once more, only
    after a failure, is cheap and names the line.
    """
    if not path.is_file():
        return None
    payload = path.read_bytes()
    if not payload.strip():
        return "the file is empty"
    if kind == "parquet":
        return None
    lines = payload.splitlines()
    for number, line in enumerate(lines, 1):
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            byte = exc.object[exc.start]
            return f"not UTF-8 text: line {number} has byte 0x{byte:02x}; save the file as UTF-8"
        if kind == "jsonl" and text.strip():
            try:
                json.loads(text)
            except ValueError as exc:
                return f"line {number} is not valid JSON ({getattr(exc, 'msg', exc)})"
    if kind == "csv" and sum(1 for line in lines if line.strip()) == 1:
        return "the file has a header but no rows"
    return None


def _read_with_datasets(
    kind: str, source: str, data_files: str | None = None, revision: str | None = None
) -> dict[str, pd.DataFrame]:
    import datasets

    kwargs = {}
    if data_files is not None:
        kwargs["data_files"] = data_files
        if data_files.lower().endswith(".tsv"):
            kwargs["delimiter"] = "\t"
        if kind == "csv":
            # One pandas chunk: types are inferred over the whole file. In chunks of 10,000 rows (datasets'
            # default) a column such as a ZIP code that is all digits in the first chunk and "330XX" later
            # fails to convert. The whole file becomes one frame below anyway.
            kwargs["chunksize"] = _WHOLE_FILE
    try:
        with nullcontext() if kind == "hub" else quiet_loading():  # a download shows its progress
            loaded = datasets.load_dataset(_DATASETS_BUILDER.get(kind, source), **kwargs, revision=revision)
    except Exception as exc:  # datasets raises many types; the user needs the source and the reason
        if kind == "hub" and hub_unreachable(exc):
            raise AdaptersUserError(
                f"{HUB_UNREACHABLE} (no local file or directory {source!r})", where="data.source"
            ) from None
        wrapper = datasets.exceptions.DatasetGenerationError
        reason = _diagnose(Path(source), kind) or root_cause(exc, skip=(wrapper,))
        raise AdaptersUserError(f"could not read data ({reason})", where=source) from None
    frames = {str(name): split.to_pandas() for name, split in loaded.items()}
    for name, frame in frames.items():
        if frame.empty:
            split = "" if len(frames) == 1 else f" (split {name!r})"
            raise AdaptersUserError(f"no rows to read{split}", where=source)
    return frames


def read_source(source: str | pd.DataFrame, fmt: str = "auto") -> dict[str, pd.DataFrame]:
    """Return ``{"all": frame}`` for unsplit data, or ``{"train": ..., "validation": ..., "test": ...}``.

    Split names found in directories or on the Hub are normalised (``val``/``dev`` → ``validation``);
    splits with other names are refused, naming them.
    """
    if isinstance(source, pd.DataFrame):
        return {"all": source.reset_index(drop=True)}
    kind = detect_format(source, fmt)
    if kind == "builtin":
        from adapters.data.builtin import load_builtin

        return {"all": load_builtin(source)}
    if kind in _DATASETS_BUILDER:
        frames = _read_with_datasets(kind, source, data_files=source)
        return {"all": frames["train"]}
    frames = _read_with_datasets(kind, source)
    renamed: dict[str, pd.DataFrame] = {}
    for name, frame in frames.items():
        if name.lower() not in SPLIT_ALIASES:
            raise AdaptersUserError(
                f"unknown split {name!r}; expected train, validation and/or test", where=source
            )
        renamed[SPLIT_ALIASES[name.lower()]] = frame
    if "train" not in renamed:
        raise AdaptersUserError(f"no train split (found {', '.join(renamed)})", where=source)
    if len(renamed) == 1:
        return {"all": renamed["train"]}
    return renamed


def stream_source(source: str, batch_rows: int) -> Iterator[pd.DataFrame]:
    """Rows of a csv/jsonl/parquet file in frames of ``batch_rows``, never the whole file in memory.

    ``datasets`` streaming parses the file as training did (same builders, same types); other sources
    (directories, Hub datasets, built-ins) are read whole. A file that fails midway gives the same
    one-line error as :func:`read_source`.
    """
    kind = detect_format(source)
    if kind not in _DATASETS_BUILDER:
        yield pd.concat(read_source(source, kind).values(), ignore_index=True)
        return
    import datasets

    kwargs = {"delimiter": "\t"} if source.lower().endswith(".tsv") else {}
    wrapper = datasets.exceptions.DatasetGenerationError
    rows = 0
    with quiet_loading():
        stream = datasets.load_dataset(
            _DATASETS_BUILDER[kind], data_files=source, split="train", streaming=True, **kwargs
        )
        batches = stream.iter(batch_size=batch_rows)
    while True:
        try:
            with quiet_loading():
                batch = next(batches, None)
        except Exception as exc:  # the file's fault (a bad line midway): name the file and the line
            reason = _diagnose(Path(source), kind) or root_cause(exc, skip=(wrapper,))
            raise AdaptersUserError(f"could not read data ({reason})", where=source) from None
        if batch is None:
            break
        rows += len(next(iter(batch.values()), []))
        yield pd.DataFrame(batch)
    if rows == 0:
        raise AdaptersUserError("no rows to read", where=source)

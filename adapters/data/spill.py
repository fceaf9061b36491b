"""Columns that grow with the rows (rendered text, token ids) kept in memory-mapped Arrow files.

A column is written a chunk at a time to an Arrow IPC file and read back memory-mapped. Its pages are then
file pages: the kernel reads them in when touched and can drop them again, so they are not held as the
process's own (anonymous) memory, and no step holds a whole column in memory at once. At 100,000 German
Credit rows that is ~80 MB of text and ~110 MB of token ids (docs/performance.md, "Rows vs time and
memory"). Reading a mapped column costs what reading memory costs once its pages are cached.

The files go to a temporary folder in the ``datasets`` cache (on disk, where users already expect
``datasets``' Arrow files), and on POSIX systems each file is unlinked as soon as it is mapped: the mapping
keeps the data readable, and the disk space comes back when the last table using it is freed. Where a
mapped file cannot be unlinked (Windows), it goes with the folder when the interpreter exits.
"""

from __future__ import annotations

import functools
import os
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "SPILL_CHUNK_ROWS",
    "forget",
    "mapped_column",
    "mapped_text",
    "spill_path",
    "take_rows",
    "take_text",
]

SPILL_CHUNK_ROWS = 4096  # rows copied at a time when a column is written or re-ordered


@functools.cache
def _directory() -> tempfile.TemporaryDirectory:
    """This process's spill folder (one per process: DDP ranks never share a file), where ``datasets`` keeps
    its cache (the same setting, resolved without importing ``datasets`` on prediction's path)."""
    from huggingface_hub import constants

    root = Path(os.environ.get("HF_DATASETS_CACHE") or Path(constants.HF_HOME) / "datasets")
    try:
        root.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix="adapters-spill-", dir=root, ignore_cleanup_errors=True)
    except OSError:  # a read-only cache: the system's temporary folder
        return tempfile.TemporaryDirectory(prefix="adapters-spill-", ignore_cleanup_errors=True)


def spill_path(name: str) -> Path:
    """A fresh file name in the spill folder (``name`` says what it holds, for whoever lists the folder)."""
    return Path(_directory().name) / f"{name}-{uuid.uuid4().hex[:12]}.arrow"


def forget(path: str | os.PathLike) -> None:
    """Unlink a file that is mapped already: its data stays readable through the mapping (POSIX)."""
    try:
        os.unlink(path)
    except OSError:  # Windows keeps a mapped file; the folder goes at exit
        pass


def _mapped_table(batches: Iterable[pa.RecordBatch], schema: pa.Schema, name: str) -> pa.Table:
    """Write ``batches`` to one file, map it, unlink it: the table reads from the mapping. A batch that fails
    to come (a row that does not render: a user error) leaves no file behind."""
    path = spill_path(name)
    try:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
        return pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    finally:
        forget(path)


def mapped_column(chunks: Iterable[pa.Array], type: pa.DataType, name: str) -> pa.ChunkedArray:
    """Write ``chunks`` (arrays of ``type``) to one file and return them as a memory-mapped column."""
    schema = pa.schema([(name, type)])
    batches = (pa.record_batch([chunk], schema=schema) for chunk in chunks)
    return _mapped_table(batches, schema, name).column(0)


def mapped_text(chunks: Iterable[Sequence[str]], index: pd.Index | None = None) -> pd.Series:
    """Strings, given a chunk at a time, as an Arrow-backed text Series over a memory-mapped file."""
    arrays = (pa.array(chunk, type=pa.large_string()) for chunk in chunks)
    return _series(mapped_column(arrays, pa.large_string(), "text"), index)


def take_text(texts: pd.Series, positions: np.ndarray) -> pd.Series:
    """``texts`` at ``positions`` (a split's rows), copied a chunk at a time into a mapped file of its own."""
    arrow = pa.array(texts.array)  # an Arrow-backed Series gives its own chunks, not a copy
    source = arrow if isinstance(arrow, pa.ChunkedArray) else pa.chunked_array([arrow])
    source = source.cast(pa.large_string())
    parts = (
        _take(source, positions[start : start + SPILL_CHUNK_ROWS])
        for start in range(0, len(positions), SPILL_CHUNK_ROWS)
    )
    return _series(mapped_column(parts, source.type, "text"), None)


def take_rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """``frame.iloc[positions]`` (a split's raw rows), its text columns in a mapped file of their own.

    Written a chunk of rows at a time as Arrow record batches and read back with pandas' dtypes. Where a
    column does not survive that round trip with its dtype (mixed Python objects, a type Arrow infers
    differently from one chunk to the next), the rows are taken into memory as before: the baselines and
    the fairness report read these columns, and their results must not depend on where the rows live.
    """
    if len(positions) == 0 or len(frame.columns) == 0:
        return frame.iloc[positions].reset_index(drop=True)
    try:
        schema = pa.Schema.from_pandas(frame.iloc[positions[:SPILL_CHUNK_ROWS]], preserve_index=False)
        batches = (
            pa.RecordBatch.from_pandas(
                frame.iloc[positions[start : start + SPILL_CHUNK_ROWS]], schema=schema, preserve_index=False
            )
            for start in range(0, len(positions), SPILL_CHUNK_ROWS)
        )
        taken = _mapped_table(batches, schema, "rows").to_pandas()
    except (pa.ArrowException, KeyError, TypeError, ValueError):
        taken = None
    if taken is None or not taken.dtypes.equals(frame.dtypes) or list(taken.columns) != list(frame.columns):
        return frame.iloc[positions].reset_index(drop=True)
    return taken


def _take(source: pa.ChunkedArray, positions: np.ndarray) -> pa.Array:
    """``source`` at ``positions``, from each chunk that holds some of them: Arrow's take on a chunked array
    joins all its chunks first, a copy of the whole column."""
    starts = np.cumsum([0] + [len(chunk) for chunk in source.chunks])
    owner = np.searchsorted(starts, positions, side="right") - 1
    pieces, picked = [], []
    for chunk in np.unique(owner):
        rows = np.flatnonzero(owner == chunk)
        pieces.append(source.chunk(int(chunk)).take(pa.array(positions[rows] - starts[chunk])))
        picked.append(rows)
    if not pieces:
        return pa.array([], type=source.type)
    joined = pa.concat_arrays(pieces)
    return joined.take(pa.array(np.argsort(np.concatenate(picked), kind="stable")))


def _series(column: pa.ChunkedArray, index: pd.Index | None) -> pd.Series:
    """The column as pandas' Arrow-backed text (the ``str`` dtype of pandas 3), still over the mapping."""
    series = column.to_pandas().rename("text")
    if index is not None:
        series.index = index
    return series

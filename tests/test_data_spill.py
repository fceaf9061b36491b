"""spill: text and token ids live in memory-mapped Arrow files, not in the process's memory."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from adapters.data import prepare_data, resolve_data_config
from adapters.data.spill import mapped_text, spill_path, take_rows, take_text
from adapters.data.tokenize import tokenize_splits
from adapters.recipe import DataConfig
from tests.conftest import make_frame, write_data


def _chunks(rows: int, width: int = 200):
    for start in range(0, rows, 1000):
        yield [f"row {row} " + "x" * width for row in range(start, min(rows, start + 1000))]


def _spill_files() -> list[str]:
    return os.listdir(spill_path("probe").parent)


def test_mapped_text_reads_back_without_allocating_its_size():
    before = pa.total_allocated_bytes()  # pyarrow's pool: where an in-memory Arrow column would live
    texts = mapped_text(_chunks(20_000))  # ~4 MB of text
    assert pa.total_allocated_bytes() - before < 256 * 1024
    assert len(texts) == 20_000 and texts.iloc[12_345] == "row 12345 " + "x" * 200
    assert str(texts.dtype) == "str"


@pytest.mark.skipif(sys.platform.startswith("win"), reason="Windows keeps mapped files until exit")
def test_mapped_files_leave_no_file_behind():
    texts = mapped_text(_chunks(3_000))
    assert _spill_files() == []  # unlinked once mapped: the mapping keeps the data
    assert texts.iloc[-1].startswith("row 2999 ")

    def failing():
        yield ["a", "b"]
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        mapped_text(failing())
    assert _spill_files() == []  # nothing half-written


def test_take_text_matches_a_plain_take_across_chunks():
    texts = mapped_text(_chunks(9_000, width=3))  # 9 chunks of 1,000 rows
    positions = np.random.default_rng(0).permutation(9_000)[:5_000]
    taken = take_text(texts, positions)
    assert taken.tolist() == [texts.iloc[position] for position in positions]
    assert take_text(texts, np.array([], dtype=np.int64)).tolist() == []
    plain = pd.Series(["a", "b", "c"])  # not Arrow-backed: converted, same result
    assert take_text(plain, np.array([2, 0])).tolist() == ["c", "a"]


def _spilled(column: pa.ChunkedArray | pa.Array) -> bool:
    """Whether every chunk's data lies in a mapping of a spill file (Linux: /proc/self/maps)."""
    regions = []
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            span, *rest = line.split()
            if "adapters-spill-" in " ".join(rest[4:]):
                low, high = (int(value, 16) for value in span.split("-"))
                regions.append((low, high))
    chunks = [chunk for chunk in getattr(column, "chunks", [column]) if len(chunk)]
    nested = pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
    data = [(chunk.values if nested else chunk).buffers()[-1] for chunk in chunks]
    return bool(chunks) and all(any(low <= buffer.address < high for low, high in regions) for buffer in data)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_prepared_and_tokenized_splits_are_file_backed(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    path = write_data(tmp_path, make_frame(300))
    config = resolve_data_config(
        DataConfig(source=str(path), label_column="outcome", text_columns=["note", "income"])
    )
    prepared = prepare_data(config)
    for frame in prepared.frames.values():
        assert _spilled(pa.array(frame["text"].array))

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenized = tokenize_splits(prepared.to_datasets(), tokenizer, max_length=64)
    for dataset in tokenized.values():
        assert _spilled(dataset.data.column("input_ids"))
    expected = tokenizer(prepared.frames["train"]["text"][0], max_length=64, truncation=True)
    assert tokenized["train"][0]["input_ids"] == expected["input_ids"]
    assert _spill_files() == []  # every file unlinked once mapped


def test_take_rows_keeps_values_and_dtypes():
    frame = pd.DataFrame(
        {
            "purpose": pd.Series(["car", "tv", None, "education"] * 3_000, dtype="str"),
            "amount": np.arange(12_000, dtype=np.int64),
            "rate": np.linspace(0, 1, 12_000),
            "grade": pd.Categorical(["A", "B", "C"] * 4_000),
            "flag": np.tile([True, False], 6_000),
        }
    )
    positions = np.random.default_rng(1).permutation(12_000)[:7_000]
    taken = take_rows(frame, positions)
    pd.testing.assert_frame_equal(taken, frame.iloc[positions].reset_index(drop=True))
    if sys.platform.startswith("linux"):
        assert _spilled(pa.array(taken["purpose"].array))

    mixed = pd.DataFrame({"value": pd.Series([1, "two", 3.0] * 10, dtype=object), 7: range(30)})
    kept = take_rows(mixed, np.array([4, 1]))  # no Arrow round trip for these: taken in memory, the same
    pd.testing.assert_frame_equal(kept, mixed.iloc[[4, 1]].reset_index(drop=True))
    assert take_rows(frame, np.array([], dtype=np.int64)).empty

"""Ragged real-world CSVs through the generic path: CRLF, newlines inside quotes, empty texts, rare classes.

The CFPB complaint export (recipes/cfpb-complaints) has all of these; the tests use tiny files with the
same traits, then check the shipped recipe and its data file (prepare only, no training).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from adapters.data import prepare_data, resolve_data_config
from adapters.data.readers import read_source
from adapters.errors import AdaptersUserError
from adapters.recipe import DataConfig, load_recipe

SHARED_CFPB = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "cfpb_complaints" / "complaints_sample.csv"
)


def config(**values) -> DataConfig:
    base = {"text_columns": ["note"], "label_column": "outcome", "split_seed": 0}
    return DataConfig(**{**base, **values})


def labelled(counts: dict[str, int], empty: int = 0) -> pd.DataFrame:
    """``counts[label]`` rows per label with distinct notes, then ``empty`` rows with no note."""
    labels = [label for label, count in counts.items() for _ in range(count)]
    notes: list[str | None] = [f"note {index} {label}" for index, label in enumerate(labels)]
    frame = pd.DataFrame(
        {"id": [f"R{index}" for index in range(len(labels))], "note": notes, "outcome": labels}
    )
    blanks = pd.DataFrame(
        {
            "id": [f"E{index}" for index in range(empty)],
            "note": [[None, "", "   ", "\r\n\t"][index % 4] for index in range(empty)],
            "outcome": [
                None if index % 2 else labels[0] for index in range(empty)
            ],  # half have no label either
        }
    )
    return pd.concat([blanks, frame], ignore_index=True)


# --- reading ---------------------------------------------------------------------------------------


def test_crlf_file_with_newlines_inside_quotes(tmp_path: Path) -> None:
    payload = (
        b"id,note,outcome\r\n"
        b'1,"first line\r\nsecond line",good\r\n'
        b'2,"unix\nbreak, with a comma",bad\r\n'
        b'3,"quoted ""word""\r\n\r\nafter a blank line",good\r\n'
        b"4,plain,bad\r\n"
    )
    path = tmp_path / "ragged.csv"
    path.write_bytes(payload)
    frame = read_source(str(path))["all"]
    assert len(frame) == 4
    assert frame["note"].tolist() == [
        "first line\r\nsecond line",
        "unix\nbreak, with a comma",
        'quoted "word"\r\n\r\nafter a blank line',
        "plain",
    ]
    assert frame["outcome"].tolist() == ["good", "bad", "good", "bad"]  # no stray "\r" in the last column


def test_column_typed_differently_after_the_first_chunk_reads(tmp_path: Path) -> None:
    """A ZIP code column of digits for 10,000+ rows and then '330XX' (CFPB exports) is one column."""
    rows = 10_050
    zips = [str(10_000 + index) for index in range(rows)]
    zips[-1] = "330XX"
    frame = pd.DataFrame({"note": ["n"] * rows, "zip": zips, "outcome": ["a", "b"] * (rows // 2)})
    frame.to_csv(tmp_path / "zips.csv", index=False)
    read = read_source(str(tmp_path / "zips.csv"))["all"]
    assert len(read) == rows and read["zip"].iloc[-1] == "330XX" and str(read["zip"].iloc[0]) == "10000"


# --- empty texts -----------------------------------------------------------------------------------


def test_empty_texts_dropped_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    frame = labelled({"good": 30, "bad": 20}, empty=8)
    with caplog.at_level(logging.WARNING, logger="adapters.data.prepare"):
        data = prepare_data(config(id_column="id"), frame)
    cleaning = data.info["cleaning"]
    assert cleaning["rows_read"] == 58 and cleaning["empty_text_dropped"] == 8 and cleaning["rows_used"] == 50
    assert sum(data.info["rows"].values()) == 50
    assert data.label_names == ["bad", "good"]  # rows without a text (some without a label) never count
    for name, split in data.frames.items():
        assert split["row_id"].str.startswith("R").all()
        assert split["text"].str.strip().ne("").all()
        assert data.tables[name]["id"].tolist() == split["row_id"].tolist()  # raw columns follow the rows
    assert [record.getMessage() for record in caplog.records] == [
        "DataFrame: 8 of 58 rows dropped for an empty text"
    ]


def test_default_row_ids_stay_source_positions() -> None:
    data = prepare_data(config(), labelled({"good": 30, "bad": 20}, empty=4))
    ids = sorted(int(row) for split in data.frames.values() for row in split["row_id"])
    assert ids == list(range(4, 54))


def test_empty_text_error_names_the_row() -> None:
    frame = labelled({"good": 10, "bad": 10})
    frame.loc[6, "note"] = "  "
    with pytest.raises(AdaptersUserError, match=r"row 7, column 'note': text is empty"):
        prepare_data(config(empty_text="error"), frame)


def test_all_texts_empty_is_one_error() -> None:
    frame = pd.DataFrame({"note": [None, " "] * 5, "outcome": ["a", "b"] * 5})
    with pytest.raises(AdaptersUserError, match=r"column 'note': every row has an empty text"):
        prepare_data(config(), frame)


def test_template_renders_missing_as_unknown_not_empty() -> None:
    frame = labelled({"good": 20, "bad": 20}, empty=4).fillna({"outcome": "good"})
    data = prepare_data(config(text_columns=None, template="{note}"), frame)
    assert data.info["cleaning"]["empty_text_dropped"] == 3  # "", "   ", "\r\n\t"; None renders "unknown"
    assert "unknown" in data.frames["train"]["text"].tolist() + data.frames["test"]["text"].tolist() + (
        data.frames["validation"]["text"].tolist()
    )


# --- rare classes ----------------------------------------------------------------------------------


def test_rare_classes_break_stratified_splitting_without_min_class_count() -> None:
    with pytest.raises(AdaptersUserError, match="stratified"):
        prepare_data(config(), labelled({"a": 30, "b": 30, "c": 1}))


def test_rare_classes_merge_into_other() -> None:
    data = prepare_data(config(min_class_count=5), labelled({"a": 30, "b": 30, "c": 4, "d": 3, "e": 1}))
    assert data.label_names == ["a", "b", "other"]
    assert data.info["cleaning"]["rare_classes_merged"] == {"c": 4, "d": 3, "e": 1}
    assert data.info["cleaning"]["rows_used"] == 68
    assert sum(counts["other"] for counts in data.info["label_counts"].values()) == 8
    for split in data.frames.values():  # stratified: every split has every class
        assert set(split["label"]) == {0, 1, 2}
    # the saved recipe (label names as trained) prepares the same rows again
    again = prepare_data(
        config(min_class_count=5, label_names=data.label_names),
        labelled({"a": 30, "b": 30, "c": 4, "d": 3, "e": 1}),
    )
    assert again.frames["test"].equals(data.frames["test"])


def test_other_still_rare_is_dropped_too() -> None:
    data = prepare_data(config(min_class_count=5), labelled({"a": 30, "b": 30, "c": 2, "d": 1}))
    assert data.label_names == ["a", "b"]
    assert data.info["cleaning"]["rare_classes_dropped"] == {"c": 2, "d": 1}
    assert "2 class(es) with fewer than 5 rows dropped: 'c' (2), 'd' (1)" in data.info["cleaning"]["note"]


def test_rare_classes_dropped() -> None:
    data = prepare_data(
        config(min_class_count=10, rare_classes="drop"), labelled({"a": 30, "b": 30, "c": 9, "d": 12})
    )
    assert data.label_names == ["a", "b", "d"]
    assert data.info["cleaning"]["rare_classes_dropped"] == {"c": 9}
    assert sum(data.info["rows"].values()) == 72


def test_listed_rare_label_is_a_user_error() -> None:
    frame = labelled({"a": 30, "b": 30, "c": 2})
    with pytest.raises(AdaptersUserError, match=r"data.label_names: label 'c' has 2 row\(s\)"):
        prepare_data(config(min_class_count=5, label_names=["a", "b", "c"]), frame)
    with pytest.raises(AdaptersUserError, match="merge into 'other', which data.label_names does not list"):
        prepare_data(
            config(min_class_count=5, label_names=["a", "b"]), labelled({"a": 30, "b": 30, "c": 3, "d": 2})
        )
    data = prepare_data(config(min_class_count=5, label_names=["a", "b"], rare_classes="drop"), frame)
    assert data.label_names == ["a", "b"]


def test_min_class_count_is_for_classification() -> None:
    frame = pd.DataFrame({"note": [f"n{i}" for i in range(20)], "outcome": [float(i) for i in range(20)]})
    with pytest.raises(AdaptersUserError, match="data.min_class_count"):
        prepare_data(config(min_class_count=3), frame, task="regression")


# --- a relative data.source in a recipe file -------------------------------------------------------


def test_relative_source_is_read_beside_the_recipe_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    labelled({"a": 10, "b": 10}).to_csv(folder / "rows.csv", index=False)
    recipe = folder / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"source": "rows.csv", "text_columns": ["note"]}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_recipe(recipe).data.source == str((folder / "rows.csv").resolve())
    # an override is typed relative to the shell's directory: left alone
    assert load_recipe(recipe, ["data.source=rows.csv"]).data.source == "rows.csv"
    # not beside the recipe: relative to the working directory, as before
    recipe.write_text(yaml.safe_dump({"data": {"source": "other.csv", "text_columns": ["note"]}}))
    assert load_recipe(recipe).data.source == "other.csv"
    # beside the recipe and the working directory the same place: unchanged
    monkeypatch.chdir(folder)
    recipe.write_text(yaml.safe_dump({"data": {"source": "rows.csv", "text_columns": ["note"]}}))
    assert load_recipe("recipe.yaml").data.source == "rows.csv"


# --- the shipped CFPB recipe -----------------------------------------------------------------------

CFPB_DROPPED = {"Bank account or service": 1, "Consumer Loan": 2, "Credit card": 2, "Payday loan": 1}


def test_cfpb_recipe_prepares_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe("cfpb-complaints/lora")
    assert Path(recipe.data.source).is_file() and recipe.eval.primary_metric == "f1_macro"
    raw = read_source(recipe.data.source)["all"]
    assert len(raw) == 1532 and raw["Complaint ID"].is_unique
    assert raw["Consumer complaint narrative"].str.contains("\n").sum() == 602
    data = prepare_data(resolve_data_config(recipe.data), task=recipe.task)
    assert len(data.label_names) == 9 and "other" not in data.label_names
    assert data.info["rows"] == {"train": 915, "validation": 305, "test": 306}
    cleaning = data.info["cleaning"]
    assert cleaning["rows_used"] == 1526 and cleaning["empty_text_dropped"] == 0
    assert cleaning["rare_classes_dropped"] == CFPB_DROPPED
    assert min(data.info["label_counts"]["test"].values()) >= 2


@pytest.mark.skipif(not SHARED_CFPB.is_file(), reason="the original CFPB sample is not in ../shared")
def test_cfpb_original_file_gives_the_same_rows() -> None:
    recipe = load_recipe("cfpb-complaints/lora", [f"data.source={SHARED_CFPB}"])
    data = prepare_data(resolve_data_config(recipe.data), task=recipe.task)
    cleaning = data.info["cleaning"]
    assert (cleaning["rows_read"], cleaning["empty_text_dropped"], cleaning["rows_used"]) == (
        6623,
        5091,
        1526,
    )
    assert cleaning["rare_classes_dropped"] == CFPB_DROPPED
    shipped = prepare_data(resolve_data_config(load_recipe("cfpb-complaints/lora").data))
    assert np.array_equal(shipped.frames["test"]["row_id"], data.frames["test"]["row_id"])

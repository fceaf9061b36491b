"""Data preparation: readers, text rendering, labels, splits, sub-sampling, tokenization, batching."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from adapters.data import prepare_data, render_text, resolve_data_config
from adapters.errors import AdaptersUserError
from adapters.recipe import DataConfig
from tests.conftest import make_frame


def config(**values) -> DataConfig:
    base = {
        "text_columns": ["note"],
        "label_column": "outcome",
        "label_names": ["good", "bad"],
        "positive_label": "bad",
    }
    return DataConfig(**{**base, **values})


def test_builtin_default_split_is_stratified_and_fixed() -> None:
    data = prepare_data(resolve_data_config(DataConfig()))
    rows = data.info["rows"]
    assert rows == {"train": 600, "validation": 200, "test": 200}
    assert data.label_names == ["good", "bad"]
    for frame in data.frames.values():
        assert frame["label"].mean() == pytest.approx(0.3, abs=0.01)
    again = prepare_data(resolve_data_config(DataConfig()))
    assert data.frames["test"]["row_id"].tolist() == again.frames["test"]["row_id"].tolist()
    assert data.frames["train"]["text"][0].startswith("The ")
    all_ids = set().union(*(set(frame["row_id"]) for frame in data.frames.values()))
    assert len(all_ids) == 1000


def test_train_fraction_keeps_validation_and_test() -> None:
    full = prepare_data(resolve_data_config(DataConfig()))
    tenth = prepare_data(resolve_data_config(DataConfig(train_fraction=0.1)))
    assert len(tenth.frames["train"]) == 60
    assert tenth.frames["train"]["label"].sum() == 18  # stratified: 30 % bad
    assert set(tenth.frames["train"]["row_id"]) <= set(full.frames["train"]["row_id"])
    for split in ("validation", "test"):
        assert tenth.frames[split]["row_id"].tolist() == full.frames[split]["row_id"].tolist()


def test_dataframe_source_with_id_column(frame: pd.DataFrame) -> None:
    data = prepare_data(config(id_column="applicant"), frame)
    assert sum(data.info["rows"].values()) == len(frame)
    assert data.frames["test"]["row_id"].str.startswith("A").all()
    assert set(data.frames["train"]["label"]) == {0, 1}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_file_readers(tmp_path: Path, frame: pd.DataFrame, suffix: str) -> None:
    path = tmp_path / f"loans{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    data = prepare_data(config(source=str(path)))
    assert sum(data.info["rows"].values()) == len(frame)


def test_directory_with_named_splits(tmp_path: Path) -> None:
    make_frame(60, seed=1).to_csv(tmp_path / "train.csv", index=False)
    make_frame(30, seed=2).to_csv(tmp_path / "test.csv", index=False)
    data = prepare_data(config(source=str(tmp_path)))
    assert len(data.frames["test"]) == 30
    assert len(data.frames["train"]) + len(data.frames["validation"]) == 60


def test_split_column(frame: pd.DataFrame) -> None:
    frame["part"] = ["train"] * 50 + ["val"] * 15 + ["test"] * 15
    data = prepare_data(config(split_column="part"), frame)
    assert data.info["rows"] == {"train": 50, "validation": 15, "test": 15}
    frame.loc[3, "part"] = "holdout"
    with pytest.raises(AdaptersUserError, match="holdout"):
        prepare_data(config(split_column="part"), frame)


def test_template_renders_and_names_missing_column(frame: pd.DataFrame) -> None:
    texts = render_text(frame.head(2), "Note: {note}. Income {income}.")
    assert texts[0] == f"Note: {frame.note[0]}. Income {frame.income[0]}."
    with pytest.raises(AdaptersUserError, match=r"row 1.*'salary_band'"):
        render_text(frame, "{salary_band}", where="loans.csv")


def test_template_spells_numbers_out_and_names_their_bins() -> None:
    rows = pd.DataFrame({"months": [12, 13, 36.0, None], "amount": [2799, 950, 18424, 1000]})
    texts = render_text(
        rows, "{months:bins(12,24)a year or less,one to two years,over two years}; {amount:words} DM."
    )
    assert texts == [
        "a year or less; two thousand, seven hundred and ninety-nine DM.",
        "one to two years; nine hundred and fifty DM.",
        "over two years; eighteen thousand, four hundred and twenty-four DM.",
        "unknown; one thousand DM.",
    ]
    # A template without the new specs keeps str.format's own (format_map, the fast path).
    assert render_text(rows.head(1), "{amount:,} DM")[0] == "2,799 DM"


@pytest.mark.parametrize(
    ("template", "message", "where"),
    [
        ("{months:bins(24,12)short,long,longer}", "increasing numbers", "data.template"),
        ("{months:bins(12,24)short,long}", "2 edges need 3 labels", "data.template"),
        ("{months:bins12)short,long}", "not a valid format string", "data.template"),
        ("{note:words}", "needs a number, got 'rent", "row 1"),
        ("{note:bins(1)low,high}", "needs a number", "row 1"),
    ],
)
def test_bad_number_specs_are_one_line_errors(template: str, message: str, where: str) -> None:
    rows = pd.DataFrame({"months": [12], "note": ["rent arrears"]})
    with pytest.raises(AdaptersUserError, match=message) as caught:
        render_text(rows, template, where="loans.csv")
    assert where in str(caught.value) and "\n" not in str(caught.value)


def test_number_words_without_num2words_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "num2words", None)  # import fails as if not installed
    with pytest.raises(AdaptersUserError, match=r"peft-recipes\[words\]"):
        render_text(pd.DataFrame({"months": [12]}), "{months:words}")


def test_several_text_columns_become_sentences(frame: pd.DataFrame) -> None:
    assert (
        render_text(frame.head(1), text_columns=["note", "income"])[0]
        == f"note: {frame.note[0]}. income: {frame.income[0]}."
    )


def test_bad_label_names_row(frame: pd.DataFrame) -> None:
    frame.loc[7, "outcome"] = "maybe"
    with pytest.raises(AdaptersUserError, match=r"row 8.*'maybe'"):
        prepare_data(config(), frame)
    frame.loc[7, "outcome"] = None
    with pytest.raises(AdaptersUserError, match=r"row 8.*missing"):
        prepare_data(config(), frame)


def test_missing_columns_and_sources(frame: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(AdaptersUserError, match="'risk' not found"):
        prepare_data(config(label_column="risk"), frame)
    with pytest.raises(AdaptersUserError, match="not found"):
        prepare_data(config(source=str(tmp_path / "nope.csv")))
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(AdaptersUserError, match="unknown file type"):
        prepare_data(config(source=str(tmp_path / "x.xlsx")))


def test_labels_inferred_sorted(frame: pd.DataFrame) -> None:
    data = prepare_data(config(label_names=None, positive_label=None), frame)
    assert data.label_names == ["bad", "good"]


def test_tokenize_once_and_length_grouped_batches(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from adapters.data.tokenize import make_dataloader, tokenize_splits

    data = prepare_data(resolve_data_config(DataConfig()))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenized = tokenize_splits(data.to_datasets(), tokenizer, max_length=256)
    assert "text" not in tokenized["train"].column_names
    loader = make_dataloader(tokenized["train"], tokenizer, 16, train=True, seed=0)
    padded = sum(batch["input_ids"].numel() for batch in loader)
    real = sum(tokenized["train"]["length"])
    assert padded / real < 1.05  # grouping by length wastes under 5 % on padding
    shuffled = make_dataloader(tokenized["train"], tokenizer, 16, train=True, seed=0, group_by_length=False)
    rows = [int(i) for batch in shuffled for i in batch["row_index"]]
    assert sorted(rows) == list(range(len(tokenized["train"])))  # every row once an epoch
    assert sum(batch["input_ids"].numel() for batch in shuffled) > padded  # not grouped: more padding
    again = make_dataloader(tokenized["train"], tokenizer, 16, train=True, seed=0, group_by_length=False)
    assert [int(i) for batch in again for i in batch["row_index"]] == rows  # a function of the seed
    evaluation = make_dataloader(tokenized["test"], tokenizer, 64, train=False)
    positions = sorted(int(i) for batch in evaluation for i in batch["row_index"])
    assert positions == list(range(200))


def test_texts_follow_their_rows_across_render_chunks(frame: pd.DataFrame, monkeypatch) -> None:
    """Texts are rendered a chunk at a time into Arrow and joined to the splits by position: every split's
    text is still its own row's, and each row is rendered once."""
    from adapters.data import render

    monkeypatch.setattr(render, "RENDER_CHUNK_ROWS", 7)  # 80 rows: many chunks, the last one short
    calls = []
    original = render.format_row
    monkeypatch.setattr(render, "format_row", lambda *args: calls.append(1) or original(*args))
    data = prepare_data(
        config(text_columns=None, template="{applicant}: {note}", id_column="applicant"), frame
    )
    assert len(calls) == len(frame)
    notes = dict(zip(frame["applicant"], frame["note"], strict=True))
    for split in data.frames.values():
        assert str(split["text"].dtype) == "str"  # Arrow-backed, not Python objects
        assert split["text"].tolist() == [f"{row}: {notes[row]}" for row in split["row_id"]]
    dataset = data.to_datasets()["train"]
    assert dataset["text"][:5] == data.frames["train"]["text"].head(5).tolist()


def test_template_reading_the_label_renders_merged_classes_as_other() -> None:
    """A template may read the label column; merged rare classes are rendered with their new name."""
    frame = pd.DataFrame(
        {"note": [f"n{i}" for i in range(60)], "kind": ["a"] * 26 + ["b"] * 26 + ["r1"] * 4 + ["r2"] * 4}
    )
    data = prepare_data(
        DataConfig(template="{note} ({kind})", label_column="kind", min_class_count=5, rare_classes="other"),
        frame,
    )
    texts = pd.concat([split["text"] for split in data.frames.values()]).tolist()
    assert any(text.endswith("(other)") for text in texts)
    assert not any("(r1)" in text or "(r2)" in text for text in texts)


def test_data_fingerprint_is_unchanged_by_hashing_in_slices() -> None:
    """Checkpoints written before hashing was sliced must still match their data (resume)."""
    import hashlib

    from adapters import checkpoint

    frame = pd.DataFrame({"row_id": [str(i) for i in range(10_000)], "text": ["é t"] * 10_000, "label": 1})
    digest = hashlib.sha256(b"train")
    for column in ("row_id", "text", "label"):
        digest.update("\x1f".join(map(str, frame[column].tolist())).encode("utf-8", "surrogatepass"))
    assert checkpoint.data_fingerprint({"train": frame}) == digest.hexdigest()

"""`adapters explain`: occlusion reason codes find the attribute the label depends on; CSV and CLI behave.

The main check trains a tiny model on a table whose label is a function of ONE attribute (``status``:
"negative balance" is bad, every other status good; the other attributes are random) and asks whether
occlusion finds it. A random tiny BERT with the default initialisation (weights of std 0.02) barely
separates its inputs, so this test's base is the same 2-layer BERT initialised at std 0.2, which learns
the rule in a few epochs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

import adapters
from adapters.cli import main
from adapters.errors import AdaptersUserError
from adapters.reasons import _column_pieces, _template_pieces, _word_pieces, positive_index
from tests.conftest import make_frame, save_tiny_bert, tiny_recipe

TEMPLATE = (
    "The applicant has a {status}. The loan is for {purpose}. The housing is {housing}. "
    "The applicant works as {job}. The applicant is {age} years old."
)
# "negative balance" twice: about 40 % of the rows are bad.
STATUSES = [
    "negative balance",
    "negative balance",
    "positive balance",
    "no checking account",
    "savings account",
]


def synthetic_table(rows: int, seed: int) -> pd.DataFrame:
    """Applicants whose label depends on ``status`` alone: bad exactly when it is "negative balance"."""
    rng = random.Random(seed)
    records = []
    for index in range(rows):
        status = rng.choice(STATUSES)
        records.append(
            {
                "applicant": f"A{index:04d}",
                "status": status,
                "purpose": rng.choice(["a car", "furniture", "education", "a vacation", "repairs"]),
                "housing": rng.choice(["rented", "owned", "free"]),
                "job": rng.choice(["a teacher", "a clerk", "a manager", "a driver"]),
                "age": rng.randint(20, 70),
                "outcome": "bad" if status == "negative balance" else "good",
            }
        )
    return pd.DataFrame(records)


def save_sharper_bert(directory: Path) -> Path:
    """conftest's tiny BERT (2 layers, hidden 32, MiniLM tokenizer) with weights of std 0.2."""
    return save_tiny_bert(directory, initializer_range=0.2)


def table_recipe(model_dir: Path) -> dict:
    """The tiny recipe on the synthetic table: one template sentence per attribute."""
    return tiny_recipe(
        model_dir,
        data={"text_columns": None, "template": TEMPLATE, "max_length": 64},
        method={"r": 8, "target_modules": ["query", "key", "value"]},
        training={"epochs": 5, "learning_rate": 3e-2, "per_device_batch_size": 16},
    )


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread for this module: a hidden-32 model gains nothing from two, a busy machine makes two
    threads wait on each other (10x slower), and the trained weights do not depend on the core count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def table_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("explain-table")
    base = save_sharper_bert(work / "bert")
    result = adapters.train(
        table_recipe(base), data=synthetic_table(300, 0), output_dir=work / "out", progress=False
    )
    return result.output_dir


@pytest.fixture(scope="module")
def text_artifact(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    output = tmp_path_factory.mktemp("explain-text") / "tiny"
    return adapters.train(
        tiny_recipe(tiny_model_dir, training={"epochs": 2}),
        data=make_frame(80),
        output_dir=output,
        progress=False,
    ).output_dir


def test_the_attribute_the_label_depends_on_ranks_first(table_artifact: Path) -> None:
    """Denominators: the rows the model declines (decision "bad") and, separately, the rows whose status
    is "negative balance" (the rule's cause); ``status`` must be reason 1 for at least 90 % of each."""
    frame = synthetic_table(120, 1)
    result = adapters.explain(table_artifact, frame, top=3)
    assert list(result["row_id"]) == list(frame["applicant"])
    declined = result[result["decision"] == "bad"]
    assert len(declined) >= 30  # the model learned the rule: about 40 % of rows are bad
    assert (declined["reason_1"] == "status").mean() >= 0.9
    negative = result[(frame["status"] == "negative balance").to_numpy()]
    assert (negative["reason_1"] == "status").mean() >= 0.9
    first = negative.iloc[0]
    assert first["reasons"].startswith("Main reasons: the applicant has a negative balance")
    assert first["delta_1"] >= 0


def test_free_text_reasons_are_words_of_the_row(text_artifact: Path) -> None:
    frame = make_frame(30, seed=5)
    frame.loc[0, "note"] = "debt, late (default)"
    result = adapters.explain(text_artifact, frame, top=2)
    assert list(result.columns) == [
        "row_id",
        "score",
        "decision",
        "reason_1",
        "reason_2",
        "delta_1",
        "delta_2",
        "reasons",
    ]
    found = 0
    for note, row in zip(frame["note"], result.itertuples(index=False), strict=True):
        words = {word.strip(",()") for word in note.split()}
        for reason, delta in ((row.reason_1, row.delta_1), (row.reason_2, row.delta_2)):
            if isinstance(reason, str):
                found += 1
                assert reason in words and delta >= 0
    assert found > 0
    assert result["score"].between(0, 1).all()


def test_pieces_are_the_row_without_one_part() -> None:
    """Template rows drop one sentence (fixed text stays); several text columns drop one column; free
    text drops one word, at most ``max_words`` of them, punctuation-only tokens never."""
    frame = pd.DataFrame({"a": [1], "b": ["x"], "c": [2.0]})
    (row,) = _template_pieces(frame, "Profile. A is {a}. B is {b} and C is {c}.")
    assert row.text == "Profile. A is 1. B is x and C is 2."
    assert row.names == ["a", "b+c"]
    assert row.labels == ["a is 1", "b is x and C is 2"]
    assert row.variants == ["Profile. B is x and C is 2.", "Profile. A is 1."]
    (row,) = _column_pieces(frame, ["a", "b"])
    assert row.text == "a: 1. b: x." and row.variants == ["b: x.", "a: 1."] and row.labels == ["a: 1", "b: x"]
    (row,) = _word_pieces(["late - debt! again"], max_words=2)
    assert row.names == ["late", "debt"] and row.variants == ["- debt! again", "late -  again"]


def test_only_binary_classifiers_are_explained() -> None:
    def fake(**settings: object) -> SimpleNamespace:
        defaults = {"task": "classification", "problem_type": "single_label_classification", "directory": "d"}
        return SimpleNamespace(**{**defaults, "positive_label": None, **settings})

    assert positive_index(fake(label_names=["bad", "good"], positive_label="bad")) == 0
    assert positive_index(fake(label_names=["no", "yes"])) == 1
    for refused in (
        fake(label_names=["a", "b", "c"]),
        fake(label_names=["value"], problem_type="regression", task="regression"),
    ):
        with pytest.raises(AdaptersUserError, match="binary classifier"):
            positive_index(refused)


def test_csv_is_written_atomically_and_failures_leave_nothing(text_artifact: Path, tmp_path: Path) -> None:
    source = tmp_path / "data" / "rows.csv"
    source.parent.mkdir()
    make_frame(12, seed=3).to_csv(source, index=False)
    output = tmp_path / "out" / "reasons.csv"
    returned = adapters.explain(text_artifact, source, output, top=3)
    written = pd.read_csv(output)
    assert list(written.columns) == [
        "row_id",
        "score",
        "decision",
        *(f"reason_{k}" for k in (1, 2, 3)),
        *(f"delta_{k}" for k in (1, 2, 3)),
        "reasons",
    ]
    assert written["row_id"].tolist() == returned["row_id"].tolist()
    assert written["reasons"].str.startswith("Main reasons: ").all()
    assert sorted(path.name for path in output.parent.iterdir()) == ["reasons.csv"]

    missing = tmp_path / "data" / "no_note.csv"
    make_frame(5).drop(columns="note").to_csv(missing, index=False)
    failed = tmp_path / "out" / "failed.csv"
    with pytest.raises(AdaptersUserError, match="'note'"):
        adapters.explain(text_artifact, missing, failed)
    assert sorted(path.name for path in output.parent.iterdir()) == ["reasons.csv"]
    with pytest.raises(AdaptersUserError, match="not an adapter directory"):
        adapters.explain(tmp_path / "nowhere", source)
    with pytest.raises(AdaptersUserError, match="positive"):
        adapters.explain(text_artifact, source, top=0)


def test_cli_explain(table_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "data" / "rows.csv"
    source.parent.mkdir()
    synthetic_table(20, 2).drop(columns="outcome").to_csv(source, index=False)
    output = tmp_path / "reasons.csv"
    arguments = ["explain", str(table_artifact), "--input", str(source), "--output", str(output)]
    assert main([*arguments, "--top", "2", "--batch-size", "16"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("explained 20 rows into") and printed.endswith("rows/s)")
    assert len(printed.splitlines()) == 1
    assert "reason_2" in pd.read_csv(output).columns

    broken = tmp_path / "data" / "broken.csv"
    synthetic_table(5, 3).drop(columns="housing").to_csv(broken, index=False)
    assert (
        main(["explain", str(table_artifact), "--input", str(broken), "--output", str(tmp_path / "x.csv")])
        == 2
    )
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "'housing'" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()

"""Built-in credit data: decoded exactly as the shipped code tables say, and renderable as text.

The expected values below were read by hand from the raw package files (first data lines of
SouthGermanCredit.asc and german.data) and their code tables, so a decoding slip fails here.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources

import pandas as pd
import pytest

from adapters.data.builtin import (
    ATTRIBUTE_COLUMNS,
    BUILTIN_DATASETS,
    COLUMNS,
    DEFAULT_BUILTIN,
    BuiltinDataset,
    load_builtin,
)
from adapters.errors import AdaptersUserError

NAMES = ("south_german_credit", "statlog_german_credit")  # the German credit releases (loan_notes: tasks)
ALWAYS_NUMERIC = ("duration", "amount", "age")
STATLOG_NUMERIC = ("installment_rate", "present_residence", "number_credits", "people_liable")


@pytest.fixture(scope="module", params=NAMES)
def loaded(request: pytest.FixtureRequest) -> tuple[BuiltinDataset, pd.DataFrame]:
    """Each data set once per module: loading is cheap but not free."""
    return BUILTIN_DATASETS[request.param], load_builtin(request.param)


def _numeric_columns(name: str) -> tuple[str, ...]:
    return ALWAYS_NUMERIC + (STATLOG_NUMERIC if name == "statlog_german_credit" else ())


def test_registry_metadata() -> None:
    """Recipes rely on label id 1 being "bad" and on the default name existing."""
    assert DEFAULT_BUILTIN == "south_german_credit" == NAMES[0]
    assert set(BUILTIN_DATASETS) == {*NAMES, "loan_notes"}
    for name in NAMES:
        info = BUILTIN_DATASETS[name]
        assert info.name == name
        assert info.label_column == "credit_risk"
        assert info.label_names == ("good", "bad")
        assert info.label_names.index(info.positive_label) == 1
        assert info.license == "CC BY 4.0" and info.url.startswith("https://archive.ics.uci.edu/")
        assert set(info.protected_attributes) <= set(ATTRIBUTE_COLUMNS)
        placeholders = re.findall(r"\{(\w+)(?::[^}]*)?\}", info.template)  # {amount:,} has a format spec
        assert tuple(placeholders) == ATTRIBUTE_COLUMNS  # every attribute once, in column order
        assert info.template.count(". ") == len(ATTRIBUTE_COLUMNS) - 1  # one sentence each


def test_shape_columns_and_labels(loaded: tuple[BuiltinDataset, pd.DataFrame]) -> None:
    info, frame = loaded
    assert frame.shape == (1000, 22)
    assert tuple(frame.columns) == COLUMNS
    assert frame["row_id"].tolist() == list(range(1000))
    assert frame["credit_risk"].value_counts().to_dict() == {"good": 700, "bad": 300}
    assert not frame.isna().any().any()


def test_numeric_columns_stay_integers(loaded: tuple[BuiltinDataset, pd.DataFrame]) -> None:
    info, frame = loaded
    for column in _numeric_columns(info.name):
        assert pd.api.types.is_integer_dtype(frame[column]), column
    assert frame["duration"].between(4, 72).all() and frame["age"].between(19, 75).all()
    assert frame["amount"].between(250, 18424).all()


def test_no_code_left_undecoded(loaded: tuple[BuiltinDataset, pd.DataFrame]) -> None:
    """Categorical cells must be words: no integers, no digit-only strings, no Statlog A-codes."""
    info, frame = loaded
    categorical = [c for c in (*ATTRIBUTE_COLUMNS, "credit_risk") if c not in _numeric_columns(info.name)]
    for column in categorical:
        values = set(frame[column])
        assert all(isinstance(v, str) for v in values), column
        assert not any(re.fullmatch(r"A?\d+", v) for v in values), (column, values)
        assert all(re.search(r"[a-z]", v) for v in values), (column, values)


def test_template_renders_every_row(loaded: tuple[BuiltinDataset, pd.DataFrame]) -> None:
    info, frame = loaded
    texts = [info.template.format_map(row) for row in frame.to_dict("records")]
    assert len(texts) == 1000
    assert not any("{" in t or re.search(r"\b(nan|None)\b", t) or not t.endswith(".") for t in texts)


def test_south_german_first_row() -> None:
    """Raw line 1: ``1 18 4 2 1049 1 2 4 2 1 4 2 21 3 1 1 3 2 1 2 1``, decoded via codetable.txt."""
    row = load_builtin("south_german_credit").iloc[0].to_dict()
    assert row == {
        "row_id": 0,
        "status": "no checking account",
        "duration": 18,
        "credit_history": "all credits at this bank paid back duly",
        "purpose": "a used car",
        "amount": 1049,
        "savings": "unknown savings or no savings account",
        "employment_duration": "has been in the current job for less than 1 year",
        "installment_rate": "below 20%",
        "personal_status_sex": "a non-single female or a single male",
        "other_debtors": "no other debtor or guarantor",
        "present_residence": "at least 7 years",
        "property": "a car or other property",
        "age": 21,
        "other_installment_plans": "no other installment plans",
        "housing": "rent-free",
        "number_credits": "one",
        "job": "a skilled employee or official",
        "people_liable": "zero to two",
        "telephone": "no telephone",
        "foreign_worker": "not a foreign worker",
        "credit_risk": "good",
    }
    text = BUILTIN_DATASETS["south_german_credit"].template.format_map(row)
    assert text.startswith("The applicant has no checking account. The credit duration is 18 months.")
    assert "The installments are below 20% of disposable income." in text


def test_statlog_first_row() -> None:
    """Raw line 1: ``A11 6 A34 A43 1169 A65 A75 4 A93 A101 4 A121 67 A143 A152 2 A173 1 A192 A201 1``."""
    row = load_builtin("statlog_german_credit").iloc[0].to_dict()
    assert row == {
        "row_id": 0,
        "status": "a checking account balance below 0 DM",
        "duration": 6,
        "credit_history": "a critical account or other credits existing (not at this bank)",
        "purpose": "a radio or television",
        "amount": 1169,
        "savings": "unknown savings or no savings account",
        "employment_duration": "has been in the current job for at least 7 years",
        "installment_rate": 4,
        "personal_status_sex": "a single male",
        "other_debtors": "no other debtor or guarantor",
        "present_residence": 4,
        "property": "real estate",
        "age": 67,
        "other_installment_plans": "no other installment plans",
        "housing": "owned",
        "number_credits": 2,
        "job": "a skilled employee or official",
        "people_liable": 1,
        "telephone": "a telephone registered in their name",
        "foreign_worker": "a foreign worker",
        "credit_risk": "good",
    }
    second = load_builtin("statlog_german_credit").iloc[1]
    assert (second["duration"], second["amount"], second["credit_risk"]) == (48, 5951, "bad")


def test_known_counts_from_source_notes() -> None:
    """Facts from SOURCE.md: the corrected file reverses Statlog's foreign-worker meaning (963 rows)."""
    south = load_builtin("south_german_credit")
    statlog = load_builtin("statlog_german_credit")
    assert (south["foreign_worker"] == "not a foreign worker").sum() == 963
    assert (statlog["foreign_worker"] == "a foreign worker").sum() == 963
    assert south["personal_status_sex"].value_counts().to_dict() == {
        "a married or widowed male": 548,
        "a non-single female or a single male": 310,
        "a single female": 92,
        "a divorced or separated male": 50,
    }
    assert south["installment_rate"].value_counts()["below 20%"] == 476
    assert (statlog["personal_status_sex"] == "a single female").sum() == 0  # A95 never occurs


def test_every_code_table_entry_is_phrased() -> None:
    """Each meaning in codetable.txt and each A-code in german.doc has a phrase (none silently missing)."""
    from adapters.data import builtin, credit_wording

    table = builtin._parse_codetable(builtin._read_package_text("south_german_credit", "codetable.txt"))
    assert set(table) == {*ATTRIBUTE_COLUMNS, "credit_risk"}
    assert {c for c, codes in table.items() if not codes} == set(ALWAYS_NUMERIC)
    for column, codes in table.items():
        assert set(codes.values()) == set(credit_wording.SOUTH_GERMAN_PHRASES.get(column, {})), column
    doc = builtin._read_package_text("statlog_german_credit", "german.doc")
    assert set(re.findall(r"\b(A\d{2,3}) :", doc)) == set(credit_wording.STATLOG_PHRASES)


def test_package_files_match_recorded_checksums() -> None:
    """The shipped files must stay byte-identical to upstream (their SOURCE.md records the sha256)."""
    root = resources.files("adapters.data") / "_builtin_data"
    for dataset, filename in [
        ("south_german_credit", "SouthGermanCredit.asc"),
        ("south_german_credit", "codetable.txt"),
        ("statlog_german_credit", "german.data"),
        ("statlog_german_credit", "german.doc"),
    ]:
        folder = root / dataset
        digest = hashlib.sha256((folder / filename).read_bytes()).hexdigest()
        assert digest in (folder / "SOURCE.md").read_text(encoding="utf-8"), filename


def test_name_is_normalised_and_frames_are_fresh() -> None:
    first = load_builtin("South-German-Credit")
    first.loc[0, "status"] = "changed"
    assert load_builtin("south_german_credit").loc[0, "status"] == "no checking account"


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(AdaptersUserError, match="south_german_credit, statlog_german_credit") as err:
        load_builtin("german_credit")
    assert isinstance(err.value, ValueError)

"""Built-in data sets: the German credit applicants, decoded into words, ready to render as text.

Two releases of the same 1000 applicants (a southern German bank, 1973-1975) ship with the package:

* ``south_german_credit`` (the default): Grömping's 2019 correction, UCI #522. Its code table is the
  one to trust; texts and fairness figures should come from it.
* ``statlog_german_credit``: the classic Statlog file (UCI #144, OpenML ``credit-g``, TabLLM). Its code
  table ``german.doc`` gives wrong meanings for several attributes (checking-account status, credit
  history, purpose, savings, personal status/sex, property, housing, people liable, foreign worker).
  It is decoded *as documented* only so results can be compared with literature that used it.

A third, ``loan_notes``, is generated rather than read (:mod:`adapters.data.synthetic`): loan-officer
notes with risk flags (multi-label) and tagged personal data (token classification).

Both German credit frames have the same English column names (the South German Credit header) plus
``row_id``, so one template fits both; only the four attributes that Statlog documents as plain numbers
(installment_rate, present_residence, number_credits, people_liable) get Statlog-specific sentences.
The raw files are read from package data (``adapters/data/_builtin_data/<name>/``); see the
``SOURCE.md`` next to them for provenance, licence and checksums.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from adapters.data.credit_wording import SENTENCES, SOUTH_GERMAN_PHRASES, STATLOG_PHRASES, STATLOG_SENTENCES
from adapters.data.synthetic import FLAGS, loan_notes
from adapters.errors import AdaptersUserError

__all__ = [
    "ATTRIBUTE_COLUMNS",
    "BUILTIN_DATASETS",
    "COLUMNS",
    "DEFAULT_BUILTIN",
    "BuiltinDataset",
    "load_builtin",
]

ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "status",
    "duration",
    "credit_history",
    "purpose",
    "amount",
    "savings",
    "employment_duration",
    "installment_rate",
    "personal_status_sex",
    "other_debtors",
    "present_residence",
    "property",
    "age",
    "other_installment_plans",
    "housing",
    "number_credits",
    "job",
    "people_liable",
    "telephone",
    "foreign_worker",
)
"""The 20 applicant attributes, in file order (the South German Credit header)."""

COLUMNS: tuple[str, ...] = ("row_id", *ATTRIBUTE_COLUMNS, "credit_risk")
"""Every column of a frame returned by :func:`load_builtin`, in order."""

DEFAULT_BUILTIN = "south_german_credit"


@dataclass(frozen=True)
class BuiltinDataset:
    """What a recipe needs to know about a built-in data set, besides its rows.

    ``label_names[i]`` is the name of label id ``i``; ``("good", "bad")`` makes "bad" (the event a
    credit model must catch) id 1, the positive class. ``protected_attributes`` are the columns usually
    studied in fairness work. In the corrected data sex cannot be fully recovered from
    ``personal_status_sex`` (code 2 means "female non-single or male single"); age and foreign_worker can.
    """

    name: str
    description: str
    label_column: str
    label_names: tuple[str, ...]
    positive_label: str | None
    template: str
    citation: str
    license: str
    url: str
    source_note: str
    protected_attributes: tuple[str, ...]


_STATLOG_NUMERIC = (
    "duration",
    "amount",
    "installment_rate",
    "present_residence",
    "age",
    "number_credits",
    "people_liable",
)
_STATLOG_LABELS = {1: "good", 2: "bad"}

_PROTECTED = ("age", "personal_status_sex", "foreign_worker")

BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    "south_german_credit": BuiltinDataset(
        name="south_german_credit",
        description="1000 consumer credits of a southern German bank (1973-1975), 20 attributes, "
        "label good (700) / bad (300); the corrected release of the German credit data.",
        label_column="credit_risk",
        label_names=("good", "bad"),
        positive_label="bad",
        template=" ".join(SENTENCES[c] for c in ATTRIBUTE_COLUMNS),
        citation="Grömping, U. (2019). South German Credit Data: Correcting a Widely Used Data Set. "
        "Report 4/2019, Reports in Mathematics, Physics and Chemistry, Department II, "
        "Beuth University of Applied Sciences Berlin.",
        license="CC BY 4.0",
        url="https://archive.ics.uci.edu/dataset/522/south+german+credit",
        source_note="UCI #522 files SouthGermanCredit.asc and codetable.txt, unchanged; decoded with "
        "that code table.",
        protected_attributes=_PROTECTED,
    ),
    "statlog_german_credit": BuiltinDataset(
        name="statlog_german_credit",
        description="The same 1000 credits as Statlog German Credit (OpenML credit-g), decoded with "
        "german.doc, whose meanings are wrong for several attributes; for comparison with "
        "published results only.",
        label_column="credit_risk",
        label_names=("good", "bad"),
        positive_label="bad",
        template=" ".join(STATLOG_SENTENCES[c] for c in ATTRIBUTE_COLUMNS),
        citation="Hofmann, H. (1994). Statlog (German Credit Data). UCI Machine Learning Repository. "
        "https://doi.org/10.24432/C5NC77",
        license="CC BY 4.0",
        url="https://archive.ics.uci.edu/dataset/144/statlog+german+credit+data",
        source_note="UCI #144 file german.data, unchanged; decoded with german.doc (known coding errors, "
        "Grömping 2019).",
        protected_attributes=_PROTECTED,
    ),
    "loan_notes": BuiltinDataset(
        name="loan_notes",
        description="800 synthetic loan-officer notes (seed 0): risk flags arrears / collateral / "
        "guarantor / income_loss as a multi-label target, and BIO tags of made-up names, IBANs and "
        "phone numbers.",
        label_column="flags",
        label_names=FLAGS,
        positive_label=None,
        template="{note}",
        citation="Generated by peft-recipes (adapters/data/synthetic.py).",
        license="CC0-1.0",
        url="",
        source_note="generated from a seed; no real person's data",
        protected_attributes=(),
    ),
}


def _read_package_text(dataset: str, filename: str) -> str:
    """Read one shipped file; package data keeps the library working offline and in wheels."""
    path = resources.files("adapters.data") / "_builtin_data" / dataset / filename  # "/" works on 3.10
    return path.read_text(encoding="utf-8")


def _parse_codetable(text: str) -> dict[str, dict[int, str]]:
    """``codetable.txt`` -> {column: {code: meaning}}; numeric columns map to an empty dict.

    Meanings have their whitespace collapsed (the file pads them to a fixed width).
    """
    table: dict[str, dict[int, str]] = {}
    current: dict[int, str] | None = None
    for line in text.splitlines():
        header = re.match(r"^\$`\w+ = (\w+)`\s*$", line)
        if header:
            current = table.setdefault(header.group(1), {})
            continue
        code = re.match(r"^\s*(\d+) : (.+)$", line)
        if code and current is not None:
            current[int(code.group(1))] = " ".join(code.group(2).split())
    return table


def _decoded(column: pd.Series, mapping: dict) -> pd.Series:
    """Map codes to words, refusing to leave any code undecoded (a silent NaN would reach the text)."""
    out = column.map(mapping)
    if out.isna().any():
        missing = sorted(set(column[out.isna()]))
        raise RuntimeError(f"built-in data: no meaning for codes {missing} in column {column.name!r}")
    return out.astype(str)


def _load_south_german() -> pd.DataFrame:
    raw = pd.read_csv(
        io.StringIO(_read_package_text("south_german_credit", "SouthGermanCredit.asc")),
        sep=" ",
        dtype="int64",
    )
    codes = _parse_codetable(_read_package_text("south_german_credit", "codetable.txt"))
    frame = pd.DataFrame(index=raw.index)
    for name in (*ATTRIBUTE_COLUMNS, "credit_risk"):
        meanings = codes[name]
        if not meanings:  # duration, amount, age: plain numbers
            frame[name] = raw[name]
            continue
        phrases = SOUTH_GERMAN_PHRASES[name]
        frame[name] = _decoded(raw[name], {code: phrases[text] for code, text in meanings.items()})
    return frame


def _load_statlog() -> pd.DataFrame:
    raw = pd.read_csv(
        io.StringIO(_read_package_text("statlog_german_credit", "german.data")),
        sep=" ",
        header=None,
        names=[*ATTRIBUTE_COLUMNS, "credit_risk"],
        dtype=str,
    )
    frame = pd.DataFrame(index=raw.index)
    for name in ATTRIBUTE_COLUMNS:
        if name in _STATLOG_NUMERIC:
            frame[name] = raw[name].astype("int64")
        else:
            frame[name] = _decoded(raw[name], STATLOG_PHRASES)
    frame["credit_risk"] = _decoded(raw["credit_risk"].astype("int64"), _STATLOG_LABELS)
    return frame


_LOADERS = {"south_german_credit": _load_south_german, "statlog_german_credit": _load_statlog}
_GENERATED = {"loan_notes": loan_notes}


def load_builtin(name: str) -> pd.DataFrame:
    """Load a built-in data set as a decoded frame: ``row_id``, the 20 attributes, ``credit_risk``.

    Categorical codes become English phrases that complete the dataset's ``template`` sentences;
    duration (months), amount (DM) and age (years) stay integers, as do Statlog's installment_rate,
    present_residence, number_credits and people_liable (bare numbers there, coded bands in the
    corrected data). ``credit_risk`` is "good" or "bad"; ``row_id`` is the 0-based line in the file.
    A fresh frame each call, so callers may modify it.
    """
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else name
    if key in _GENERATED:
        return _GENERATED[key]()
    if key not in _LOADERS:
        valid = ", ".join(BUILTIN_DATASETS)
        raise AdaptersUserError(f"unknown built-in dataset {name!r}; valid names: {valid}")
    frame = _LOADERS[key]()
    frame.insert(0, "row_id", range(len(frame)))
    frame["row_id"] = frame["row_id"].astype("int64")
    return frame[list(COLUMNS)]

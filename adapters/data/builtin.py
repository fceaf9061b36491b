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


# One short sentence per attribute (TabLLM style); values are phrased to complete the sentence.
_SENTENCES: dict[str, str] = {
    "status": "The applicant has {status}.",
    "duration": "The credit duration is {duration} months.",
    "credit_history": "The credit history shows {credit_history}.",
    "purpose": "The credit is for {purpose}.",
    "amount": "The credit amount is {amount:,} DM.",  # "2,799": the thousands are one token
    "savings": "The applicant has {savings}.",
    "employment_duration": "The applicant {employment_duration}.",
    "installment_rate": "The installments are {installment_rate} of disposable income.",
    "personal_status_sex": "The applicant is {personal_status_sex}.",
    "other_debtors": "There is {other_debtors}.",
    "present_residence": "The applicant has lived at the present residence for {present_residence}.",
    "property": "The most valuable property is {property}.",
    "age": "The applicant is {age} years old.",
    "other_installment_plans": "The applicant has {other_installment_plans}.",
    "housing": "The housing is {housing}.",
    "number_credits": "The number of credits at this bank, including this one, is {number_credits}.",
    "job": "The applicant is {job}.",
    "people_liable": "The applicant has {people_liable} dependents.",
    "telephone": "The applicant has {telephone}.",
    "foreign_worker": "The applicant is {foreign_worker}.",
}
# Statlog documents these four as bare numbers; say exactly what german.doc says, add no unit.
_STATLOG_SENTENCES: dict[str, str] = {
    **_SENTENCES,
    "installment_rate": "The installment rate in percentage of disposable income is {installment_rate}.",
    "present_residence": "The present residence since value is {present_residence}.",
    "number_credits": "The number of existing credits at this bank is {number_credits}.",
    "people_liable": "The number of people being liable to provide maintenance for is {people_liable}.",
}

_CURRENT_JOB = "has been in the current job for "

# South German Credit: codetable.txt meaning (whitespace collapsed) -> phrase. Keyed by the meaning,
# not the code, so the code -> meaning step always comes from the shipped code table itself.
_SOUTH_GERMAN_PHRASES: dict[str, dict[str, str]] = {
    "status": {
        "no checking account": "no checking account",
        "... < 0 DM": "a checking account balance below 0 DM",
        "0<= ... < 200 DM": "a checking account balance of 0 to under 200 DM",
        "... >= 200 DM / salary for at least 1 year": (
            "a checking account balance of at least 200 DM or salary for at least 1 year"
        ),
    },
    "credit_history": {
        "delay in paying off in the past": "a delay in paying off in the past",
        "critical account/other credits elsewhere": "a critical account or other credits elsewhere",
        "no credits taken/all credits paid back duly": "no credits taken or all credits paid back duly",
        "existing credits paid back duly till now": "existing credits paid back duly till now",
        "all credits at this bank paid back duly": "all credits at this bank paid back duly",
    },
    "purpose": {
        "others": "other purposes",
        "car (new)": "a new car",
        "car (used)": "a used car",
        "furniture/equipment": "furniture or equipment",
        "radio/television": "a radio or television",
        "domestic appliances": "domestic appliances",
        "repairs": "repairs",
        "education": "education",
        "vacation": "a vacation",
        "retraining": "retraining",
        "business": "business",
    },
    "savings": {
        "unknown/no savings account": "unknown savings or no savings account",
        "... < 100 DM": "savings below 100 DM",
        "100 <= ... < 500 DM": "savings of 100 to under 500 DM",
        "500 <= ... < 1000 DM": "savings of 500 to under 1000 DM",
        "... >= 1000 DM": "savings of at least 1000 DM",
    },
    "employment_duration": {
        "unemployed": "is unemployed",
        "< 1 yr": _CURRENT_JOB + "less than 1 year",
        "1 <= ... < 4 yrs": _CURRENT_JOB + "1 to under 4 years",
        "4 <= ... < 7 yrs": _CURRENT_JOB + "4 to under 7 years",
        ">= 7 yrs": _CURRENT_JOB + "at least 7 years",
    },
    "installment_rate": {  # credit installments as a percentage of disposable income (UCI #522)
        ">= 35": "at least 35%",
        "25 <= ... < 35": "25% to under 35%",
        "20 <= ... < 25": "20% to under 25%",
        "< 20": "below 20%",
    },
    "personal_status_sex": {
        "male : divorced/separated": "a divorced or separated male",
        "female : non-single or male : single": "a non-single female or a single male",
        "male : married/widowed": "a married or widowed male",
        "female : single": "a single female",
    },
    "other_debtors": {
        "none": "no other debtor or guarantor",
        "co-applicant": "a co-applicant",
        "guarantor": "a guarantor",
    },
    "present_residence": {
        "< 1 yr": "less than 1 year",
        "1 <= ... < 4 yrs": "1 to under 4 years",
        "4 <= ... < 7 yrs": "4 to under 7 years",
        ">= 7 yrs": "at least 7 years",
    },
    "property": {
        "unknown / no property": "unknown or none",
        "car or other": "a car or other property",
        "building soc. savings agr./life insurance": "a building society savings agreement or life insurance",
        "real estate": "real estate",
    },
    "other_installment_plans": {
        "bank": "other installment plans at a bank",
        "stores": "other installment plans at stores",
        "none": "no other installment plans",
    },
    "housing": {"for free": "rent-free", "rent": "rented", "own": "owned"},
    "number_credits": {"1": "one", "2-3": "two or three", "4-5": "four or five", ">= 6": "six or more"},
    "job": {
        "unemployed/unskilled - non-resident": "unemployed or unskilled and non-resident",
        "unskilled - resident": "unskilled and resident",
        "skilled employee/official": "a skilled employee or official",
        "manager/self-empl./highly qualif. employee": (
            "a manager, self-employed or a highly qualified employee"
        ),
    },
    "people_liable": {"3 or more": "three or more", "0 to 2": "zero to two"},
    "telephone": {"no": "no telephone", "yes (under customer name)": "a telephone registered in their name"},
    "foreign_worker": {"yes": "a foreign worker", "no": "not a foreign worker"},
    "credit_risk": {"bad": "bad", "good": "good"},
}

# Statlog german.doc meanings (known to be wrong for several attributes, see module docstring),
# keyed by A-code; the codes are unique across attributes.
_STATLOG_PHRASES: dict[str, str] = {
    "A11": "a checking account balance below 0 DM",
    "A12": "a checking account balance of 0 to under 200 DM",
    "A13": "a checking account balance of at least 200 DM or salary assignments for at least 1 year",
    "A14": "no checking account",
    "A30": "no credits taken or all credits paid back duly",
    "A31": "all credits at this bank paid back duly",
    "A32": "existing credits paid back duly till now",
    "A33": "a delay in paying off in the past",
    "A34": "a critical account or other credits existing (not at this bank)",
    "A40": "a new car",
    "A41": "a used car",
    "A42": "furniture or equipment",
    "A43": "a radio or television",
    "A44": "domestic appliances",
    "A45": "repairs",
    "A46": "education",
    "A47": "a vacation",
    "A48": "retraining",
    "A49": "business",
    "A410": "other purposes",
    "A61": "savings below 100 DM",
    "A62": "savings of 100 to under 500 DM",
    "A63": "savings of 500 to under 1000 DM",
    "A64": "savings of at least 1000 DM",
    "A65": "unknown savings or no savings account",
    "A71": "is unemployed",
    "A72": _CURRENT_JOB + "less than 1 year",
    "A73": _CURRENT_JOB + "1 to under 4 years",
    "A74": _CURRENT_JOB + "4 to under 7 years",
    "A75": _CURRENT_JOB + "at least 7 years",
    "A91": "a divorced or separated male",
    "A92": "a divorced, separated or married female",
    "A93": "a single male",
    "A94": "a married or widowed male",
    "A95": "a single female",
    "A101": "no other debtor or guarantor",
    "A102": "a co-applicant",
    "A103": "a guarantor",
    "A121": "real estate",
    "A122": "a building society savings agreement or life insurance",
    "A123": "a car or other property",
    "A124": "unknown or none",
    "A141": "other installment plans at a bank",
    "A142": "other installment plans at stores",
    "A143": "no other installment plans",
    "A151": "rented",
    "A152": "owned",
    "A153": "rent-free",
    "A171": "unemployed or unskilled and non-resident",
    "A172": "unskilled and resident",
    "A173": "a skilled employee or official",
    "A174": "in management, self-employed, a highly qualified employee or an officer",
    "A191": "no telephone",
    "A192": "a telephone registered in their name",
    "A201": "a foreign worker",
    "A202": "not a foreign worker",
}
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
        template=" ".join(_SENTENCES[c] for c in ATTRIBUTE_COLUMNS),
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
        template=" ".join(_STATLOG_SENTENCES[c] for c in ATTRIBUTE_COLUMNS),
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
        phrases = _SOUTH_GERMAN_PHRASES[name]
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
            frame[name] = _decoded(raw[name], _STATLOG_PHRASES)
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

"""Synthetic loan-officer notes: labelled free text for the tasks no public credit data set covers.

Each note is a few sentences an officer might write about an application. Some sentences carry a risk
flag: arrears, income loss, collateral or a guarantor. So the flags of a note are a multi-label target.
The notes also contain made-up personal data: person names, German IBANs and phone numbers. Their
word-level BIO tags (``B-NAME``, ``I-NAME``, ``B-IBAN``, ``B-PHONE``) are a token-classification target
for tagging personal data before notes are shared.

Everything is generated from a seed, so the same call gives the same rows on every machine, and no
real person's data is involved: names are drawn from common first and last names, and IBANs and phone
numbers are random digits.
"""

from __future__ import annotations

import random

import pandas as pd

__all__ = ["FLAGS", "PII_TAGS", "loan_notes"]

FLAGS = ("arrears", "collateral", "guarantor", "income_loss")
PII_TAGS = ("O", "B-NAME", "I-NAME", "B-IBAN", "B-PHONE")

_FIRST = ("Anna", "Lukas", "Maria", "Jonas", "Sofia", "Felix", "Emma", "Paul", "Lea", "Ben", "Mia", "Elias")
_LAST = ("Schmidt", "Müller", "Weber", "Fischer", "Wagner", "Becker", "Hoffmann", "Koch", "Richter", "Wolf")

# (sentence, flag or None); {name} {iban} {phone} are filled with generated personal data.
_SENTENCES = (
    ("The applicant {name} is {months} months behind on the current car loan.", "arrears"),
    ("Two installments were paid late last year and a reminder was sent.", "arrears"),
    ("The applicant lost the job in {month} and now receives unemployment benefit.", "income_loss"),
    ("Income fell by a third after the employer cut working hours.", "income_loss"),
    ("The loan is secured by the flat the applicant owns.", "collateral"),
    ("A savings account worth {amount} euros is pledged as security.", "collateral"),
    ("Her brother {name} signed as guarantor for the full amount.", "guarantor"),
    ("A guarantor, {name}, can be reached at {phone}.", "guarantor"),
    ("Salary is paid into account {iban}.", None),
    ("The applicant asked to be called back on {phone}.", None),
    ("Documents were received from {name} on time.", None),
    ("The applicant has worked as a nurse for nine years.", None),
    ("The requested amount is {amount} euros over {months} months.", None),
    ("No other loans are open at this bank.", None),
)
_MONTHS = ("January", "March", "May", "August", "October", "December")


def _fill(sentence: str, rng: random.Random) -> tuple[list[str], list[str]]:
    """Words of one sentence and their BIO tags, with personal data generated in place."""
    words: list[str] = []
    tags: list[str] = []
    for token in sentence.split():
        core, tail = token, ""
        while core and core[-1] in ".,":
            core, tail = core[:-1], core[-1] + tail
        if core == "{name}":
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            words += [first, last + tail]
            tags += ["B-NAME", "I-NAME"]
        elif core == "{iban}":
            words.append("DE" + "".join(rng.choice("0123456789") for _ in range(20)) + tail)
            tags.append("B-IBAN")
        elif core == "{phone}":
            words.append("+49-" + "".join(rng.choice("0123456789") for _ in range(10)) + tail)
            tags.append("B-PHONE")
        else:
            word = core.format(
                months=rng.choice((2, 3, 4, 6, 12, 24, 36)),
                month=rng.choice(_MONTHS),
                amount=rng.choice((1500, 4000, 8000, 12000, 20000)),
            )
            words.append(word + tail)
            tags.append("O")
    return words, tags


def loan_notes(rows: int = 800, seed: int = 0) -> pd.DataFrame:
    """``row_id``, ``note`` (text), ``flags`` (risk flags joined by ``|``, "" for none), ``tokens`` and
    ``pii_tags`` (space-separated words of the note and their BIO tags, one per word)."""
    rng = random.Random(seed)
    records = []
    for row in range(rows):
        chosen = rng.sample(_SENTENCES, rng.randint(2, 4))
        words: list[str] = []
        tags: list[str] = []
        for sentence, _ in chosen:
            sentence_words, sentence_tags = _fill(sentence, rng)
            words += sentence_words
            tags += sentence_tags
        flags = sorted({flag for _, flag in chosen if flag})
        records.append(
            {
                "row_id": row,
                "note": " ".join(words),
                "flags": "|".join(flags),
                "flag_summary": f"Risk flags: {', '.join(flags) if flags else 'none'}.",
                "tokens": " ".join(words),
                "pii_tags": " ".join(tags),
            }
        )
    return pd.DataFrame(records)

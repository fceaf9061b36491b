"""Reason codes by occlusion: which parts of an applicant's text raised the model's probability of default.

A lender must tell a declined applicant the main reasons. The model reads a text, so a reason is a piece
of that text: take the piece out, score the row again, and the drop in P(positive label) is how much the
piece raised it. What a piece is depends on how the recipe renders a row:

* ``data.template`` (tables, the built-in German credit data): one piece per template sentence, named
  by the column(s) it reads (``status``; a sentence reading two columns is ``a+b``). Sentences without
  fields (a fixed preamble) are never taken out.
* several ``data.text_columns``: one piece per "column: value." sentence, named by the column.
* one text column (free text): one piece per word (the first ``max_words`` words; later ones are not
  scored), named by the word without surrounding punctuation; a word that occurs twice counts once,
  with its larger effect.

Every row is rendered once; its variants (all pieces but one) are joined from the rendered pieces, and
the original and all variants go through the model together in length-sorted batches, so a row with k
pieces costs k + 1 scored texts but no per-variant overhead. Probabilities always come from
``Classifier.scores`` (so a calibrated adapter's reasons are in calibrated probabilities).

Only pieces whose removal *lowered* P(positive) by more than float noise (:data:`NOISE`) are reasons, so
a row may have fewer than ``top`` (a clearly good applicant may have none). Where P cannot show the
model's change (saturated at 0 or 1 in float, or on a flat step of an isotonic calibration) a piece also
counts if removing it lowered the raw log-odds, with a delta of 0; the log-odds also order such ties.

The plain-language line lists each reason as the row's rendered piece: a template sentence without its
final period and with a lower-case first letter ("Main reasons: the applicant has a checking account
balance below 0 DM; the credit duration is 48 months."), "column: value" for text columns, the word
itself for free text; a row without reasons reads "Main reasons: none.".

Only binary classifiers are explained (P of the positive label, or of label id 1 when none is set);
multi-class, multi-label, regression and generative adapters are refused: "the reasons for class 3 out
of 7" is not what a reason code means, and picking a class silently would mislead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adapters.classifier import Classifier
from adapters.data.labels import cell
from adapters.errors import AdaptersUserError
from adapters.heads import with_question

__all__ = [
    "LOG_ODDS_NOISE",
    "NOISE",
    "Pieces",
    "check_settings",
    "explain_frame",
    "pieces_of",
    "positive_index",
]

NOISE = 1e-6
"""Smaller changes of P(positive) are float noise of batching (padding differs), never a reason."""
LOG_ODDS_NOISE = 1e-4
"""The same for the raw log-odds (float32 logits)."""

_WORD = re.compile(r"\S+")
_EDGES = re.compile(r"^\W+|\W+$")  # punctuation around a word: "(default)," -> "default"
_ROWS_PER_PASS = 2048  # scored texts (originals + variants) per model pass: bounds memory on large files


@dataclass
class Pieces:
    """One row's text as removable pieces: ``text`` is the whole; ``variants[i]`` lacks piece ``i``."""

    text: str
    names: list[str]
    labels: list[str]
    variants: list[str]


def positive_index(classifier: Classifier) -> int:
    """Column of P(positive) in the classifier's probabilities; refuse what reason codes cannot explain."""
    binary = (
        classifier.task == "classification"
        and classifier.problem_type not in ("regression", "multi_label_classification")
        and len(classifier.label_names) == 2
    )
    if not binary:
        kind = classifier.problem_type or classifier.task
        if classifier.task == "classification" and kind == "single_label_classification":
            kind = f"{len(classifier.label_names)} labels"
        raise AdaptersUserError(
            f"reason codes explain P(positive label) of a binary classifier; this adapter is not ({kind})",
            where=str(classifier.directory),
        )
    if classifier.positive_label in classifier.label_names:
        return classifier.label_names.index(classifier.positive_label)
    return 1


def _sentence_label(sentence: str) -> str:
    """A rendered template sentence as a clause of the reasons line: no final period, lower-case start."""
    clause = sentence.strip().rstrip(".!?").strip()
    if len(clause) > 1 and clause[0].isupper() and not clause[1].isupper():
        clause = clause[0].lower() + clause[1:]
    return clause


def _without(parts: Sequence[str], index: int, trailing: str) -> str:
    """The joined parts without ``parts[index]``, ending in the whole text's trailing whitespace."""
    return ("".join(parts[:index]) + "".join(parts[index + 1 :])).rstrip() + trailing


def _template_pieces(frame: pd.DataFrame, template: str) -> list[Pieces]:
    """Each template sentence rendered once per row; a variant is the row without one of them."""
    from adapters.data.render import format_row
    from adapters.data.template import split_template

    sentences = split_template(template)
    scored = [index for index, sentence in enumerate(sentences) if sentence.columns]  # fixed text stays
    rows = []
    for position, row in enumerate(frame.to_dict("records")):
        texts = [sentence.text for sentence in sentences]
        parts = format_row(texts, row, frame.columns, f"input, row {position + 1}")
        text = "".join(parts)
        trailing = text[len(text.rstrip()) :]
        rows.append(
            Pieces(
                text=text,
                names=["+".join(sentences[index].columns) for index in scored],
                labels=[_sentence_label(parts[index]) for index in scored],
                variants=[_without(parts, index, trailing) for index in scored],
            )
        )
    return rows


def _column_pieces(frame: pd.DataFrame, columns: list[str]) -> list[Pieces]:
    """Several text columns render as "column: value." sentences; a variant lacks one column's."""
    rows = []
    for values in frame[columns].itertuples(index=False):
        parts = [f"{name}: {cell(value)}." for name, value in zip(columns, values, strict=True)]
        rows.append(
            Pieces(
                text=" ".join(parts),
                names=list(columns),
                labels=[part[:-1] for part in parts],
                variants=[" ".join(parts[:i] + parts[i + 1 :]) for i in range(len(parts))],
            )
        )
    return rows


def _word_pieces(texts: Sequence[str], max_words: int) -> list[Pieces]:
    """Free text: a variant lacks one word (the first ``max_words`` words that are not bare punctuation)."""
    rows = []
    for text in texts:
        names, variants = [], []
        for match in _WORD.finditer(text):
            if len(names) >= max_words:
                break
            word = _EDGES.sub("", match.group())
            if word:
                names.append(word)
                variants.append((text[: match.start()] + text[match.end() :]).strip())
        rows.append(Pieces(text=text, names=names, labels=list(names), variants=variants))
    return rows


def pieces_of(classifier: Classifier, frame: pd.DataFrame, max_words: int = 64) -> list[Pieces]:
    """The rows of ``frame`` as removable pieces, following how the recipe renders a row."""
    data = classifier.recipe.data
    if data.template:
        return _template_pieces(frame, data.template)
    columns = data.text_columns or []
    if len(columns) > 1:
        missing = [name for name in columns if name not in frame.columns]
        if missing:
            classifier.texts(frame)  # raises the same one-line error as predict does
        return _column_pieces(frame, columns)
    return _word_pieces(classifier.texts(frame), max_words)


def _scores(
    classifier: Classifier, texts: list[str], batch_size: int, positive: int
) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) probabilities of rendered texts, through the classifier's own scoring (and calibration),
    and the raw log-odds of the positive label (for changes that saturated probabilities hide)."""
    logits = classifier.logits(with_question(texts, classifier.verbalizer), batch_size)
    return classifier.scores(logits), logits[:, positive] - logits[:, 1 - positive]


def _ranked(
    names: list[str], labels: list[str], deltas: np.ndarray, drops: np.ndarray, top: int
) -> list[tuple[str, str, float]]:
    """The ``top`` pieces that raised P(positive) most, largest first; a repeated name counts once.

    ``deltas`` are drops of P(positive), ``drops`` of the raw log-odds, when a piece is removed. P can
    hide a change the model made: it saturates in float (a sharp calibration turns a log-odds of 40 and
    of 45 into 1.0) and an isotonic calibration maps whole ranges to one step. So a piece also counts
    when P did not fall but the log-odds did, and the log-odds order pieces whose P ties. Calibrations
    are monotone, so this is the order of P wherever P can show it.
    """
    raised = (deltas > NOISE) | ((deltas >= -NOISE) & (drops > LOG_ODDS_NOISE))
    chosen: list[tuple[str, str, float]] = []
    seen: set[str] = set()
    for index in np.lexsort((-drops, -deltas)):
        if len(chosen) == top:
            break
        if raised[index] and names[index] not in seen:
            seen.add(names[index])
            chosen.append((names[index], labels[index], max(float(deltas[index]), 0.0)))
    return chosen


def _row_ids(classifier: Classifier, frame: pd.DataFrame) -> list[str]:
    """The recipe's id column when the input has it, else a ``row_id`` column, else the row position."""
    column = classifier.recipe.data.id_column
    if column and column in frame.columns:
        return frame[column].astype(str).tolist()
    if "row_id" in frame.columns:
        return frame["row_id"].astype(str).tolist()
    return [str(position) for position in range(len(frame))]


def check_settings(top: int, batch_size: int) -> None:
    """Refuse a non-positive ``top`` or ``batch_size`` before the model is loaded (that takes seconds)."""
    if top < 1:
        raise AdaptersUserError("must be a positive number of reasons", where="--top")
    if batch_size < 1:
        raise AdaptersUserError("must be a positive number of texts", where="--batch-size")


def explain_frame(
    classifier: Classifier, frame: pd.DataFrame, top: int = 4, batch_size: int = 64, max_words: int = 64
) -> tuple[pd.DataFrame, int]:
    """Reason codes for every row of ``frame``; also returns how many texts were scored (for speed).

    Columns: ``row_id``, ``score`` (P(positive)), ``decision``, ``reason_1..top`` and ``delta_1..top``
    (empty when a row has fewer reasons), and ``reasons``, the plain-language line.
    """
    check_settings(top, batch_size)
    positive = positive_index(classifier)
    rows = pieces_of(classifier, frame, max_words)
    probabilities = np.zeros((len(rows), len(classifier.label_names)))
    ranked: list[list[tuple[str, str, float]]] = []
    scored, start = 0, 0
    while start < len(rows):  # rows in passes of about _ROWS_PER_PASS texts, each row whole in one pass
        stop, texts = start, []
        while stop < len(rows) and (not texts or len(texts) + len(rows[stop].variants) < _ROWS_PER_PASS):
            texts += [rows[stop].text, *rows[stop].variants]
            stop += 1
        scores, log_odds = _scores(classifier, texts, batch_size, positive)
        offset = 0
        for index in range(start, stop):
            row = rows[index]
            variants = slice(offset + 1, offset + 1 + len(row.variants))
            probabilities[index] = scores[offset]
            deltas = scores[offset, positive] - scores[variants, positive]
            ranked.append(_ranked(row.names, row.labels, deltas, log_odds[offset] - log_odds[variants], top))
            offset += 1 + len(row.variants)
        scored += len(texts)
        start = stop
    result = pd.DataFrame(
        {
            "row_id": _row_ids(classifier, frame),
            "score": probabilities[:, positive],
            "decision": classifier.decide(probabilities) if len(rows) else [],
        }
    )
    for rank in range(top):
        result[f"reason_{rank + 1}"] = [found[rank][0] if rank < len(found) else None for found in ranked]
    for rank in range(top):
        result[f"delta_{rank + 1}"] = [found[rank][2] if rank < len(found) else np.nan for found in ranked]
    result["reasons"] = [
        "Main reasons: " + "; ".join(label for _, label, _ in found) + "." if found else "Main reasons: none."
        for found in ranked
    ]
    return result, scored

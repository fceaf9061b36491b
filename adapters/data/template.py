"""A row template as a list of sentences, each knowing the columns it renders.

Two features need to take one attribute out of a rendered row: ``data.exclude_from_text`` (protected
attributes never reach the model) and occlusion reason codes (re-score the row without an attribute's
sentence). Both work on the template, so they hold for any ``str.format`` template, not only the built-in
one: a sentence ends at ``.``, ``!`` or ``?`` followed by whitespace (or the end), or at a newline, outside
``{...}`` fields; its columns are the fields inside it.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Sentence", "split_template", "template_columns", "drop_columns"]


@dataclass(frozen=True)
class Sentence:
    """One sentence of a template (with its trailing whitespace) and the columns its fields read."""

    text: str
    columns: tuple[str, ...]


def _field_columns(text: str) -> tuple[str, ...]:
    """Column names of the fields in ``text`` (``{amount:,}`` → amount, ``{row[x]}`` → row)."""
    names = []
    for _, field, _, _ in string.Formatter().parse(text):
        if field:
            name = field.split(".", 1)[0].split("[", 1)[0]
            if name not in names:
                names.append(name)
    return tuple(names)


def split_template(template: str) -> list[Sentence]:
    """The template's sentences in order; joined back they give the template exactly."""
    pieces, start, depth, index = [], 0, 0, 0
    while index < len(template):
        char = template[index]
        if char in "{}" and template[index : index + 2] in ("{{", "}}") and depth == 0:
            index += 2  # an escaped brace is literal text
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(depth - 1, 0)
        elif depth == 0 and (
            char == "\n" or (char in ".!?" and (index + 1 == len(template) or template[index + 1].isspace()))
        ):
            end = index + 1
            while end < len(template) and template[end].isspace():
                end += 1
            pieces.append(template[start:end])
            start = index = end
            continue
        index += 1
    if start < len(template):
        pieces.append(template[start:])
    return [Sentence(piece, _field_columns(piece)) for piece in pieces]


def template_columns(template: str) -> list[str]:
    """Every column the template reads, in order of first use."""
    return list(_field_columns(template))


def drop_columns(template: str, columns: Iterable[str]) -> str:
    """The template without the sentences that read any of ``columns`` (a sentence naming two columns
    goes with either); trailing whitespace is trimmed so the result renders cleanly."""
    dropped = set(columns)
    kept = [sentence.text for sentence in split_template(template) if not dropped & set(sentence.columns)]
    return "".join(kept).rstrip()

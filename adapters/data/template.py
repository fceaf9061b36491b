"""A row template as a list of sentences, each knowing the columns it renders.

Two features need to take one attribute out of a rendered row: ``data.exclude_from_text`` (protected
attributes never reach the model) and occlusion reason codes (re-score the row without an attribute's
sentence). Both work on the template, so they hold for any ``str.format`` template, not only the built-in
one: a sentence ends at ``.``, ``!`` or ``?`` followed by whitespace (or the end), or at a newline, outside
``{...}`` fields; its columns are the fields inside it.

Besides ``str.format``'s own specs (``{amount:,}``), a field can say how a number reads, because a base model
trained on prose may read "a long credit" or "twenty-four" better than "24" (issue 10 tries both):
``{duration:words}`` spells the number out (num2words: ``pip install 'peft-recipes[words]'``), and
``{duration:bins(12,24)a year or less,one to two years,over two years}`` names the interval it falls in
(right-closed, as ``pandas.cut``: 12 is "a year or less", 13 "one to two years"). A missing value stays
"unknown". Templates without these specs render with ``str.format_map`` as before.
"""

from __future__ import annotations

import functools
import math
import numbers
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.data.labels import MISSING
from adapters.errors import AdaptersUserError

__all__ = [
    "Sentence",
    "TemplateValueError",
    "drop_columns",
    "fill_template",
    "split_template",
    "template_columns",
]

_WORDS_SPEC = "words"
_BINS_SPEC = "bins("


class TemplateValueError(ValueError):
    """A row's value that its field's spec cannot render (text where ``words`` or ``bins`` needs a number)."""


def _number(value: Any, spec: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise TemplateValueError(f"the field with spec {spec!r} needs a number, got {value!r}")
    return value


def _in_words(number: float) -> str:
    try:
        from num2words import num2words
    except ImportError:
        raise AdaptersUserError(
            "the template's {...:words} spec needs num2words: pip install 'peft-recipes[words]'",
            where="data.template",
        ) from None
    return num2words(int(number) if float(number).is_integer() else number)


@functools.lru_cache(maxsize=64)
def _parse_bins(spec: str) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """``bins(12,24)short,medium,long`` → ((12.0, 24.0), ("short", "medium", "long")), checked."""
    edges_text, closed, labels_text = spec[len(_BINS_SPEC) :].partition(")")
    try:
        edges = tuple(float(edge) for edge in edges_text.split(","))
    except ValueError:
        edges = ()
    labels = tuple(label.strip() for label in labels_text.split(","))
    if not closed or not edges or list(edges) != sorted(set(edges)):
        raise ValueError(f"format spec {spec!r}: bins(...) takes increasing numbers, e.g. bins(12,24)")
    if len(labels) != len(edges) + 1 or not all(labels):
        raise ValueError(
            f"format spec {spec!r}: {len(edges)} edges need {len(edges) + 1} labels after the ')', "
            "comma-separated"
        )
    return edges, labels


def _in_bin(bins: tuple[tuple[float, ...], tuple[str, ...]], number: float) -> str:
    edges, labels = bins
    return labels[sum(number > edge for edge in edges)]


class _TemplateFormatter(string.Formatter):
    """``str.format`` plus the ``words`` and ``bins(...)`` specs."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == _WORDS_SPEC:
            render = _in_words
        elif format_spec.startswith(_BINS_SPEC):  # parsed first: a bad spec is reported on any row
            render = functools.partial(_in_bin, _parse_bins(format_spec))
        else:
            return super().format_field(value, format_spec)
        return value if value == MISSING else render(_number(value, format_spec))


_FORMATTER = _TemplateFormatter()


@functools.lru_cache(maxsize=64)
def _has_own_specs(template: str) -> bool:
    try:
        specs = [spec or "" for _, field, spec, _ in string.Formatter().parse(template) if field is not None]
    except ValueError:
        return False  # a broken template: str.format_map reports it
    return any(spec == _WORDS_SPEC or spec.startswith(_BINS_SPEC) for spec in specs)


def fill_template(template: str, values: Mapping[str, Any]) -> str:
    """``template`` filled with one row's ``values``; raises what str.format raises (KeyError, ValueError)."""
    if _has_own_specs(template):
        return _FORMATTER.vformat(template, (), values)
    return template.format_map(values)


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

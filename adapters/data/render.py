"""Rows → text: a ``str.format`` template or text columns, rendered a chunk at a time into Arrow strings.

A file's rows become text once, in chunks of ``RENDER_CHUNK_ROWS``: the per-row dicts and Python strings of
a chunk are all that exist at once, and the texts go to one Arrow string column in a memory-mapped file
(100,000 rendered German Credit rows: ~80 MB of text, several times that as Python objects; see spill.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from adapters.data.labels import MISSING, cell
from adapters.data.spill import mapped_text
from adapters.data.template import TemplateValueError, fill_template
from adapters.errors import AdaptersUserError
from adapters.recipe import DataConfig

RENDER_CHUNK_ROWS = 4096  # rows turned into text at a time

__all__ = ["RENDER_CHUNK_ROWS", "format_row", "render_text", "text_column"]


def format_row(templates: list[str], row: dict[str, Any], columns: Any, where: str) -> list[str]:
    """Each of ``templates`` (a template, or its sentences) filled with one row's cells; a missing column
    or a bad format string is a one-line user error naming the row."""
    values = {key: cell(value) for key, value in row.items()}
    try:
        return [fill_template(template, values) for template in templates]
    except KeyError as exc:
        raise AdaptersUserError(
            f"data.template uses column {exc.args[0]!r}, which is not in the data "
            f"(columns: {', '.join(map(str, columns))})",
            where=where,
        ) from None
    except AdaptersUserError:
        raise
    except TemplateValueError as exc:
        raise AdaptersUserError(f"data.template: {exc}", where=where) from None
    except (ValueError, IndexError) as exc:
        raise AdaptersUserError(
            f"data.template is not a valid format string ({exc})", where="data.template"
        ) from None


def _texts(
    frame: pd.DataFrame, template: str | None, text_columns: list[str] | None, where: str
) -> Iterator[str]:
    """Each row's text, in order, rendered a chunk at a time (see :func:`render_text`)."""
    if template:
        for start in range(0, len(frame), RENDER_CHUNK_ROWS):
            rows = frame.iloc[start : start + RENDER_CHUNK_ROWS].to_dict("records")
            for position, row in enumerate(rows, start):
                yield format_row([template], row, frame.columns, f"{where}, row {position + 1}")[0]
        return
    columns = text_columns or []
    if not columns:
        raise AdaptersUserError(
            "set data.text_columns or data.template to say how a row becomes text", where="data"
        )
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise AdaptersUserError(
            f"text column(s) {', '.join(map(repr, missing))} not found; columns: "
            f"{', '.join(map(str, frame.columns))}",
            where=where,
        )
    if len(columns) == 1:
        yield from (str(cell(value)) if cell(value) != MISSING else "" for value in frame[columns[0]])
        return
    for values in frame[columns].itertuples(index=False):
        yield " ".join(f"{name}: {cell(value)}." for name, value in zip(columns, values, strict=True))


def render_text(
    frame: pd.DataFrame,
    template: str | None = None,
    text_columns: list[str] | None = None,
    where: str = "data",
) -> list[str]:
    """Render each row as one text: a ``str.format`` template, or the text column(s).

    One text column is used as is; several become "column: value." sentences, so tabular rows with no
    template still read as text.
    """
    return list(_texts(frame, template, text_columns, where))


def text_column(frame: pd.DataFrame, config: DataConfig, where: str) -> tuple[pd.Series, np.ndarray]:
    """The rendered texts as one Arrow-backed string column, and which of them are blank.

    Rendered a chunk of Python strings at a time, never the whole file's, into a memory-mapped Arrow file:
    100,000 rendered rows are ~80 MB of text as Arrow, several times that as Python objects."""
    texts = _texts(frame, config.template, config.text_columns, where)
    blank: list[bool] = []

    def chunks() -> Iterator[list[str]]:
        while chunk := list(itertools.islice(texts, RENDER_CHUNK_ROWS)):
            blank.extend(not text.strip() for text in chunk)
            yield chunk

    column = mapped_text(chunks(), frame.index)
    return column, np.array(blank, dtype=bool)

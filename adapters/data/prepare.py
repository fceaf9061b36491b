"""Turn raw frames into the three splits a run needs: ``row_id``, ``text`` and integer ``label``.

Order of work matters for honesty: split first (stratified, seeded), then sub-sample only the training
split (``train_fraction``), so validation and test stay the same whatever fraction of labels is used and
the curves of later issues compare like with like.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.model_selection import train_test_split

from adapters.data.labels import (
    check_other_task,
    check_train_labels,
    infer_label_names,
    label_counts,
    placeholder_label,
    plan_rows,
    targets,
)
from adapters.data.memory import release_freed_memory
from adapters.data.readers import SPLIT_ALIASES, read_source
from adapters.data.render import format_row, render_text, text_column
from adapters.data.spill import take_rows, take_text
from adapters.errors import AdaptersUserError
from adapters.recipe import DataConfig

__all__ = ["PreparedData", "format_row", "prepare_data", "render_text", "resolve_data_config", "to_examples"]

SPLITS = ("train", "validation", "test")

logger = logging.getLogger(__name__)


_POSITION = "_source_position"  # private: a rendered row's position in the raw rows, dropped before return


@dataclass
class PreparedData:
    """The three splits as pandas frames (columns ``row_id``, ``text``, ``label``) and their labels.

    ``tables`` holds, per split, the source rows' original columns in the same row order as ``frames``:
    what the model never reads as such (protected attributes kept out of the text, the raw values a
    tabular baseline fits on) but a report about the same rows needs.
    """

    frames: dict[str, pd.DataFrame]
    label_names: list[str]
    positive_label: str | None
    source_rows: int
    info: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def label2id(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.label_names)}

    def to_datasets(self):
        """The splits as a ``datasets.DatasetDict`` (tokenized later, once), sharing the frames' Arrow text.

        Built from Arrow tables with a fresh fingerprint: ``Dataset.from_pandas`` would hash (pickle) each
        table to name it, a transient copy of every text (+300 MB at 100,000 rows). The splits are in memory,
        so the fingerprint names no cache file."""
        import uuid

        import datasets
        from datasets.table import InMemoryTable

        def dataset(frame: pd.DataFrame):
            table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
            return datasets.Dataset(InMemoryTable(table), fingerprint=uuid.uuid4().hex)

        return datasets.DatasetDict({name: dataset(frame) for name, frame in self.frames.items()})


def resolve_data_config(config: DataConfig) -> DataConfig:
    """Fill a built-in dataset's template, label column and label names into the config.

    The resolved config is what gets saved with the adapter, so prediction renders new rows exactly
    as training did without knowing about built-ins.
    """
    from adapters.data.builtin import BUILTIN_DATASETS

    builtin = BUILTIN_DATASETS.get(config.source) if config.format in ("auto", "builtin") else None
    if builtin is None:
        return _without_excluded(config)
    updates: dict[str, Any] = {}
    if not config.template and not config.text_columns:
        updates["template"] = builtin.template
    if config.label_column not in (None, builtin.label_column):
        # another column is the target: its labels come from the data
        return _without_excluded(config.model_copy(update=updates))
    if config.label_column is None:
        updates["label_column"] = builtin.label_column
    if config.label_names is None:
        updates["label_names"] = list(builtin.label_names)
    if config.positive_label is None:
        updates["positive_label"] = builtin.positive_label
    return _without_excluded(config.model_copy(update=updates))


def _without_excluded(config: DataConfig) -> DataConfig:
    """Take ``exclude_from_text`` columns out of the rendering: their sentences leave the template, or
    they leave ``text_columns``. The saved recipe holds the result, so prediction renders alike."""
    from adapters.data.template import drop_columns

    excluded = config.exclude_from_text
    if not excluded:
        return config
    if config.template:
        return config.model_copy(update={"template": drop_columns(config.template, excluded)})
    columns = [name for name in config.text_columns or [] if name not in excluded]
    if config.text_columns and not columns:
        raise AdaptersUserError(
            "data.exclude_from_text removes every text column; the model would read nothing",
            where="data.exclude_from_text",
        )
    return config.model_copy(update={"text_columns": columns or config.text_columns})


def _empty_texts(frame: pd.DataFrame, config: DataConfig, where: str) -> tuple[np.ndarray, pd.Series | None]:
    """Rows whose rendered text is empty or whitespace only (a missing single text column renders as ""),
    and the rendered texts, kept so that each row is rendered once.

    ``empty_text: error`` refuses the first one by its row. A frame that does not render is left whole
    (no texts): labelling reports why, in its usual order (label column first).
    """
    try:
        texts, empty = text_column(frame, config, where)
    except AdaptersUserError:
        return np.zeros(len(frame), dtype=bool), None
    if config.empty_text == "error" and empty.any():
        column = f", column {config.text_columns[0]!r}" if len(config.text_columns or []) == 1 else ""
        raise AdaptersUserError(
            "text is empty (data.empty_text: error)", where=f"{where}, row {int(empty.argmax()) + 1}{column}"
        )
    return empty, texts


def _stratified_split(
    frame: pd.DataFrame, size: float, seed: int, what: str, where: str, stratify: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded split, stratified by label for classification (other tasks: a plain random split)."""
    try:
        rest, part = train_test_split(
            frame, test_size=size, random_state=seed, stratify=frame["label"] if stratify else None
        )
    except ValueError as exc:
        raise AdaptersUserError(f"cannot make a stratified {what} split ({exc})", where=where) from None
    return rest, part


def _row_ids(frame: pd.DataFrame, column: str, where: str) -> list[str]:
    """The id column as strings; a missing or repeated id is refused (predictions are keyed by it)."""
    values = frame[column]
    missing = values.isna().to_numpy().nonzero()[0]
    if len(missing):
        raise AdaptersUserError("id is missing", where=f"{where}, row {missing[0] + 1}, column {column!r}")
    ids = values.astype(str)
    repeated = ids[ids.duplicated(keep=False)]
    if not repeated.empty:
        value = repeated.iloc[0]
        first, second = (ids == value).to_numpy().nonzero()[0][:2] + 1
        raise AdaptersUserError(
            f"id {value!r} appears more than once (rows {first} and {second}); ids must be unique",
            where=f"{where}, column {column!r}",
        )
    return ids.tolist()


def to_examples(
    frame: pd.DataFrame,
    config: DataConfig,
    label_names: list[str],
    where: str,
    offset: int = 0,
    task: str = "classification",
    texts: pd.Series | None = None,
) -> pd.DataFrame:
    """Rows → ``row_id``, ``text``, ``label`` (and ``split`` if configured); errors name the row.

    ``label`` is a label id (classification), a multi-hot vector (multi_label) or a number (regression).
    ``texts``: the rows already rendered (by ``prepare_data``), else they are rendered here.
    """
    if config.label_column is None:
        raise AdaptersUserError("data.label_column is required for this source", where="data.label_column")
    if config.label_column not in frame.columns:
        raise AdaptersUserError(
            f"label column {config.label_column!r} not found; columns: {', '.join(map(str, frame.columns))}",
            where=where,
        )
    if config.id_column and config.id_column not in frame.columns:
        raise AdaptersUserError(
            f"id column {config.id_column!r} not found; columns: {', '.join(map(str, frame.columns))}",
            where=where,
        )
    row_ids = (
        _row_ids(frame, config.id_column, where)
        if config.id_column
        else [str(offset + position) for position in range(len(frame))]
    )
    if "row_id" in frame.columns and not config.id_column:
        row_ids = frame["row_id"].astype(str).tolist()
    return pd.DataFrame(
        {
            "row_id": row_ids,
            "text": (text_column(frame, config, where)[0] if texts is None else texts).array,
            "label": targets(frame, config, label_names, where, task),
            **(
                {"split": frame[config.split_column].astype(str).str.lower().tolist()}
                if config.split_column
                else {}
            ),
        }
    )


def prepare_data(
    config: DataConfig, source: pd.DataFrame | None = None, task: str = "classification"
) -> PreparedData:
    """Read, render, label, split and sub-sample according to ``config`` (already resolved)."""
    where = "DataFrame" if source is not None else config.source
    raw = read_source(source if source is not None else config.source, config.format)
    places = {name: f"{where} [{name}]" if name != "all" else where for name in raw}
    checked = {name: _empty_texts(frame, config, places[name]) for name, frame in raw.items()}
    empty = {name: mask for name, (mask, _) in checked.items()}
    # Texts are rendered once, before relabelling; a template that reads the label column renders again.
    reusable = config.label_column not in _rendered_columns(config)
    plan = plan_rows(raw, empty, config, where, task)  # empty texts and rare classes: dropped or merged
    label_names = config.label_names
    if label_names is None:
        label_names = infer_label_names(plan.kept(raw, config.label_column), config, where, task)
    label_names = [str(name) for name in label_names]
    if len(label_names) < 2 and task not in ("regression", "sft"):
        raise AdaptersUserError(
            f"need at least two label names, found {label_names}", where="data.label_names"
        )
    if (
        task == "classification"
        and config.positive_label is not None
        and config.positive_label not in label_names
    ):
        raise AdaptersUserError(
            f"{config.positive_label!r} is not a label ({', '.join(label_names)})",
            where="data.positive_label",
        )

    offset = 0
    rendered: dict[str, pd.DataFrame] = {}
    texts: list[pd.Series] = []  # every raw row's text, in reading order; joined to the splits at the end
    for name, frame in raw.items():
        labelled = plan.labelled(name, frame, config.label_column, placeholder_label(task, label_names))
        _, rendered_texts = checked.pop(name)
        examples = to_examples(
            labelled, config, label_names, places[name], offset, task, rendered_texts if reusable else None
        )
        texts.append(examples.pop("text"))
        del rendered_texts
        # Each row remembers its raw row through the splits, so its text and ``tables`` can follow it.
        examples[_POSITION] = range(offset, offset + len(frame))
        rendered[name] = examples[plan.keep[name]]
        offset += len(frame)
    all_texts = texts[0] if len(texts) == 1 else pd.concat(texts, ignore_index=True)
    del texts
    source_rows = offset

    if config.split_column:
        combined = pd.concat(rendered.values(), ignore_index=True)
        combined["split"] = combined["split"].map(lambda value: SPLIT_ALIASES.get(value, value))
        unknown = sorted(set(combined["split"]) - set(SPLITS))
        if unknown:
            raise AdaptersUserError(
                f"unknown split values {unknown}; use train, validation, test",
                where=f"{where}, column {config.split_column!r}",
            )
        rendered = {name: part.drop(columns="split") for name, part in combined.groupby("split")}
    if "all" in rendered:
        rendered["train"] = rendered.pop("all")
    made_test = "test" not in rendered
    stratify = task == "classification"
    if made_test:
        rendered["train"], rendered["test"] = _stratified_split(
            rendered["train"], config.test_size, config.split_seed, "test", where, stratify
        )
    if "validation" not in rendered:
        share = config.validation_size / (1 - config.test_size) if made_test else config.validation_size
        rendered["train"], rendered["validation"] = _stratified_split(
            rendered["train"], share, config.split_seed, "validation", where, stratify
        )
    full_train_rows = len(rendered["train"])
    if config.train_fraction < 1:
        _, rendered["train"] = _stratified_split(
            rendered["train"],
            config.train_fraction,
            config.split_seed if config.train_fraction_seed is None else config.train_fraction_seed,
            f"train_fraction={config.train_fraction}",
            where,
            stratify,
        )
    frames = {name: rendered[name].reset_index(drop=True) for name in SPLITS}
    tables = _source_tables(raw, frames)
    for frame in frames.values():  # the text is taken once per split (Arrow), after the splits are drawn
        frame.insert(1, "text", take_text(all_texts, frame[_POSITION].to_numpy()).array)
    del all_texts
    frames = {name: frame.drop(columns=_POSITION) for name, frame in frames.items()}
    release_freed_memory()  # the raw rows' rendering and copies: freed, but kept by the allocators
    for name, frame in frames.items():
        if frame.empty:
            raise AdaptersUserError(f"the {name} split is empty", where=where)
    if task == "classification":
        check_train_labels(frames, label_names, config.label_column, where)
    else:
        check_other_task(frames, label_names, f"{where}, column {config.label_column!r}", task)
    info = {
        "source": where,
        "task": task,
        "rows": {name: len(frame) for name, frame in frames.items()},
        "train_rows_before_fraction": full_train_rows,
        "label_counts": {name: label_counts(frame, label_names, task) for name, frame in frames.items()},
        "cleaning": plan.report(sum(len(frame) for frame in frames.values())),
    }
    if info["cleaning"]["note"] and os.environ.get("RANK", "0") == "0":  # once, not once per process
        logger.warning("%s: %s", where, info["cleaning"]["note"])
    positive = config.positive_label if config.positive_label is not None else label_names[-1]
    if task != "classification":
        positive = None
    return PreparedData(frames, label_names, positive, source_rows, info, tables)


def _rendered_columns(config: DataConfig) -> list[str]:
    """The columns a row's text is made from."""
    from adapters.data.template import template_columns

    return template_columns(config.template) if config.template else list(config.text_columns or [])


def _source_tables(raw: dict[str, pd.DataFrame], frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Per split, the raw rows (all their columns) that ``frames[split]`` rendered, in the same order.

    Positions count through the raw frames in reading order (as ``to_examples``' offsets do); a
    pre-split source's frames are stacked once, so a row keeps its columns whichever split it lands in.
    """
    stacked = next(iter(raw.values())) if len(raw) == 1 else pd.concat(raw.values(), ignore_index=True)
    return {name: take_rows(stacked, frame[_POSITION].to_numpy()) for name, frame in frames.items()}

"""Turn raw frames into the three splits a run needs: ``row_id``, ``text`` and integer ``label``.

Order of work matters for honesty: split first (stratified, seeded), then sub-sample only the training
split (``train_fraction``), so validation and test stay the same whatever fraction of labels is used and
the curves of later issues compare like with like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from adapters.data.readers import SPLIT_ALIASES, read_source
from adapters.errors import AdaptersUserError
from adapters.recipe import DataConfig

__all__ = ["PreparedData", "prepare_data", "render_text", "resolve_data_config", "to_examples"]

SPLITS = ("train", "validation", "test")


@dataclass
class PreparedData:
    """The three splits as pandas frames (columns ``row_id``, ``text``, ``label``) and their labels."""

    frames: dict[str, pd.DataFrame]
    label_names: list[str]
    positive_label: str | None
    source_rows: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def label2id(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.label_names)}

    def to_datasets(self):
        """The splits as a ``datasets.DatasetDict`` (tokenized later, once)."""
        import datasets

        return datasets.DatasetDict(
            {
                name: datasets.Dataset.from_pandas(frame, preserve_index=False)
                for name, frame in self.frames.items()
            }
        )


def resolve_data_config(config: DataConfig) -> DataConfig:
    """Fill a built-in dataset's template, label column and label names into the config.

    The resolved config is what gets saved with the adapter, so prediction renders new rows exactly
    as training did without knowing about built-ins.
    """
    from adapters.data.builtin import BUILTIN_DATASETS

    builtin = BUILTIN_DATASETS.get(config.source) if config.format in ("auto", "builtin") else None
    if builtin is None:
        return config
    updates: dict[str, Any] = {}
    if not config.template and not config.text_columns:
        updates["template"] = builtin.template
    if config.label_column is None:
        updates["label_column"] = builtin.label_column
    if config.label_names is None:
        updates["label_names"] = list(builtin.label_names)
    if config.positive_label is None:
        updates["positive_label"] = builtin.positive_label
    return config.model_copy(update=updates)


def _cell(value: Any) -> Any:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return "unknown"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


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
    if template:
        texts = []
        for position, row in enumerate(frame.to_dict("records")):
            try:
                texts.append(template.format_map({key: _cell(value) for key, value in row.items()}))
            except KeyError as exc:
                raise AdaptersUserError(
                    f"data.template uses column {exc.args[0]!r}, which is not in the data "
                    f"(columns: {', '.join(map(str, frame.columns))})",
                    where=f"{where}, row {position + 1}",
                ) from None
            except (ValueError, IndexError) as exc:
                raise AdaptersUserError(
                    f"data.template is not a valid format string ({exc})", where="data.template"
                ) from None
        return texts
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
        return [str(_cell(value)) if _cell(value) != "unknown" else "" for value in frame[columns[0]]]
    return [
        " ".join(f"{name}: {_cell(value)}." for name, value in zip(columns, values, strict=True))
        for values in frame[columns].itertuples(index=False)
    ]


def _label_ids(frame: pd.DataFrame, config: DataConfig, label_names: list[str], where: str) -> list[int]:
    lookup = {name: index for index, name in enumerate(label_names)}
    ids = []
    for position, value in enumerate(frame[config.label_column]):
        key = str(_cell(value))
        if key not in lookup:
            problem = "is missing" if key == "unknown" else f"{key!r} is not one of {label_names}"
            raise AdaptersUserError(
                f"label {problem}", where=f"{where}, row {position + 1}, column {config.label_column!r}"
            )
        ids.append(lookup[key])
    return ids


def _numbers(frame: pd.DataFrame, config: DataConfig, where: str) -> list[float]:
    """Regression targets; a missing or non-numeric cell is refused with its row."""
    values = pd.to_numeric(frame[config.label_column], errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float))
    if bad.any():
        position = int(bad.nonzero()[0][0])
        raw = frame[config.label_column].iloc[position]
        raise AdaptersUserError(
            f"target {raw!r} is not a finite number (task: regression)",
            where=f"{where}, row {position + 1}, column {config.label_column!r}",
        )
    return values.astype(float).tolist()


def _label_sets(
    frame: pd.DataFrame, config: DataConfig, label_names: list[str], where: str
) -> list[list[float]]:
    """Multi-label targets as multi-hot vectors; an empty cell means none of the labels."""
    lookup = {name: index for index, name in enumerate(label_names)}
    vectors = []
    for position, value in enumerate(frame[config.label_column]):
        vector = [0.0] * len(label_names)
        for name in _split_labels(value, config.label_separator):
            if name not in lookup:
                raise AdaptersUserError(
                    f"label {name!r} is not one of {label_names}",
                    where=f"{where}, row {position + 1}, column {config.label_column!r}",
                )
            vector[lookup[name]] = 1.0
        vectors.append(vector)
    return vectors


def _split_labels(value: Any, separator: str) -> list[str]:
    cell = _cell(value)
    if cell == "unknown" or str(cell).strip() == "":
        return []
    return [part.strip() for part in str(cell).split(separator) if part.strip()]


def _targets(frame: pd.DataFrame, config: DataConfig, label_names: list[str], where: str, task: str) -> list:
    if task == "regression":
        return _numbers(frame, config, where)
    if task == "multi_label":
        return _label_sets(frame, config, label_names, where)
    return _label_ids(frame, config, label_names, where)


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


def _check_train_labels(
    frames: dict[str, pd.DataFrame], label_names: list[str], column: str | None, where: str
) -> None:
    """Training must see two labels or more, and every label that validation or test will score."""
    where = f"{where}, column {column!r}"
    seen = set(frames["train"]["label"])
    if len(seen) < 2:
        only = ", ".join(repr(label_names[index]) for index in sorted(seen))
        raise AdaptersUserError(
            f"the train split has one label value only ({only}); a classifier needs two or more", where=where
        )
    for name in ("validation", "test"):
        unseen = sorted(set(frames[name]["label"]) - seen)
        if unseen:
            values = ", ".join(repr(label_names[index]) for index in unseen)
            raise AdaptersUserError(
                f"the {name} split has label {values}, which the train split never has", where=where
            )


def to_examples(
    frame: pd.DataFrame,
    config: DataConfig,
    label_names: list[str],
    where: str,
    offset: int = 0,
    task: str = "classification",
) -> pd.DataFrame:
    """Rows → ``row_id``, ``text``, ``label`` (and ``split`` if configured); errors name the row.

    ``label`` is a label id (classification), a multi-hot vector (multi_label) or a number (regression).
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
            "text": render_text(frame, config.template, config.text_columns, where=where),
            "label": _targets(frame, config, label_names, where, task),
            **(
                {"split": frame[config.split_column].astype(str).str.lower().tolist()}
                if config.split_column
                else {}
            ),
        }
    )


def _infer_label_names(raw: dict[str, pd.DataFrame], config: DataConfig, where: str, task: str) -> list[str]:
    if config.label_column is None:
        raise AdaptersUserError("data.label_column is required", where="data.label_column")
    if not any(config.label_column in frame.columns for frame in raw.values()):
        columns = ", ".join(map(str, next(iter(raw.values())).columns))
        raise AdaptersUserError(
            f"label column {config.label_column!r} not found; columns: {columns}", where=where
        )
    if task == "regression":
        return [config.label_column]
    values = pd.concat(
        [frame[config.label_column] for frame in raw.values() if config.label_column in frame.columns]
    )
    if task == "multi_label":
        names = sorted({name for value in values for name in _split_labels(value, config.label_separator)})
    else:
        names = sorted({str(_cell(value)) for value in values if _cell(value) != "unknown"})
    if len(names) < 2:
        raise AdaptersUserError(
            f"need at least two label values, found {names}", where=f"{where}, column {config.label_column!r}"
        )
    return names


def _check_other_task(frames: dict[str, pd.DataFrame], label_names: list[str], where: str, task: str) -> None:
    """Regression needs varying targets; multi-label must see in training every label it is scored on."""
    train = frames["train"]["label"]
    if task == "regression":
        if train.nunique() < 2:
            raise AdaptersUserError(
                "the train split has one target value only; nothing to learn", where=where
            )
        return
    seen = {index for vector in train for index, value in enumerate(vector) if value}
    for name in ("validation", "test"):
        unseen = sorted(
            {i for vector in frames[name]["label"] for i, value in enumerate(vector) if value} - seen
        )
        if unseen:
            labels = ", ".join(repr(label_names[index]) for index in unseen)
            raise AdaptersUserError(
                f"the {name} split has label {labels}, which the train split never has", where
            )


def _label_counts(frame: pd.DataFrame, label_names: list[str], task: str) -> dict[str, Any]:
    if task == "regression":
        values = frame["label"].astype(float)
        return {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=0)),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    if task == "multi_label":
        totals = [sum(vector[i] for vector in frame["label"]) for i in range(len(label_names))]
        return {name: int(total) for name, total in zip(label_names, totals, strict=True)}
    return {label_names[i]: int((frame["label"] == i).sum()) for i in range(len(label_names))}


def prepare_data(
    config: DataConfig, source: pd.DataFrame | None = None, task: str = "classification"
) -> PreparedData:
    """Read, render, label, split and sub-sample according to ``config`` (already resolved)."""
    where = "DataFrame" if source is not None else config.source
    raw = read_source(source if source is not None else config.source, config.format)
    label_names = config.label_names
    if label_names is None and task != "classification":
        label_names = _infer_label_names(raw, config, where, task)
    if label_names is None:
        if config.label_column is None:
            raise AdaptersUserError("data.label_column is required", where="data.label_column")
        if not any(config.label_column in frame.columns for frame in raw.values()):
            columns = ", ".join(map(str, next(iter(raw.values())).columns))
            raise AdaptersUserError(
                f"label column {config.label_column!r} not found; columns: {columns}", where=where
            )
        values = pd.concat(
            [frame[config.label_column] for frame in raw.values() if config.label_column in frame.columns]
        )
        label_names = sorted({str(_cell(value)) for value in values if _cell(value) != "unknown"})
        if len(label_names) < 2:
            raise AdaptersUserError(
                f"need at least two label values, found {label_names}",
                where=f"{where}, column {config.label_column!r}",
            )
    label_names = [str(name) for name in label_names]
    if len(label_names) < 2 and task != "regression":
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
    for name, frame in raw.items():
        rendered[name] = to_examples(
            frame, config, label_names, f"{where} [{name}]" if name != "all" else where, offset, task
        )
        offset += len(frame)
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
            config.split_seed,
            f"train_fraction={config.train_fraction}",
            where,
            stratify,
        )
    frames = {name: rendered[name].reset_index(drop=True) for name in SPLITS}
    for name, frame in frames.items():
        if frame.empty:
            raise AdaptersUserError(f"the {name} split is empty", where=where)
    if task == "classification":
        _check_train_labels(frames, label_names, config.label_column, where)
    else:
        _check_other_task(frames, label_names, f"{where}, column {config.label_column!r}", task)
    info = {
        "source": where,
        "task": task,
        "rows": {name: len(frame) for name, frame in frames.items()},
        "train_rows_before_fraction": full_train_rows,
        "label_counts": {name: _label_counts(frame, label_names, task) for name, frame in frames.items()},
    }
    positive = config.positive_label if config.positive_label is not None else label_names[-1]
    if task != "classification":
        positive = None
    return PreparedData(frames, label_names, positive, source_rows, info)

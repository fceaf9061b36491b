"""Labels per task: ids (classification), multi-hot vectors (multi-label) or numbers (regression).

Every error names the file, row and column, like the rest of data preparation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from adapters.errors import AdaptersUserError
from adapters.recipe import DataConfig

__all__ = ["cell", "targets", "infer_label_names", "check_train_labels", "check_other_task", "label_counts"]


def cell(value: Any) -> Any:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return "unknown"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _label_ids(frame: pd.DataFrame, config: DataConfig, label_names: list[str], where: str) -> list[int]:
    lookup = {name: index for index, name in enumerate(label_names)}
    ids = []
    for position, value in enumerate(frame[config.label_column]):
        key = str(cell(value))
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
    text = cell(value)
    if text == "unknown" or str(text).strip() == "":
        return []
    return [part.strip() for part in str(text).split(separator) if part.strip()]


def _tag_ids(frame: pd.DataFrame, config: DataConfig, label_names: list[str], where: str) -> list[list[int]]:
    """Token classification: one tag per whitespace-separated word of the text column, as ids."""
    lookup = {name: index for index, name in enumerate(label_names)}
    column = (config.text_columns or [""])[0]
    ids = []
    for position, (text, tags) in enumerate(zip(frame[column], frame[config.label_column], strict=True)):
        words, names = str(cell(text)).split(), str(cell(tags)).split()
        place = f"{where}, row {position + 1}, column {config.label_column!r}"
        if len(words) != len(names):
            raise AdaptersUserError(f"{len(names)} tags for {len(words)} words in {column!r}", where=place)
        unknown = [name for name in names if name not in lookup]
        if unknown:
            raise AdaptersUserError(f"tag {unknown[0]!r} is not one of {label_names}", where=place)
        ids.append([lookup[name] for name in names])
    return ids


def _responses(frame: pd.DataFrame, config: DataConfig, where: str) -> list[str]:
    """SFT: the response text of each row; an empty one is refused with its row."""
    responses = []
    for position, value in enumerate(frame[config.label_column]):
        text = cell(value)
        if text == "unknown" or not str(text).strip():
            raise AdaptersUserError(
                "response is empty", where=f"{where}, row {position + 1}, column {config.label_column!r}"
            )
        responses.append(str(text))
    return responses


def targets(frame: pd.DataFrame, config: DataConfig, label_names: list[str], where: str, task: str) -> list:
    if task == "sft":
        return _responses(frame, config, where)
    if task == "token_classification":
        return _tag_ids(frame, config, label_names, where)
    if task == "regression":
        return _numbers(frame, config, where)
    if task == "multi_label":
        return _label_sets(frame, config, label_names, where)
    return _label_ids(frame, config, label_names, where)


def check_train_labels(
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


def infer_label_names(raw: dict[str, pd.DataFrame], config: DataConfig, where: str, task: str) -> list[str]:
    """Label names found in the data: sorted values (multi-label: sorted parts; regression: the column)."""
    if config.label_column is None:
        raise AdaptersUserError("data.label_column is required", where="data.label_column")
    if not any(config.label_column in frame.columns for frame in raw.values()):
        columns = ", ".join(map(str, next(iter(raw.values())).columns))
        raise AdaptersUserError(
            f"label column {config.label_column!r} not found; columns: {columns}", where=where
        )
    if task in ("regression", "sft"):
        return [config.label_column]
    values = pd.concat(
        [frame[config.label_column] for frame in raw.values() if config.label_column in frame.columns]
    )
    if task == "token_classification":  # "O" (outside any entity) first, as taggers expect
        tags = {tag for value in values for tag in str(cell(value)).split()}
        names = sorted(tags, key=lambda tag: (tag != "O", tag))
    elif task == "multi_label":
        names = sorted({name for value in values for name in _split_labels(value, config.label_separator)})
    else:
        names = sorted({str(cell(value)) for value in values if cell(value) != "unknown"})
    if len(names) < 2:
        raise AdaptersUserError(
            f"need at least two label values, found {names}", where=f"{where}, column {config.label_column!r}"
        )
    return names


def check_other_task(frames: dict[str, pd.DataFrame], label_names: list[str], where: str, task: str) -> None:
    """Regression needs varying targets; multi-label must see in training every label it is scored on."""
    train = frames["train"]["label"]
    if task == "sft":
        return
    if task == "token_classification":
        if len({tag for row in train for tag in row}) < 2:
            raise AdaptersUserError("the train split has one tag only; nothing to learn", where=where)
        return
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


def label_counts(frame: pd.DataFrame, label_names: list[str], task: str) -> dict[str, Any]:
    if task == "sft":
        return {"mean_response_words": float(frame["label"].map(lambda text: len(text.split())).mean())}
    if task == "regression":
        values = frame["label"].astype(float)
        return {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=0)),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    if task == "token_classification":
        counts = pd.Series([tag for row in frame["label"] for tag in row]).value_counts()
        return {name: int(counts.get(index, 0)) for index, name in enumerate(label_names)}
    if task == "multi_label":
        totals = [sum(vector[i] for vector in frame["label"]) for i in range(len(label_names))]
        return {name: int(total) for name, total in zip(label_names, totals, strict=True)}
    return {label_names[i]: int((frame["label"] == i).sum()) for i in range(len(label_names))}

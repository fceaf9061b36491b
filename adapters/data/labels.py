"""Labels per task: ids (classification), multi-hot vectors (multi-label) or numbers (regression).

Every error names the file, row and column, like the rest of data preparation.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from adapters.errors import AdaptersUserError
from adapters.recipe import DataConfig

__all__ = [
    "MISSING",
    "OTHER",
    "RowPlan",
    "cell",
    "targets",
    "infer_label_names",
    "check_train_labels",
    "check_other_task",
    "label_counts",
    "placeholder_label",
    "plan_rows",
]

OTHER = "other"  # the class that rare classes merge into (data.min_class_count, data.rare_classes: other)
MISSING = "unknown"  # what an empty cell becomes (cell()): text says it, label checks treat it as absent


def cell(value: Any) -> Any:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _label_ids(frame: pd.DataFrame, config: DataConfig, label_names: list[str], where: str) -> list[int]:
    lookup = {name: index for index, name in enumerate(label_names)}
    ids = []
    for position, value in enumerate(frame[config.label_column]):
        key = str(cell(value))
        if key not in lookup:
            problem = "is missing" if key == MISSING else f"{key!r} is not one of {label_names}"
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
    if text == MISSING or str(text).strip() == "":
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
        if text == MISSING or not str(text).strip():
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
        names = sorted({str(cell(value)) for value in values if cell(value) != MISSING})
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


@dataclass
class RowPlan:
    """Which rows of each raw frame a run keeps, and why the others go: an empty text, a rare class.

    Rows are dropped after labelling the whole frame (:meth:`labelled`), so row numbers in error
    messages, default row ids and positions stay those of the source file.
    """

    keep: dict[str, np.ndarray]
    rows_read: int
    empty_text: int
    merged: dict[str, int] = field(default_factory=dict)  # rare class -> its rows, now labelled "other"
    dropped: dict[str, int] = field(default_factory=dict)  # rare class -> its rows, dropped
    min_class_count: int | None = None

    def labelled(self, name: str, frame: pd.DataFrame, column: str | None, placeholder: Any) -> pd.DataFrame:
        """``frame`` with merged classes relabelled ``other`` and rows to drop given ``placeholder``: a
        valid label, so that labelling never stops at a row that will not be used."""
        keep = self.keep[name]
        if (keep.all() and not self.merged) or column is None or column not in frame.columns:
            return frame
        labels = frame[column].astype(object)
        if self.merged:
            labels = labels.map(lambda value: OTHER if str(cell(value)) in self.merged else value)
        labels[~keep] = placeholder
        copy = frame.copy(deep=False)
        copy[column] = labels
        return copy

    def kept(self, frames: dict[str, pd.DataFrame], column: str | None) -> dict[str, pd.DataFrame]:
        """The rows that stay, relabelled: what label names are inferred from."""
        return {
            name: self.labelled(name, frame, column, None)[self.keep[name]] for name, frame in frames.items()
        }

    def report(self, rows_used: int) -> dict[str, Any]:
        """Counts for ``PreparedData.info["cleaning"]`` (so ``training_summary.json``), with a sentence."""
        return {
            "rows_read": self.rows_read,
            "empty_text_dropped": self.empty_text,
            "min_class_count": self.min_class_count,
            "rare_classes_merged": dict(self.merged),
            "rare_classes_dropped": dict(self.dropped),
            "rows_used": rows_used,
            "note": self.note(),
        }

    def note(self) -> str:
        """'' when every row was used, else what went, e.g. for the log and the model card."""
        parts = []
        if self.empty_text:
            parts.append(f"{self.empty_text:,} of {self.rows_read:,} rows dropped for an empty text")
        for verb, classes in (("merged into 'other'", self.merged), ("dropped", self.dropped)):
            if classes:
                listed = ", ".join(f"{name!r} ({count})" for name, count in classes.items())
                parts.append(
                    f"{len(classes)} class(es) with fewer than {self.min_class_count} rows {verb}: {listed}"
                )
        return "; ".join(parts)


def plan_rows(
    raw: dict[str, pd.DataFrame], empty: dict[str, np.ndarray], config: DataConfig, where: str, task: str
) -> RowPlan:
    """Drop the rows with an empty text (``empty``), then handle classes under ``data.min_class_count``.

    Classes are counted over the whole source before any split, so that every class left can be split
    stratified. With ``rare_classes: other`` they become one class ``other`` (itself dropped when still
    under the count); with ``drop`` their rows go. Explicit ``label_names`` must not list a rare class (a
    user error: merging a class the user named would silently change what the model predicts); rare
    classes they leave out are merged or dropped, which is how a saved recipe re-prepares the same rows.
    """
    keep = {name: ~mask for name, mask in empty.items()}
    plan = RowPlan(
        keep, sum(len(frame) for frame in raw.values()), sum(int(mask.sum()) for mask in empty.values())
    )
    if plan.rows_read and plan.empty_text == plan.rows_read:
        column = f", column {config.text_columns[0]!r}" if len(config.text_columns or []) == 1 else ""
        raise AdaptersUserError(
            "every row has an empty text; nothing to learn from", where=f"{where}{column}"
        )
    if config.min_class_count is None:
        return plan
    if task != "classification":
        raise AdaptersUserError(
            f"data.min_class_count applies to task: classification, not {task}", where="data.min_class_count"
        )
    column = config.label_column
    if column is None or not all(column in frame.columns for frame in raw.values()):
        return plan  # labelling reports the missing column
    counts: Counter[str] = Counter()
    for name, frame in raw.items():
        counts.update(str(cell(value)) for value in frame[column][keep[name]] if cell(value) != MISSING)
    plan.min_class_count = config.min_class_count
    plan.merged, plan.dropped = _rare_classes(counts, config)
    if plan.dropped:
        for name, frame in raw.items():
            keep[name] &= ~frame[column].map(lambda value: str(cell(value)) in plan.dropped).to_numpy(
                dtype=bool
            )
    return plan


def _rare_classes(counts: Counter[str], config: DataConfig) -> tuple[dict[str, int], dict[str, int]]:
    """(classes merged into ``other``, classes dropped), each with its row count."""
    limit = config.min_class_count or 0
    rare = {name: count for name, count in sorted(counts.items()) if count < limit}
    listed = config.label_names
    merging = config.rare_classes == "other"
    named = [name for name in listed or [] if name in rare and not (merging and name == OTHER)]
    if named:
        fate = f"merged into {OTHER!r}" if merging else "dropped"
        raise AdaptersUserError(
            f"label {named[0]!r} has {rare[named[0]]} row(s), fewer than data.min_class_count ({limit}); "
            f"leave it out of data.label_names (its rows are then {fate}) or lower data.min_class_count",
            where="data.label_names",
        )
    if not merging:
        return {}, rare
    merged = {name: count for name, count in rare.items() if name != OTHER}
    total = counts.get(OTHER, 0) + sum(merged.values())
    if (merged or OTHER in rare) and total < limit:  # still too few to split: 'other' goes as well
        if listed is not None and OTHER in listed:
            raise AdaptersUserError(
                f"label {OTHER!r} would have {total} row(s), fewer than data.min_class_count ({limit}); "
                f"leave it out of data.label_names or lower data.min_class_count",
                where="data.label_names",
            )
        return {}, {**merged, **({OTHER: counts[OTHER]} if OTHER in counts else {})}
    if merged and listed is not None and OTHER not in listed:
        raise AdaptersUserError(
            f"rare classes merge into {OTHER!r}, which data.label_names does not list; add it "
            f"or set data.rare_classes: drop",
            where="data.label_names",
        )
    return merged, {}


def placeholder_label(task: str, label_names: list[str]) -> Any:
    """A label every labeller accepts, for rows that are dropped after labelling."""
    return {"classification": label_names[0] if label_names else "", "regression": 0, "sft": "-"}.get(
        task, ""
    )

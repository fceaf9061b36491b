"""Classical baselines fitted on the same split as the adapter: the model a credit team already has.

A fairness or accuracy figure of the adapter means little alone; next to a logistic regression on the
same rows a team sees whether the adapter is better (or fairer) than what it would replace. So the
baseline is held to the adapter's terms:

* the same split: fitted on ``tables["train"]`` (after ``train_fraction``), scored on validation and test;
* the same attributes: the columns the adapter's text is rendered from (the template's fields or
  ``text_columns``) *after* ``data.exclude_from_text``, so an attribute kept out of the adapter's input is
  kept out of the baseline's too;
* the same decision rule: the cut-off comes from ``eval.threshold`` applied to the baseline's own
  validation scores (a fixed number stays that number; ``max_f1`` / ``min_cost`` are re-fitted).

Tabular baselines only apply when rows come from a table (a template or several text columns); for one
free-text column there is nothing to one-hot, and :func:`baseline_features` says so. The module is built
around a registry of estimator builders: ``logistic_regression`` now; a histogram gradient-boosting model
fits the same ``(categorical, numeric)`` slot, and a TF-IDF + LR baseline would read ``frames[split]["text"]``
instead of the columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "BASELINES",
    "Baseline",
    "baseline_features",
    "fit_baseline",
    "logistic_regression_baseline",
    "run_baseline",
]

MISSING = "missing"  # the category a missing categorical value becomes (one-hot: its own column)


@dataclass
class Baseline:
    """A fitted baseline's P(positive) per scored split and its cut-off, or why there is none."""

    name: str
    features: list[str] = field(default_factory=list)
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    threshold: float | None = None
    skipped: str | None = None

    def describe(self) -> dict[str, Any]:
        """What a report says about the baseline (its scores stay out: they are per row)."""
        if self.skipped:
            return {"name": self.name, "skipped": self.skipped}
        return {"name": self.name, "features": self.features, "threshold": self.threshold}


def _split_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Categorical (strings, pandas ``str``/object/category, booleans) and numeric columns."""
    numeric = [
        name
        for name in frame.columns
        if pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name])
    ]
    return [name for name in frame.columns if name not in numeric], numeric


def _feature_frame(table: pd.DataFrame, columns: Sequence[str], categorical: Sequence[str]) -> pd.DataFrame:
    """The feature columns with categoricals as plain strings: one dtype, missing values a category."""
    frame = table[list(columns)].copy()
    for name in categorical:
        values = frame[name].astype(object)
        frame[name] = values.where(values.notna(), MISSING).astype(str).astype(object)
    return frame


def _logistic_regression(categorical: list[str], numeric: list[str], max_iter: int = 2000) -> Any:
    """One-hot categoricals and standardised numbers (median-imputed) into an L2 logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if categorical:
        parts.append(("categorical", OneHotEncoder(handle_unknown="ignore"), categorical))
    if numeric:
        parts.append(("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric))
    return Pipeline(
        [("features", ColumnTransformer(parts)), ("model", LogisticRegression(max_iter=max_iter))]
    )


BASELINES: dict[str, Callable[[list[str], list[str]], Any]] = {"logistic_regression": _logistic_regression}
"""Name → builder of an unfitted scikit-learn estimator from the categorical and numeric column names."""


def fit_baseline(
    name: str,
    tables: Mapping[str, pd.DataFrame],
    train_labels: Sequence[int],
    positive_id: int,
    feature_columns: Sequence[str],
) -> dict[str, np.ndarray]:
    """Fit baseline ``name`` on ``tables["train"]`` and return P(positive) for every other split, shape
    (n,) each, in the tables' row order."""
    columns = list(dict.fromkeys(feature_columns))
    categorical, numeric = _split_columns(tables["train"][columns])
    estimator = BASELINES[name](categorical, numeric)
    estimator.fit(_feature_frame(tables["train"], columns, categorical), np.asarray(train_labels))
    column = list(estimator.classes_).index(positive_id)
    return {
        split: estimator.predict_proba(_feature_frame(table, columns, categorical))[:, column]
        for split, table in tables.items()
        if split != "train"
    }


def logistic_regression_baseline(
    tables: Mapping[str, pd.DataFrame],
    train_labels: Sequence[int],
    label_names: Sequence[str],
    positive_label: str,
    feature_columns: Sequence[str],
) -> dict[str, np.ndarray]:
    """Logistic regression (one-hot categoricals, standardised numbers) fitted on the train table;
    P(``positive_label``) for validation and test. ``train_labels`` are label ids into ``label_names``."""
    return fit_baseline(
        "logistic_regression", tables, train_labels, list(label_names).index(positive_label), feature_columns
    )


def baseline_features(config: Any) -> tuple[list[str], str | None]:
    """The columns a tabular baseline reads, i.e. the ones the adapter's text is rendered from, or why
    there are none. ``config`` is a resolved ``DataConfig`` (exclusions already applied)."""
    from adapters.data.template import template_columns

    if config.template:
        columns = template_columns(config.template)
    elif config.text_columns and len(config.text_columns) > 1:
        columns = list(config.text_columns)
    else:
        return [], "the model reads one free-text column; a tabular baseline needs attribute columns"
    columns = [name for name in columns if name not in (config.label_column, config.id_column)]
    if not columns:
        return [], "the template reads no data column"
    return columns, None


def run_baseline(
    recipe: Any,
    data: Any,
    name: str = "logistic_regression",
    extra: Mapping[str, pd.DataFrame] | None = None,
) -> Baseline:
    """Fit baseline ``name`` for a binary recipe on prepared ``data`` (with ``tables``) and choose its
    cut-off by the recipe's ``eval.threshold`` on its validation scores. ``extra`` tables (e.g. the rows
    of a file being evaluated) are scored too, under their own names.

    A recipe the baseline cannot serve (one free-text column, no tables) gets ``skipped`` with the reason.
    """
    from adapters.metrics.calibration import choose_threshold
    from adapters.training import metric_kwargs

    features, reason = baseline_features(recipe.data)
    if reason is None and not data.tables:
        reason = "the raw columns of the training rows are not available"
    if reason is not None:
        return Baseline(name, skipped=reason)
    positive = data.label_names.index(data.positive_label)
    tables = {**data.tables, **(extra or {})}
    scores = fit_baseline(name, tables, data.frames["train"]["label"].tolist(), positive, features)
    validation = data.frames["validation"]["label"].to_numpy() == positive
    cost = metric_kwargs(recipe, data.label_names)["cost_matrix"]
    threshold = choose_threshold(recipe.eval.threshold, scores["validation"], validation, cost, positive)
    return Baseline(name, features, scores, float(threshold))

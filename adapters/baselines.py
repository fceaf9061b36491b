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

Which baselines apply depends on where the text came from. Rows from a table (a template or several text
columns) get a logistic regression on one-hot / standardised columns and a histogram gradient-boosting
model on the raw columns (categoricals as pandas categories): the two models a credit team would try
first. One free-text column has nothing to one-hot; it gets TF-IDF (word 1–2-grams) + logistic regression
on ``frames[split]["text"]``. :data:`BASELINES` is the registry; :func:`baselines_for` says which apply.
All of them return one probability column per label (multi-class included).
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
    "Estimator",
    "baseline_features",
    "baseline_probabilities",
    "baselines_for",
    "fit_baseline",
    "logistic_regression_baseline",
    "prepared_probabilities",
    "class_weight_for",
    "run_baseline",
]

MISSING = "missing"  # the category a missing categorical value becomes (one-hot: its own column)
MAX_CATEGORIES = 255  # HistGradientBoosting's limit per categorical column (max_bins); rarer values: missing


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
    """The feature columns with categoricals as strings, missing values a category of their own.

    Held as pandas categories: scikit-learn still sees the same strings (the fitted model and its
    probabilities are unchanged), but each distinct value is one Python string. As object columns every
    row had its own: 138 MB for the 18 categorical columns of 100,000 German Credit rows, 1.7 MB now."""
    frame = table[list(columns)].copy()
    for name in categorical:
        values = frame[name].astype(object)
        frame[name] = values.where(values.notna(), MISSING).astype(str).astype("category")
    return frame


def _logistic_regression(
    categorical: list[str], numeric: list[str], class_weight: Any = None, max_iter: int = 2000
) -> Any:
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
        [
            ("features", ColumnTransformer(parts)),
            ("model", LogisticRegression(max_iter=max_iter, class_weight=class_weight)),
        ]
    )


class _AsCategories:
    """Categorical columns as pandas categories fixed on the training rows, for HistGradientBoosting's
    ``categorical_features="from_dtype"``: every split then shares one category list, a value unseen in
    training becomes missing (which the trees route on their own), and only the ``MAX_CATEGORIES`` most
    frequent values of a column are kept."""

    def __init__(self, categorical: list[str]) -> None:
        self.categorical = categorical
        self.categories: dict[str, list[str]] = {}

    def fit(self, frame: pd.DataFrame) -> _AsCategories:
        for name in self.categorical:
            counts = frame[name].astype(str).value_counts()
            self.categories[name] = sorted(counts.index[:MAX_CATEGORIES])
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for name, categories in self.categories.items():
            values = frame[name].astype(str)
            values = values.where(values.isin(categories))
            frame[name] = pd.Categorical(values, categories=categories)
        return frame


class _HistGradientBoosting:
    """HistGradientBoosting on the raw columns: numbers as they are (missing values allowed), categoricals
    as categories; a thin estimator so that :func:`baseline_probabilities` treats it like a pipeline."""

    def __init__(self, categorical: list[str], numeric: list[str], class_weight: Any = None) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.encoder = _AsCategories(categorical)
        self.numeric = numeric
        self.model = HistGradientBoostingClassifier(
            categorical_features="from_dtype", random_state=0, class_weight=class_weight
        )

    def _frame(self, frame: pd.DataFrame, fit: bool = False) -> pd.DataFrame:
        frame = frame.copy()
        for name in self.numeric:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
        return (self.encoder.fit(frame) if fit else self.encoder).transform(frame)

    # One OpenMP thread: on credit-sized tables (hundreds of rows) more threads only wait on each other, and
    # beside a busy CPU (a training, a CI run) their spin-waits made a 0.5 s fit take a minute.
    def fit(self, frame: pd.DataFrame, labels: np.ndarray) -> _HistGradientBoosting:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="openmp"):
            self.model.fit(self._frame(frame, fit=True), labels)
        self.classes_ = self.model.classes_
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="openmp"):
            return self.model.predict_proba(self._frame(frame))


def _tfidf_logistic_regression(
    categorical: list[str], numeric: list[str], class_weight: Any = None, max_iter: int = 2000
) -> Any:
    """TF-IDF of word 1–2-grams (sublinear term frequency) into an L2 logistic regression (multinomial
    for more than two labels); the column lists are unused: it reads the rendered text."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegression(max_iter=max_iter, class_weight=class_weight),
    )


@dataclass(frozen=True)
class Estimator:
    """A registered baseline: how to build it (from categorical and numeric column names), what it reads
    (the raw ``columns`` of ``tables`` or the rendered ``text``) and its name in reports."""

    build: Callable[..., Any]  # (categorical columns, numeric columns, class_weight) -> estimator
    reads: str  # "columns" | "text"
    title: str


BASELINES: dict[str, Estimator] = {
    "logistic_regression": Estimator(_logistic_regression, "columns", "logistic regression"),
    "hist_gradient_boosting": Estimator(_HistGradientBoosting, "columns", "gradient boosting"),
    "tfidf_logistic_regression": Estimator(
        _tfidf_logistic_regression, "text", "TF-IDF + logistic regression"
    ),
}
"""Name → registered baseline."""


def baseline_probabilities(
    name: str,
    inputs: Mapping[str, pd.DataFrame | pd.Series],
    train_labels: Sequence[int],
    num_labels: int,
    feature_columns: Sequence[str] = (),
    class_weight: Any = None,
) -> dict[str, np.ndarray]:
    """Fit baseline ``name`` on ``inputs["train"]`` and return, for every other split, probabilities of
    shape (n, ``num_labels``) with columns in label-id order (a label absent from training scores 0).

    ``inputs`` are raw tables (``feature_columns`` picks the columns) for a column baseline, and texts (a
    Series, or frames with a ``text`` column) for a text baseline. ``class_weight`` is scikit-learn's
    (``"balanced"`` or label id → weight), as :func:`class_weight_for` derives it from the recipe.
    """
    estimator_spec = BASELINES[name]
    labels = np.asarray(train_labels)
    if estimator_spec.reads == "text":
        texts = {
            split: (value["text"] if isinstance(value, pd.DataFrame) else value).astype(str).tolist()
            for split, value in inputs.items()
        }
        estimator = estimator_spec.build([], [], class_weight)
        estimator.fit(texts["train"], labels)
        scored = {
            split: estimator.predict_proba(values) for split, values in texts.items() if split != "train"
        }
    else:
        columns = list(dict.fromkeys(feature_columns))
        categorical, numeric = _split_columns(inputs["train"][columns])
        estimator = estimator_spec.build(categorical, numeric, class_weight)
        estimator.fit(_feature_frame(inputs["train"], columns, categorical), labels)
        scored = {
            split: estimator.predict_proba(_feature_frame(table, columns, categorical))
            for split, table in inputs.items()
            if split != "train"
        }
    classes = [int(label) for label in estimator.classes_]
    result = {}
    for split, probabilities in scored.items():
        full = np.zeros((len(probabilities), num_labels))
        full[:, classes] = probabilities
        result[split] = full
    return result


def fit_baseline(
    name: str,
    tables: Mapping[str, pd.DataFrame],
    train_labels: Sequence[int],
    positive_id: int,
    feature_columns: Sequence[str],
    class_weight: Any = None,
) -> dict[str, np.ndarray]:
    """Fit baseline ``name`` on ``tables["train"]`` and return P(positive) for every other split, shape
    (n,) each, in the tables' row order."""
    num_labels = max(int(np.max(train_labels)), positive_id) + 1
    scored = baseline_probabilities(name, tables, train_labels, num_labels, feature_columns, class_weight)
    return {split: probabilities[:, positive_id] for split, probabilities in scored.items()}


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


def baselines_for(config: Any) -> list[str]:
    """The baselines that fit a resolved ``DataConfig``: the tabular pair for rows from a table, TF-IDF +
    LR for one free-text column."""
    _, reason = baseline_features(config)
    if reason is None:
        return ["logistic_regression", "hist_gradient_boosting"]
    return ["tfidf_logistic_regression"]


def prepared_probabilities(name: str, config: Any, data: Any) -> dict[str, np.ndarray]:
    """Baseline ``name`` fitted on prepared ``data``'s training split (its raw ``tables`` or rendered
    texts, whichever it reads); (n, k) probabilities for ``validation`` and ``test``.

    Raises ``ValueError`` with the reason when the baseline cannot serve ``config``: the caller chose it
    from :func:`baselines_for`, so that is a bug, not a user error."""
    labels = data.frames["train"]["label"].tolist()
    num_labels = len(data.label_names)
    weights = class_weight_for(config.class_weights, data.label_names)
    if BASELINES[name].reads == "text":
        return baseline_probabilities(name, data.frames, labels, num_labels, class_weight=weights)
    features, reason = baseline_features(config)
    if reason is None and not data.tables:
        reason = "the raw columns of the training rows are not available"
    if reason is not None:
        raise ValueError(f"baseline {name}: {reason}")
    return baseline_probabilities(name, data.tables, labels, num_labels, features, weights)


def class_weight_for(class_weights: Any, label_names: Sequence[str]) -> Any:
    """The recipe's ``data.class_weights`` for scikit-learn: the baselines weigh the classes as the adapter's
    loss does (``balanced``: n / (k · count); a mapping by label name → by label id), so a comparison on
    uneven classes is not won by the weighting."""
    if class_weights in (None, "none"):
        return None
    if class_weights == "balanced":
        return "balanced"
    return {index: float(class_weights.get(name, 1.0)) for index, name in enumerate(label_names)}


def run_baseline(
    recipe: Any,
    data: Any,
    name: str = "logistic_regression",
    extra: Mapping[str, pd.DataFrame] | None = None,
) -> Baseline:
    """Fit column baseline ``name`` for a binary recipe on prepared ``data`` (with ``tables``) and choose
    its cut-off by the recipe's ``eval.threshold`` on its validation scores. ``extra`` tables (e.g. the rows
    of a file being evaluated) are scored too, under their own names.

    A recipe the baseline cannot serve (one free-text column, no tables) gets ``skipped`` with the reason.
    """
    from adapters.metrics.calibration import choose_threshold
    from adapters.scoring import metric_kwargs

    features, reason = baseline_features(recipe.data)
    if reason is None and not data.tables:
        reason = "the raw columns of the training rows are not available"
    if reason is None and BASELINES[name].reads != "columns":
        reason = f"{name} reads the rendered text, not the rows' columns"
    if reason is not None:
        return Baseline(name, skipped=reason)
    positive = data.label_names.index(data.positive_label)
    tables = {**data.tables, **(extra or {})}
    weights = class_weight_for(recipe.data.class_weights, data.label_names)
    scores = fit_baseline(name, tables, data.frames["train"]["label"].tolist(), positive, features, weights)
    validation = data.frames["validation"]["label"].to_numpy() == positive
    cost = metric_kwargs(recipe, data.label_names)["cost_matrix"]
    threshold = choose_threshold(recipe.eval.threshold, scores["validation"], validation, cost, positive)
    return Baseline(name, features, scores, float(threshold))

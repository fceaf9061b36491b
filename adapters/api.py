"""The Python API: ``train``, ``evaluate``, ``predict``, ``load``. The CLI is a thin shell over these."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from adapters.artifact import (
    CHECKPOINTS,
    check_output_location,
    publish,
    refuse_existing,
    staging_dir,
    staging_path,
    write_artifact,
)
from adapters.classifier import Classifier, load
from adapters.cost import check_energy_country
from adapters.data import prepare_data, resolve_data_config
from adapters.data.prepare import to_examples
from adapters.data.readers import read_source
from adapters.errors import AdaptersUserError
from adapters.lineage import build_lineage
from adapters.recipe import Recipe, load_recipe
from adapters.transfer import start_adapter_dir

__all__ = [
    "TrainResult",
    "train",
    "evaluate",
    "fairness",
    "predict",
    "predict_file",
    "explain",
    "load",
    "Classifier",
]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where the artifact went and what it scored; ``load()`` gives the classifier."""

    output_dir: Path
    metrics: dict[str, dict[str, float]]
    summary: dict[str, Any]

    def load(self) -> Classifier:
        return load(self.output_dir)


def _resolved(
    recipe: str | Path | Mapping[str, Any] | Recipe | None,
    overrides: Any,
    sections: dict[str, Any],
    output_dir: str | Path | None,
) -> Recipe:
    resolved = load_recipe(recipe, overrides, **sections)
    updates: dict[str, Any] = {"data": resolve_data_config(resolved.data)}
    if output_dir is not None:
        updates["training"] = resolved.training.model_copy(update={"output_dir": str(output_dir)})
    return resolved.model_copy(update=updates)


def _local_path(candidate: Any) -> Path | None:
    return Path(candidate) if isinstance(candidate, str | Path) and Path(candidate).exists() else None


def train(
    recipe: str | Path | Mapping[str, Any] | Recipe | None = None,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    *,
    data: pd.DataFrame | None = None,
    output_dir: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    **sections: Any,
) -> TrainResult:
    """Train a recipe and write its artifact directory; return its metrics.

    ``recipe`` is a YAML path, a built-in name (``german-credit/lora``), a dict or a :class:`Recipe`;
    ``overrides`` takes dotted keys; ``sections`` whole sections (``training={"epochs": 1}``);
    ``data`` a pandas DataFrame used instead of ``data.source``. ``resume=True`` continues an interrupted
    run of the same recipe from its newest complete checkpoint (``training.checkpoint_every``).
    """
    if data is not None:  # the frame replaces data.source; say so in the saved recipe
        sections = {**sections, "data": {**sections.get("data", {}), "source": "<DataFrame>"}}
    started = time.perf_counter()
    resolved = _resolved(recipe, overrides, sections, output_dir)
    target = resolved.output_dir
    refuse_existing(target, overwrite)
    recipe_file = _local_path(recipe)
    check_output_location(
        target, _local_path(resolved.data.source), [recipe_file] if recipe_file is not None else []
    )
    check_energy_country(resolved.training.energy_country)
    if resolved.model.init_adapter:  # a missing starting adapter is reported before any work
        start_adapter_dir(resolved.model.init_adapter)
    prepared = prepare_data(resolved.data, data, resolved.task)
    # --- eval.fairness: protected columns present and groupable, task binary; refused before training ---
    if resolved.eval.fairness:
        from adapters.fairness import check_recipe_fairness

        check_recipe_fairness(resolved, prepared)
    # Heavy imports only now: a bad recipe, path or data file is reported in about a second.
    from accelerate import PartialState

    from adapters.checkpoint import latest_checkpoint
    from adapters.metrics import BUILTIN_METRICS, load_metric
    from adapters.scoring import metric_kwargs
    from adapters.training import no_accelerator_device, run_training

    data_config = resolved.data.model_copy(
        update={"label_names": prepared.label_names, "positive_label": prepared.positive_label}
    )
    resolved = resolved.model_copy(update={"data": data_config})
    metric_kwargs(resolved, prepared.label_names)  # cost matrix / class weight labels checked before any work
    if resolved.task == "classification":
        for name in set(resolved.eval.metrics) - set(
            BUILTIN_METRICS
        ):  # fail now, not at the first evaluation
            load_metric(name)
    else:
        from adapters.metrics.tasks import TaskMetric

        for name in resolved.eval.metrics:  # built-ins only for the other tasks
            TaskMetric(name, resolved.task)
    state = PartialState(cpu=no_accelerator_device())
    staging = staging_path(target)
    if state.is_main_process:
        staging_dir(target, resume=resume, overwrite=overwrite)
    state.wait_for_everyone()
    try:
        outcome = run_training(
            resolved,
            prepared,
            logging_dir=staging / "logs",
            progress=progress,
            checkpoint_root=staging / CHECKPOINTS,
            resume=resume,
        )
        summary: dict[str, Any] = {}
        if state.is_main_process:
            lineage = build_lineage(
                resolved, prepared, outcome, time.perf_counter() - started, recipe_file, data is not None
            )
            summary = write_artifact(staging, outcome, resolved, prepared, lineage)
            shutil.rmtree(staging / CHECKPOINTS, ignore_errors=True)
            publish(staging, target)
        state.wait_for_everyone()
        state.destroy_process_group()
    except BaseException:
        if state.is_main_process:
            if latest_checkpoint(staging / CHECKPOINTS) is not None:
                logger.warning("checkpoints kept in %s; rerun with --resume to continue", staging)
            else:
                shutil.rmtree(staging, ignore_errors=True)
        raise
    return TrainResult(target, outcome.metrics, summary)


def evaluate(
    directory: str | Path, data: str | Path | None = None, *, with_fairness: bool = False
) -> dict[str, Any]:
    """Metrics of a trained artifact on a labelled file, or on its recipe's own test split.

    ``with_fairness=True``, for a recipe that lists ``eval.fairness``, adds the key ``"fairness"``: the
    report of :mod:`adapters.fairness` on the same rows (the file's own columns, or the test split's raw
    columns), with the logistic-regression baseline refitted on the recipe's training split when that data
    is still readable. Without it the result is the metrics alone, as always.
    """
    import numpy as np

    from adapters.metrics import compute_metrics
    from adapters.scoring import metric_kwargs

    classifier = load(directory)
    prepared = None
    if data is None:
        if classifier.recipe.data.source == "<DataFrame>":
            raise AdaptersUserError(
                "this adapter was trained from a DataFrame; pass a labelled file with --data",
                where=str(directory),
            )
        prepared = prepare_data(classifier.recipe.data, task=classifier.recipe.task)
        test, table = prepared.frames["test"], prepared.tables["test"]
        texts, labels = test["text"].tolist(), test["label"].tolist()
    else:
        table = _rows(data)
        examples = to_examples(
            table,
            classifier.recipe.data.model_copy(update={"split_column": None}),
            classifier.label_names,
            where=str(data),
            task=classifier.recipe.task,
        )
        texts, labels = examples["text"].tolist(), examples["label"].tolist()
    if classifier.task == "token_classification":  # the predicted tags as one-hot rows per word
        lookup = {name: index for index, name in enumerate(classifier.label_names)}
        eye = np.eye(len(classifier.label_names))
        probabilities = np.empty(len(texts), dtype=object)
        for row, tags in enumerate(classifier.tag(texts)):
            probabilities[row] = eye[[lookup[tag] for tag in tags]]
        references = np.empty(len(labels), dtype=object)
        references[:] = [np.asarray(row) for row in labels]
        return compute_metrics(
            classifier.recipe.eval.metrics,
            probabilities,
            references,
            **metric_kwargs(classifier.recipe, classifier.label_names),
        )
    probabilities = classifier.predict_proba(texts)
    if classifier.problem_type == "regression":
        probabilities = probabilities[:, 0]
    metrics = compute_metrics(
        classifier.recipe.eval.metrics,
        probabilities,
        np.asarray(labels),
        **metric_kwargs(
            classifier.recipe, classifier.label_names, classifier.label_thresholds, classifier.threshold
        ),
    )
    if with_fairness:
        metrics.update(_fairness(classifier, table, labels, probabilities, prepared))
    return metrics


def _fairness(
    classifier: Classifier, table: pd.DataFrame, labels: list[Any], probabilities: Any, prepared: Any
) -> dict[str, Any]:
    """``{"fairness": report}`` for :func:`evaluate` when the recipe lists ``eval.fairness``, else ``{}``.
    The baseline refits on the recipe's training split; data that is gone means no baseline, not an error."""
    from adapters.fairness import applies, run_fairness

    recipe = classifier.recipe
    if not applies(recipe, classifier.label_names):
        return {}
    if prepared is None and recipe.data.source != "<DataFrame>":
        try:
            prepared = prepare_data(recipe.data, task=recipe.task)
        except AdaptersUserError:
            prepared = None
    positive = recipe.data.positive_label or classifier.label_names[-1]
    scores = probabilities[:, classifier.label_names.index(positive)]
    return {"fairness": run_fairness(recipe, table, labels, scores, classifier.threshold, training=prepared)}


def fairness(directory: str | Path, data: str | Path | None = None) -> dict[str, Any] | None:
    """The fairness report of a trained artifact (see :func:`evaluate`); None when its recipe lists no
    ``eval.fairness`` attributes or is not a two-label classification."""
    return evaluate(directory, data, with_fairness=True).get("fairness")


def _rows(path: str | Path) -> pd.DataFrame:
    """Every row of a csv/jsonl/parquet file or split directory, as one frame (split files concatenated)."""
    return pd.concat(read_source(str(path), "auto").values(), ignore_index=True)


def _scored(classifier: Classifier, frame: pd.DataFrame) -> pd.DataFrame:
    """The input rows plus ``prob_<label>`` columns (classification) and ``prediction``."""
    result = frame.copy()
    if classifier.task in ("token_classification", "sft"):  # tags per word, or generated responses
        result["prediction"] = classifier.predict(frame)
        return result
    probabilities = classifier.predict_proba(frame)
    if classifier.problem_type != "regression":  # regression: the prediction is the number itself
        for index, name in enumerate(classifier.label_names):
            result[f"prob_{name}"] = probabilities[:, index]
    result["prediction"] = classifier.decide(probabilities)
    return result


@contextmanager
def _atomic_file(output: str | Path) -> Iterator[Path]:
    """A temporary file beside ``output`` that replaces it only if the block finishes."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".partial")
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def predict(
    directory: str | Path, inputs: str | Path | pd.DataFrame, output: str | Path | None = None
) -> pd.DataFrame:
    """Add ``prob_<label>`` columns and ``prediction`` to the input rows; write CSV atomically if asked.

    ``directory`` is an artifact directory or a Hub repo id. For files too large for memory, use
    :func:`predict_file`.
    """
    classifier = load(directory)
    frame = inputs if isinstance(inputs, pd.DataFrame) else _rows(inputs)
    result = _scored(classifier, frame)
    if output is not None:
        with _atomic_file(output) as temporary:
            result.to_csv(temporary, index=False)
    return result


def predict_file(
    directory: str | Path,
    inputs: str | Path,
    output: str | Path,
    batch_rows: int = 2048,
    progress: bool = True,
) -> dict[str, float]:
    """Stream a csv/jsonl/parquet file through the model, ``batch_rows`` at a time, into a CSV.

    Memory stays at one batch whatever the file's size; the output appears only when every row is
    scored. Returns the rows scored, seconds, and rows per second.
    """
    from tqdm.auto import tqdm

    from adapters.data.readers import stream_source

    classifier = load(directory)
    rows, started = 0, time.perf_counter()
    with (
        _atomic_file(output) as temporary,
        tqdm(unit="rows", desc="Predicting", disable=not progress) as bar,
    ):
        for frame in stream_source(str(inputs), batch_rows):
            _scored(classifier, frame).to_csv(
                temporary, mode="a" if rows else "w", header=not rows, index=False
            )
            rows += len(frame)
            bar.update(len(frame))
    seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / max(seconds, 1e-9), 1),
    }


def explain(
    directory: str | Path | Classifier,
    inputs: str | Path | pd.DataFrame,
    output: str | Path | None = None,
    top: int = 4,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Reason codes: per row, the ``top`` attributes (or words) that raised P(positive) most, by occlusion.

    A declined applicant must be told why; see :mod:`adapters.reasons` for what a reason is and
    ``docs/explain.md`` for what occlusion does not guarantee. Writes the CSV atomically if asked.
    ``directory`` may be a loaded :class:`Classifier`, so a caller that times or repeats it loads once.
    """
    from adapters.reasons import check_settings, explain_frame

    check_settings(top, batch_size)
    classifier = directory if isinstance(directory, Classifier) else load(directory)
    frame = inputs if isinstance(inputs, pd.DataFrame) else _rows(inputs)
    result, _ = explain_frame(classifier, frame, top=top, batch_size=batch_size)
    if output is not None:
        with _atomic_file(output) as temporary:
            result.to_csv(temporary, index=False)
    return result

"""Scoring a model on a split, and turning validation scores into the decisions saved with it.

The training loop validates with :class:`Scorer` every ``eval_every`` steps and scores its best adapter
with :func:`final_metrics`: test metrics after the calibration and cut-off fitted on validation. Curves,
baselines, ``adapters.evaluate`` and the benchmarks take their metric options (positive class, cut-off,
cost matrix) from :func:`metric_kwargs`, so every system is scored alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from accelerate import Accelerator

from adapters.errors import AdaptersUserError
from adapters.heads import class_logits, task_loss, to_scores, token_loss_sums
from adapters.metrics import compute_metrics
from adapters.metrics.calibration import (
    apply_calibration,
    choose_threshold,
    decision_summary,
    fit_calibration,
)
from adapters.metrics.tasks import best_thresholds
from adapters.recipe import Recipe

__all__ = [
    "FinalScores",
    "Scorer",
    "final_metrics",
    "fit_decision",
    "metric_kwargs",
    "model_inputs",
    "predict_probabilities",
    "predict_response_loss",
    "predict_tags",
]

Predict = Callable[..., tuple[np.ndarray, np.ndarray, float]]


def _nested_keys(matrix: dict[str, dict[str, float]] | None) -> list[str]:
    if not matrix:
        return []
    return [*matrix, *(pred for row in matrix.values() for pred in row)]


def metric_kwargs(
    recipe: Recipe,
    label_names: list[str],
    thresholds: list[float] | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Positive class id, threshold and cost matrix (as ids) for ``compute_metrics``; for the other
    tasks, the task (and multi-label's per-label ``thresholds``).

    ``threshold`` is the cut-off chosen after training; until then a rule (max_f1, min_cost) scores
    validation at 0.5.
    """
    if recipe.task != "classification":
        return {"task": recipe.task, "thresholds": thresholds, "label_names": label_names}
    positive = recipe.data.positive_label
    cost = None
    for key, names in (
        ("eval.cost_matrix", _nested_keys(recipe.eval.cost_matrix)),
        (
            "data.class_weights",
            list(recipe.data.class_weights) if isinstance(recipe.data.class_weights, dict) else [],
        ),
    ):
        unknown = sorted(set(names) - set(label_names))
        if unknown:
            raise AdaptersUserError(
                f"labels {unknown} are not labels of the data ({', '.join(label_names)})", where=key
            )
    binary_only = [
        key
        for key, used in (
            ("eval.calibration", recipe.eval.calibration == "isotonic"),
            ("eval.threshold", isinstance(recipe.eval.threshold, str)),
        )
        if used
    ]
    if binary_only and len(label_names) != 2:
        raise AdaptersUserError(
            f"isotonic calibration and threshold rules need two labels, the data has {len(label_names)}",
            where=binary_only[0],
        )
    if recipe.eval.cost_matrix:
        cost = [
            [float(recipe.eval.cost_matrix.get(true, {}).get(pred, 0.0)) for pred in label_names]
            for true in label_names
        ]
    return {
        "positive_label": label_names.index(positive) if positive in label_names else len(label_names) - 1,
        "threshold": threshold
        if threshold is not None
        else (recipe.eval.threshold if not isinstance(recipe.eval.threshold, str) else 0.5),
        "cost_matrix": cost,
    }


def fit_decision(
    recipe: Recipe,
    val_probabilities: np.ndarray,
    val_labels: np.ndarray,
    test_probabilities: np.ndarray,
    test_labels: np.ndarray,
    metric_args: dict[str, Any],
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Fit calibration, then the cut-off on calibrated validation scores; report both on test.

    Returns the ``calibration`` and ``threshold`` sections of ``metrics.json``: the fitted values, and test
    ECE / Brier / log loss before and after calibration, approval rate and cost per row at 0.5 and at the
    chosen cut-off. Also returns the calibrated validation and test probabilities.
    """
    positive, cost = metric_args["positive_label"], metric_args["cost_matrix"]
    spec = fit_calibration(recipe.eval.calibration, val_probabilities, val_labels, positive)
    calibrated_val = apply_calibration(val_probabilities, spec)
    calibrated_test = apply_calibration(test_probabilities, spec)
    binary = val_probabilities.shape[1] == 2
    threshold = (
        choose_threshold(
            recipe.eval.threshold, calibrated_val[:, positive], val_labels == positive, cost, positive
        )
        if binary
        else 0.5
    )
    measured = ["ece", "brier", "log_loss"]
    options = {**metric_args, "threshold": threshold}
    calibration = {
        "method": recipe.eval.calibration,
        "spec": spec,
        "fitted_on": "validation",
        "test_before": compute_metrics(measured, test_probabilities, test_labels, **options),
        "test_after": compute_metrics(measured, calibrated_test, test_labels, **options),
    }
    section: dict[str, Any] = {"rule": recipe.eval.threshold, "value": threshold}
    if binary:
        section["test"] = decision_summary(calibrated_test, test_labels, positive, threshold, cost)
    return {"calibration": calibration, "threshold": section}, calibrated_val, calibrated_test


def model_inputs(batch: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
    """The batch's tensors that the model takes (the collator adds labels and row indices)."""
    return {key: batch[key] for key in names if key in batch}


@torch.no_grad()
def predict_probabilities(scorer: Scorer, loader: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """Scores in row order (class or label probabilities, or numbers), the true labels and the mean
    loss, gathered over processes."""
    problem_type, scale = scorer.problem_type, scorer.scale
    probabilities, labels, positions, losses = [], [], [], []
    for batch in loader:
        logits = scorer.logits(batch, scorer.answer_ids)
        loss = task_loss(logits, batch["labels"], problem_type, reduction="none", scale=scale)
        gathered = scorer.accelerator.gather_for_metrics(
            (to_scores(logits, problem_type, scale), batch["labels"], batch["row_index"], loss)
        )
        for bucket, value in zip((probabilities, labels, positions, losses), gathered, strict=True):
            bucket.append(value.cpu())
    order = torch.cat(positions).argsort()
    return (
        torch.cat(probabilities)[order].numpy(),
        torch.cat(labels)[order].numpy(),
        float(torch.cat(losses).mean()),
    )


@torch.no_grad()
def predict_tags(scorer: Scorer, loader: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """Token classification: per row, the tag probabilities (words, tags) of its scored words and their
    true tags (object arrays in row order), and the mean loss; batches padded alike across processes."""
    accelerator = scorer.accelerator
    rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    losses = []
    for batch in loader:
        logits = scorer.logits(batch, None)
        loss = task_loss(logits, batch["labels"], None, reduction="none")
        probabilities = accelerator.pad_across_processes(logits.softmax(-1), dim=1)
        labels = accelerator.pad_across_processes(batch["labels"], dim=1, pad_index=-100)
        gathered = accelerator.gather_for_metrics((probabilities, labels, batch["row_index"], loss))
        probabilities, labels, positions, loss = (value.cpu() for value in gathered)
        for row_probabilities, row_labels, position in zip(probabilities, labels, positions, strict=True):
            scored = row_labels != -100
            rows[int(position)] = (row_probabilities[scored].numpy(), row_labels[scored].numpy())
        losses.append(loss)
    order = sorted(rows)
    scores = np.empty(len(order), dtype=object)
    truth = np.empty(len(order), dtype=object)
    for index, position in enumerate(order):
        scores[index], truth[index] = rows[position]
    return scores, truth, float(torch.cat(losses).mean())


@torch.no_grad()
def predict_response_loss(scorer: Scorer, loader: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """SFT: per row (summed response-token loss, response tokens) in row order, and the mean loss."""
    rows, positions = [], []
    for batch in loader:
        logits = scorer.logits(batch, None)
        pair = torch.stack(token_loss_sums(logits, batch["labels"], next_token=True), dim=-1)
        pair, position = scorer.accelerator.gather_for_metrics((pair, batch["row_index"]))
        rows.append(pair.cpu())
        positions.append(position.cpu())
    pairs = torch.cat(rows)[torch.cat(positions).argsort()].numpy()
    return pairs, np.zeros(len(pairs)), float(pairs[:, 0].sum() / max(pairs[:, 1].sum(), 1.0))


@dataclass
class Scorer:
    """A prepared model and what its task needs to score a loader: one call per validation or test pass."""

    model: Any
    accelerator: Accelerator
    input_names: list[str]
    answer_ids: list[int] | None
    problem_type: str
    scale: tuple[float, float]
    task: str

    def __call__(self, loader: Any, predict: Predict | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """Scores, true labels and mean loss of ``loader`` by the task's ``predict_*`` (or ``predict``)."""
        if predict is None:
            predict = {"token_classification": predict_tags, "sft": predict_response_loss}.get(
                self.task, predict_probabilities
            )
        self.model.eval()
        return predict(self, loader)

    def logits(self, batch: dict[str, torch.Tensor], answer_ids: list[int] | None) -> torch.Tensor:
        """The model's float32 logits for one batch (at ``answer_ids`` for a verbalizer head)."""
        return class_logits(self.model, model_inputs(batch, self.input_names), answer_ids).float()


class FinalScores(NamedTuple):
    """The best model's ``metrics.json`` sections and its scores, as :func:`final_metrics` measured them."""

    metrics: dict[str, Any]
    test_probabilities: np.ndarray  # calibrated for classification
    raw_test_probabilities: np.ndarray  # what the saved weights give
    validation_probabilities: np.ndarray | None  # calibrated (classification; a curve's stack)


def final_metrics(
    recipe: Recipe,
    label_names: list[str],
    scorer: Scorer,
    val_loader: Any,
    test_loader: Any,
    best_validation: dict[str, float],
    base_config: Any,
) -> FinalScores:
    """Score the best model on test, after fitting on validation what is saved with it.

    Multi-label gets per-label cut-offs, classification a calibration and a cut-off; both are written
    into ``base_config`` (they travel in ``config.json``). ``best_validation`` are the validation scores
    measured when the model was best, reported as they are (no second pass).
    """
    metric_args = metric_kwargs(recipe, label_names)
    if recipe.task == "multi_label":
        val_scores, val_labels, _ = scorer(val_loader, predict_probabilities)
        thresholds = best_thresholds(val_scores, val_labels)
        base_config.label_thresholds = thresholds
        metric_args = metric_kwargs(recipe, label_names, thresholds)
    raw_test, labels, loss = scorer(test_loader)
    test_probabilities, validation_probabilities, decision = raw_test, None, {}
    if recipe.task == "classification":
        val_scores, val_labels, _ = scorer(val_loader, predict_probabilities)
        decision, validation_probabilities, test_probabilities = fit_decision(
            recipe, val_scores, val_labels, raw_test, labels, metric_args
        )
        base_config.calibration = decision["calibration"]["spec"]
        base_config.decision_threshold = decision["threshold"]["value"]
        metric_args = {**metric_args, "threshold": base_config.decision_threshold}
    metrics = {
        "validation": best_validation,
        "test": {
            "loss": loss,
            **compute_metrics(recipe.eval.metrics, test_probabilities, labels, **metric_args),
        },
        **decision,
    }
    return FinalScores(metrics, test_probabilities, raw_test, validation_probabilities)

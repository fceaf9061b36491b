"""The Accelerate loop: accumulation equivalence, best-adapter selection, early stopping, class weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adapters.data import prepare_data
from adapters.recipe import load_recipe
from adapters.training import run_training
from tests.conftest import make_frame


def _train(recipe_dict: dict, rows: int = 80):
    recipe = load_recipe(recipe_dict)
    data = prepare_data(recipe.data, make_frame(rows))
    return run_training(recipe, data, logging_dir=None, progress=False)


def _adapter_weights(outcome) -> dict[str, torch.Tensor]:
    return {
        name: param.detach().clone()
        for name, param in outcome.built.model.named_parameters()
        if param.requires_grad
    }


def test_gradient_accumulation_matches_one_big_batch(recipe_for) -> None:
    """8 rows as one batch == 2 micro-batches of 4 accumulated (same rows: all texts are 3 tokens + 2)."""
    common = {
        "max_steps": 1,
        "learning_rate": 1e-2,
        "max_grad_norm": None,
        "warmup_ratio": 0.0,
        "scheduler": "constant",
        "eval_every": 1,
    }
    method = {"lora_dropout": 0.0}
    big = _train(recipe_for(training={**common, "per_device_batch_size": 8}, method=method))
    small = _train(
        recipe_for(
            training={**common, "per_device_batch_size": 4, "gradient_accumulation_steps": 2}, method=method
        )
    )
    big_weights, small_weights = _adapter_weights(big), _adapter_weights(small)
    assert big_weights.keys() == small_weights.keys()
    initial = _train(
        recipe_for(training={**common, "learning_rate": 1e-12, "per_device_batch_size": 8}, method=method)
    )
    moved = max(float((big_weights[k] - w).abs().max()) for k, w in _adapter_weights(initial).items())
    assert moved > 1e-3  # the step really changed the weights
    for name in big_weights:
        torch.testing.assert_close(big_weights[name], small_weights[name], atol=2e-6, rtol=1e-4)


def test_learns_and_keeps_best_adapter(recipe_for) -> None:
    outcome = _train(recipe_for(training={"epochs": 4, "eval_every": 3}), rows=120)
    scores = [record["validation_roc_auc"] for record in outcome.history]
    assert outcome.metrics["validation"]["roc_auc"] == pytest.approx(max(scores), abs=1e-9)
    assert outcome.best_step == outcome.history[int(np.argmax(scores))]["step"]
    assert outcome.metrics["test"]["roc_auc"] > 0.8  # the toy task is learnable
    assert set(outcome.metrics["test"]) >= {"roc_auc", "accuracy", "f1", "log_loss", "expected_cost", "loss"}
    assert outcome.test_probabilities.shape == (24, 2)
    seconds = [record["seconds"] for record in outcome.history]
    assert seconds == sorted(seconds) and 0 < seconds[-1] <= outcome.seconds + 1e-3  # rounded to ms
    cost = outcome.cost  # tokens and FLOPs of the steps taken: 72 rows x 4 epochs, three-word texts
    assert cost["train_tokens"] == 4 * 72 * 5  # [CLS] + 3 words + [SEP], one token each, no padding
    assert cost["padding_fraction"] == 0.0 and cost["train_tokens_computed"] == cost["train_tokens"]
    assert cost["estimated_train_flops"] > 0 and cost["achieved_gflops_per_second"] > 0
    assert cost["train_tokens_per_second"] == pytest.approx(cost["train_tokens"] / outcome.seconds, rel=0.01)
    assert 0 < cost["checkpoint_bytes"] < cost["total_params"] * 4 / 2


def test_early_stopping_stops(recipe_for) -> None:
    # lr 0 never improves the primary metric after the first evaluation: stop after `patience` evals.
    outcome = _train(
        recipe_for(
            training={"epochs": 20, "eval_every": 1, "learning_rate": 1e-12, "early_stopping_patience": 2}
        )
    )
    assert len(outcome.history) == 3
    assert outcome.steps == 3


def test_min_steps_gives_a_small_training_set_more_epochs(recipe_for) -> None:
    # 40 rows: 24 train, 3 steps per epoch of 8; one epoch would be 3 steps, min_steps makes it 8
    outcome = _train(recipe_for(training={"epochs": 1, "min_steps": 8, "eval_every": 4}), rows=40)
    assert outcome.steps == 8 and [record["step"] for record in outcome.history] == [4, 8]
    assert outcome.history[-1]["epoch"] == pytest.approx(8 / 3, abs=1e-3)
    capped = _train(recipe_for(training={"epochs": 1, "min_steps": 8, "max_steps": 3}), rows=40)
    assert capped.steps == 3  # max_steps is exact and wins


def test_class_weights_train(recipe_for) -> None:
    outcome = _train(recipe_for(data={"class_weights": "balanced"}, training={"max_steps": 2}))
    assert outcome.steps == 2


def test_runs_with_different_precision_in_one_process(recipe_for) -> None:
    """A notebook or sweep trains again in the same process; Accelerate's state must not pin the first."""
    first = _train(recipe_for(training={"max_steps": 1, "mixed_precision": "no"}))
    second = _train(recipe_for(training={"max_steps": 1, "mixed_precision": "bf16"}))
    assert first.cost["mixed_precision"] == "no" and second.cost["mixed_precision"] == "bf16"

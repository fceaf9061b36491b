"""The one training loop, on ``accelerate.Accelerator``: the same code on one CPU, one GPU or many processes.

Topology (processes, devices, mixed precision defaults) comes from ``accelerate launch`` and the files in
``recipes/accelerate/``; nothing here branches on it. The loop keeps the best adapter by the primary
validation metric, stops early when it stops improving, and reports validation and test metrics of that
best adapter.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType, set_seed
from tqdm.auto import tqdm

from adapters.checkpoint import CheckpointDir, LoopState, data_fingerprint, latest_checkpoint, trainable_state
from adapters.cost import EnergyMeter, cost_report, count_tokens, reset_peak_rss, total_tokens
from adapters.data import PreparedData
from adapters.data.tokenize import make_dataloader, tokenize_splits
from adapters.dropout import use_fast_cpu_dropout
from adapters.errors import AdaptersUserError
from adapters.first_token import restore_full_last_layer, use_first_token_last_layer
from adapters.heads import PROBLEM_TYPES, class_logits, class_weight_tensor, task_loss, verbalizer_of
from adapters.metrics import compute_metrics
from adapters.modeling import BuiltModel, base_model_of, build_model
from adapters.recipe import Recipe
from adapters.scoring import Scorer, final_metrics, metric_kwargs, model_inputs

__all__ = [
    "TrainingOutcome",
    "run_training",
    "no_accelerator_device",
    "check_topology",
]

logger = get_logger(__name__)


@dataclass
class TrainingOutcome:
    """The trained (best) model and everything measured about it."""

    accelerator: Accelerator
    built: BuiltModel
    metrics: dict[str, dict[str, float]]
    test_probabilities: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=list)
    best_step: int = 0
    steps: int = 0
    seconds: float = 0.0
    cost: dict[str, Any] = field(default_factory=dict)
    full_state: dict[str, torch.Tensor] | None = None  # gathered weights when FSDP/DeepSpeed sharded them
    raw_test_probabilities: np.ndarray | None = None  # before calibration: what the saved weights give
    validation_probabilities: np.ndarray | None = None  # calibrated (classification; a curve's stack)
    privacy: dict[str, Any] | None = None  # DP-SGD: spent epsilon, delta, noise, ... (adapters/privacy.py)


def check_topology(recipe: Recipe, distributed_type: DistributedType) -> None:
    """Refuse the recipe/launcher pairs known to fail late or silently."""
    if distributed_type == DistributedType.FSDP and recipe.model.quantization == "8bit":
        raise AdaptersUserError(
            "FSDP cannot shard bitsandbytes 8-bit weights; use 4bit (QLoRA-FSDP) or DDP "
            "(recipes/accelerate/multi-gpu.yaml)",
            where="model.quantization",
        )


def no_accelerator_device() -> bool:
    """True when only the CPU can run the model.

    Accelerate must then be told so explicitly: ``accelerate launch --multi_gpu`` on a CPU-only machine
    otherwise starts N processes that each believe they run alone (no process group, N artifacts).
    """
    xpu = getattr(torch, "xpu", None)
    return not (
        torch.cuda.is_available()
        or torch.backends.mps.is_available()
        or (xpu is not None and xpu.is_available())
    )


def _evaluation_record(
    loop: LoopState, steps_per_epoch: int, train_loss: float, scores: dict[str, float], seconds: float
) -> dict[str, Any]:
    """One history entry; ``seconds`` is the run's wall time so far, evaluations included (time to a
    target score, as benchmarks/train_vs_trainer.py compares it)."""
    return {
        "step": loop.step,
        "epoch": round(loop.step / steps_per_epoch, 3),
        "seconds": round(seconds, 3),
        "train_loss": train_loss,
        **{f"validation_{key}": value for key, value in scores.items()},
    }


def run_training(
    recipe: Recipe,
    data: PreparedData,
    logging_dir: Path | None = None,
    progress: bool = True,
    checkpoint_root: Path | None = None,
    resume: bool = False,
    full_finetune: bool = False,
) -> TrainingOutcome:
    """Set up → (resume) → train (evaluate, early-stop, keep best, checkpoint) → evaluate best on test.

    ``full_finetune`` trains every weight of the base model without PEFT (a learning curve's comparison;
    such a run is not saved as an artifact)."""
    import time

    from transformers import get_scheduler

    cfg = recipe.training
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    trackers = cfg.log_with if logging_dir is not None else []
    if cfg.deterministic:  # cuBLAS needs this before its first call to have deterministic kernels
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    # Accelerate keeps one AcceleratorState per process; a second run in the same process (a notebook, a
    # sweep) with another mixed precision would be refused. The process group (PartialState) stays.
    AcceleratorState._reset_state()
    reset_peak_rss()  # the cost report's peak memory is this run's, also after another run in this process
    accelerator = Accelerator(
        cpu=no_accelerator_device(),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        mixed_precision=cfg.mixed_precision,
        log_with=trackers or None,
        project_dir=str(logging_dir) if logging_dir else None,
    )
    if accelerator.device.type == "cuda":  # the cost report's peak is this run's, not the process's
        torch.cuda.reset_peak_memory_stats(accelerator.device)
    # Seed before the PEFT layers exist: their initial weights come from this RNG (trl #6688).
    set_seed(cfg.seed, deterministic=cfg.deterministic)

    # Set-up: steps first (AdaLoRA's schedule needs them), then model, then data.
    per_step = cfg.per_device_batch_size * accelerator.num_processes * cfg.gradient_accumulation_steps
    steps_per_epoch = max(1, math.ceil(len(data.frames["train"]) / per_step))
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch), cfg.min_steps or 0)
    check_topology(recipe, accelerator.distributed_type)
    if cfg.privacy is not None:  # refused settings and a missing Opacus are reported before loading
        from adapters.privacy import check_private_training, make_private

        check_private_training(
            recipe, accelerator.num_processes, accelerator.distributed_type, accelerator.mixed_precision
        )
    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
    built = build_model(
        recipe.model,
        recipe.method,
        data.label_names,
        data.positive_label,
        metric_kwargs(recipe, data.label_names).get("threshold", 0.5),
        total_steps,
        task=recipe.task,
        device=accelerator.device,
        gradient_checkpointing=cfg.gradient_checkpointing,
        sharded=accelerator.distributed_type == DistributedType.FSDP,
        full_finetune=full_finetune,
    )
    # Undone before the model leaves this function (a plain model for saving, export and explanations).
    first_token_layer = use_first_token_last_layer(built.model) if cfg.first_token_last_layer else None
    if first_token_layer is not None:
        logger.info("the last layer computes the first token only (its head reads no other)")
    if cfg.fast_cpu_dropout and accelerator.device.type == "cpu":
        swapped = use_fast_cpu_dropout(built.model)
        logger.info(
            "%d dropout layers draw their masks two per random number", swapped, main_process_only=True
        )
    input_names = list(built.tokenizer.model_input_names)
    verbalizer = verbalizer_of(base_model_of(built.model))
    answer_ids = verbalizer["token_ids"] if verbalizer else None
    with accelerator.main_process_first():
        tokenized = tokenize_splits(
            data.to_datasets(),
            built.tokenizer,
            recipe.data.max_length,
            verbalizer and verbalizer["question"],
            word_tags=recipe.task == "token_classification",
            responses=recipe.task == "sft",
        )
    loaders = {
        name: make_dataloader(
            tokenized[name],
            built.tokenizer,
            cfg.per_device_batch_size if name == "train" else cfg.eval_batch_size,
            train=name == "train",
            seed=cfg.seed,
            group_size=cfg.per_device_batch_size * accelerator.num_processes,
            group_by_length=cfg.group_by_length,
        )
        for name in ("train", "validation", "test")
    }
    sampler = loaders["train"].sampler
    trainable = [param for param in built.model.parameters() if param.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    private = None
    if cfg.privacy is not None:  # DP-SGD: Opacus's optimizer and Poisson loader; the model stays a PeftModel
        private = make_private(
            built.model, optimizer, loaders["train"], total_steps, cfg.privacy, len(tokenized["train"])
        )
        optimizer, loaders["train"] = private.optimizer, private.train_loader
    # Accelerate steps a prepared scheduler once per process per optimizer step: count in those units.
    scheduler = get_scheduler(
        cfg.scheduler,
        optimizer,
        num_warmup_steps=math.ceil(cfg.warmup_ratio * total_steps) * accelerator.num_processes,
        num_training_steps=total_steps * accelerator.num_processes,
    )
    model, optimizer, train_loader, val_loader, test_loader, scheduler = accelerator.prepare(
        built.model, optimizer, loaders["train"], loaders["validation"], loaders["test"], scheduler
    )
    problem_type = "causal_lm" if recipe.task == "sft" else PROBLEM_TYPES[recipe.task]
    scale = (0.0, 1.0)
    if recipe.task == "regression":  # learn the standardised target; the scale travels in config.json
        targets = data.frames["train"]["label"].astype(float)
        scale = (float(targets.mean()), float(targets.std(ddof=0)) or 1.0)
        config = base_model_of(built.model).config
        config.target_mean, config.target_std = scale
    weights = None
    if recipe.task == "classification":
        weights = class_weight_tensor(
            recipe.data.class_weights, data.frames["train"]["label"].to_numpy(), data.label_names
        )
    if weights is not None:
        weights = weights.to(accelerator.device)
    metric_args = metric_kwargs(recipe, data.label_names)
    scorer = Scorer(model, accelerator, input_names, answer_ids, problem_type, scale, recipe.task)
    unwrapped = accelerator.unwrap_model(model)
    sign = 1.0 if recipe.eval.greater_is_better else -1.0

    loop, best_state = LoopState(), None
    checkpoints = None
    if checkpoint_root is not None and cfg.checkpoint_every:
        checkpoints = CheckpointDir(checkpoint_root, accelerator, unwrapped, cfg.keep_checkpoints)
        identity = {
            "recipe": recipe.to_dict(),
            "data_sha256": data_fingerprint(data.frames),
            "num_processes": accelerator.num_processes,
        }
        checkpoints.check_run(identity, resume)
        latest = latest_checkpoint(checkpoint_root) if resume else None
        if latest is not None:
            loop, best_state = checkpoints.restore(latest)
            logger.info("resuming from %s (step %d)", latest, loop.step, main_process_only=True)
        elif resume:
            logger.warning("no complete checkpoint in %s; starting at step 0", checkpoint_root)
    if trackers:
        accelerator.init_trackers("train", config=recipe.to_flat_dict())

    def validate() -> dict[str, float]:
        probs, labels, loss = scorer(val_loader)
        return {"loss": loss, **compute_metrics(recipe.eval.metrics, probs, labels, **metric_args)}

    # Train.
    eval_every = steps_per_epoch if cfg.eval_every == "epoch" else cfg.eval_every
    show = progress and accelerator.is_local_main_process
    bar = tqdm(total=total_steps, initial=loop.step, desc="Training", disable=not show)
    meter = EnergyMeter(
        cfg.track_energy, cfg.energy_country, accelerator.is_main_process, accelerator.num_processes
    )
    started, stop = time.perf_counter(), loop.step >= total_steps
    running_loss = [torch.tensor(value) for value in loop.running_loss]
    while not stop:
        model.train()
        sampler.set_epoch(loop.epoch)  # the order is a function of (seed, epoch); resumes skip what was seen
        batches = (
            accelerator.skip_first_batches(train_loader, loop.batches_in_epoch)
            if loop.batches_in_epoch
            else train_loader
        )
        batches.set_epoch(loop.epoch)
        for batch in batches:
            with accelerator.accumulate(model):
                logits = class_logits(model, model_inputs(batch, input_names), answer_ids)
                if private is None:
                    loss = task_loss(logits.float(), batch["labels"], problem_type, weights, scale=scale)
                else:  # per-example losses, averaged: DP-SGD clips each example's gradient
                    losses = task_loss(logits.float(), batch["labels"], problem_type, weights, "none", scale)
                    loss = private.mean_loss(losses, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm and private is None:  # DP: per example
                    accelerator.clip_grad_norm_(trainable, cfg.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients and recipe.method.type == "adalora" and not full_finetune:
                    unwrapped.base_model.update_and_allocate(loop.step + 1)
                scheduler.step()
                optimizer.zero_grad()
            if not torch.isfinite(loss):
                raise RuntimeError(
                    f"training diverged at step {loop.step + 1} (loss {float(loss)}); lower "
                    "training.learning_rate or use mixed_precision: no"
                )
            loop.batches_in_epoch += 1
            count_tokens(batch, loop.tokens)
            running_loss.append(loss.detach().float())
            if not accelerator.sync_gradients:
                continue
            loop.step += 1
            bar.update(1)
            if loop.step % eval_every == 0 or loop.step == total_steps:
                train_loss = float(accelerator.gather(torch.stack(running_loss)).mean())
                running_loss = []
                scores = validate()
                model.train()
                elapsed = loop.seconds_before + time.perf_counter() - started
                record = _evaluation_record(loop, steps_per_epoch, train_loss, scores, elapsed)
                loop.history.append(record)
                accelerator.log(
                    {key: value for key, value in record.items() if key != "step"}, step=loop.step
                )
                primary = scores[recipe.eval.primary_metric]
                bar.set_postfix(loss=f"{train_loss:.3f}", **{recipe.eval.primary_metric: f"{primary:.3f}"})
                best, stop = loop.judge(
                    scores, primary * sign, best_state is None, cfg.early_stopping_patience
                )
                if best:
                    best_state = trainable_state(unwrapped)
                    # AdaLoRA keeps changing its rank pattern; saving prunes by it, so keep the best one too
                    peft_config = getattr(unwrapped, "peft_config", {}).get("default")
                    loop.best_ranks = copy.deepcopy(getattr(peft_config, "rank_pattern", None))
                elif stop:
                    logger.info("early stopping at step %d (best step %d)", loop.step, loop.best_step)
            stop = stop or loop.step >= total_steps
            if checkpoints is not None and not stop and loop.step % cfg.checkpoint_every == 0:
                loop.running_loss = [float(value) for value in running_loss]
                loop.seconds_before += time.perf_counter() - started
                started = time.perf_counter()
                checkpoints.save(loop, best_state)
            if stop:
                break
        else:
            loop.epoch, loop.batches_in_epoch = loop.epoch + 1, 0
    bar.close()
    seconds = loop.seconds_before + time.perf_counter() - started
    energy = meter.stop()

    # Restore the best adapter; its validation scores were measured when it was best (no second pass).
    if best_state is not None:
        unwrapped.load_state_dict(best_state, strict=False)
        if loop.best_ranks is not None:
            unwrapped.peft_config["default"].rank_pattern = loop.best_ranks
    final = final_metrics(
        recipe,
        data.label_names,
        scorer,
        val_loader,
        test_loader,
        loop.best_scores,
        base_model_of(unwrapped).config,
    )
    metrics = final.metrics
    accelerator.log(
        {
            f"best_{split}_{key}": value
            for split in ("validation", "test")
            for key, value in metrics[split].items()
        },
        step=loop.step,
    )
    # Flush logs now; the process group lives on until the artifact is saved.
    for tracker in accelerator.trackers:
        tracker.finish()
    # FSDP / DeepSpeed hold shards: gather the full weights (on every process) for the main one to save;
    # saving the unwrapped model there would write an empty adapter (peft #2892).
    full_state = accelerator.get_state_dict(model) if sharded else None
    if first_token_layer is not None:
        restore_full_last_layer(first_token_layer)
    # Without Accelerate's autocast wrapper: what is saved and reloaded is what gets compared.
    built.model = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    outcome = TrainingOutcome(
        accelerator,
        built,
        metrics,
        final.test_probabilities,
        loop.history,
        loop.best_step,
        loop.step,
        seconds,
    )
    outcome.full_state, outcome.raw_test_probabilities = full_state, final.raw_test_probabilities
    outcome.validation_probabilities = final.validation_probabilities
    tokens = total_tokens(loop.tokens, accelerator)
    cost = cost_report(
        built,
        accelerator,
        seconds,
        loop.step,
        per_step,
        tokens,
        cfg.gradient_checkpointing,
        first_token_layer,
    )
    outcome.cost = {**cost, "energy": energy}
    outcome.privacy = private.report() if private is not None else None
    return outcome

"""Differentially private training (DP-LoRA): DP-SGD with Opacus on the trainable parameters only.

What is protected: the adapter and head weights are (epsilon, delta)-differentially private with respect
to adding or removing one *training* row. The frozen base model never sees a gradient, so only the
trainable parameters get per-example gradients (cheap for LoRA: a few rank-r matrices and the head).
Validation rows (early stopping, calibration, threshold) and test rows are not protected; see
``docs/privacy.md``.

How it composes with the one training loop (``adapters.training.run_training``):

* the model is not wrapped: Opacus attaches its per-sample-gradient hooks to the PEFT model in place
  (``wrap_model=False``), so Accelerate, ``trainable_state``, ``load_state_dict`` and ``save_pretrained``
  see the same ``PeftModel`` as without privacy;
* the optimizer becomes Opacus's ``DPOptimizer`` (per-example clipping to ``max_grad_norm``, Gaussian
  noise, division by the expected batch size), so the loop's own gradient clipping is skipped;
* the training loader samples each row independently with probability ``q`` per step (Poisson sampling,
  the assumption of the accountant); batches vary in size and may be empty.

The noise multiplier is chosen from the number of optimizer steps the loop will take, not whole epochs:
``make_private_with_epsilon`` takes whole epochs and truncates ``epochs / q``, which would mis-count runs
with ``max_steps`` or fractional epochs. The accountant records the steps actually taken, so a run that
stops early reports the (smaller) epsilon it really spent.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

from adapters.errors import AdaptersUserError

__all__ = [
    "PrivateTraining",
    "require_opacus",
    "check_private_training",
    "make_private",
    "INSTALL_HINT",
    "DP_METHODS",
]

INSTALL_HINT = "pip install 'peft-recipes[dp]'"
_WHERE = "training.privacy"
# Methods whose per-example gradients tests/test_privacy.py compares with one backward pass per example.
# Not prompt tuning: PEFT computes the prompt once per batch and repeats it, so Opacus would see one
# "example" for the whole batch and clip the batch's gradient instead of each row's.
DP_METHODS = ("lora", "rslora", "ln_tuning")


def require_opacus() -> Any:
    """Import Opacus, or say in one line how to install it (it is an optional extra)."""
    try:
        import opacus
    except ImportError:
        raise AdaptersUserError(f"private training needs Opacus: {INSTALL_HINT}", where=_WHERE) from None
    try:  # the non-wrapping mode (hooks on the PEFT model itself) came with Opacus 1.6
        from opacus.grad_sample.grad_sample_module import GradSampleHooks  # noqa: F401
    except ImportError:
        raise AdaptersUserError(
            f"private training needs Opacus >= 1.6 (found {getattr(opacus, '__version__', '?')}): "
            f"{INSTALL_HINT} --upgrade",
            where=_WHERE,
        ) from None
    return opacus


def check_private_training(
    recipe: Any, num_processes: int, distributed_type: str = "NO", mixed_precision: str | None = "no"
) -> None:
    """Refuse, before the model is loaded, the settings DP-SGD here is not built or tested for.

    Each refusal names the reason; silently training with a wrong guarantee is the failure to avoid.
    """
    require_opacus()
    cfg = recipe.training
    refusals = [
        (
            num_processes > 1 or str(distributed_type).split(".")[-1] in ("FSDP", "DEEPSPEED", "MEGATRON_LM"),
            f"runs on one process only ({num_processes} launched): per-example clipping and Poisson "
            "sampling are not wired to Accelerate's multi-process training here; launch one process",
        ),
        (
            recipe.method.type not in DP_METHODS,
            f"supports method.type {', '.join(DP_METHODS)} (per-example gradients verified), "
            f"not {recipe.method.type}",
        ),
        (
            cfg.gradient_accumulation_steps > 1,
            "does not combine with training.gradient_accumulation_steps > 1 (each step must be one "
            "Poisson-sampled batch for the accountant); raise training.per_device_batch_size instead",
        ),
        (
            recipe.model.quantization != "none",
            f"is not supported with model.quantization: {recipe.model.quantization} (untested with "
            "bitsandbytes layers); use quantization: none",
        ),
        (
            mixed_precision == "fp16",
            "does not combine with fp16: its loss scaling multiplies per-example gradients before they "
            "are clipped; use bf16 or no mixed precision",
        ),
        (
            cfg.checkpoint_every is not None,
            "does not combine with training.checkpoint_every: the accountant and the Poisson sampler's "
            "state are not checkpointed, so a resumed run would under-count epsilon",
        ),
        (
            cfg.gradient_checkpointing,
            "does not combine with training.gradient_checkpointing: recomputed forward passes would "
            "record activations twice in Opacus's per-example hooks",
        ),
    ]
    for refused, reason in refusals:
        if refused:
            raise AdaptersUserError(f"DP-SGD {reason}", where=_WHERE)


def _check_model(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """The three traps measured with Opacus: train mode, frozen means requires_grad=False, known layers."""
    from opacus.grad_sample.grad_sample_module import GradSampleHooks

    optimized = {id(param) for group in optimizer.param_groups for param in group["params"]}
    trainable = {id(param) for param in model.parameters() if param.requires_grad}
    if optimized != trainable:  # hooks go where requires_grad is: a frozen weight must say so
        raise RuntimeError(
            f"{len(trainable ^ optimized)} parameters differ between requires_grad and the optimizer; "
            "frozen parameters must have requires_grad=False before DP-SGD wraps the model"
        )
    unsupported = sorted(
        f"{name} ({type(module).__name__})"
        for name, module in model.named_modules()
        if any(param.requires_grad for param in module.parameters(recurse=False))
        and type(module) not in GradSampleHooks.GRAD_SAMPLERS
    )
    if unsupported:
        layers = ", ".join(sorted(kind.__name__ for kind in GradSampleHooks.GRAD_SAMPLERS))
        raise AdaptersUserError(
            f"DP-SGD needs every trainable weight in a layer with an exact Opacus per-example gradient "
            f"rule ({layers}); this method trains {', '.join(unsupported[:3])}"
            f"{' and more' if len(unsupported) > 3 else ''}; use plain LoRA",
            where="method.type",
        )
    # Opacus records activations only in train mode; a model left in eval mode fails at the first
    # backward pass with "No activations detected".
    model.train()


@dataclass
class PrivateTraining:
    """The private optimizer and loader for the loop, and the privacy spent, reported at the end."""

    engine: Any  # opacus.PrivacyEngine: holds the accountant
    hooks: Any  # opacus GradSampleHooks attached to the model in place
    model: torch.nn.Module  # the same PEFT model, hooks attached
    optimizer: Any  # opacus DPOptimizer
    train_loader: Any  # Poisson-sampled loader (opacus DPDataLoader)
    target_epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    planned_steps: int
    max_grad_norm: float
    accountant: str
    n_train: int

    @staticmethod
    def mean_loss(losses: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch loss as a mean of per-example losses (Opacus undoes the mean per example).

        A weighted or token-pooled mean over the batch would make one example's gradient depend on the
        others and break the per-example sensitivity. The placeholder row of an empty Poisson draw
        (``row_index`` -1) has weight 0, so its gradient is exactly zero.
        """
        real = (batch["row_index"] >= 0).to(losses.dtype)
        return (losses * real).sum() / real.sum().clamp(min=1)

    def spent(self) -> dict[str, Any]:
        """Epsilon spent over the steps taken, at ``delta``, and the mechanism's parameters."""
        import opacus

        steps = sum(int(count) for _, _, count in self.engine.accountant.history)
        epsilon = float(self.engine.accountant.get_epsilon(delta=self.delta)) if steps else 0.0
        return {
            "epsilon": epsilon,
            "delta": self.delta,
            "target_epsilon": self.target_epsilon,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "expected_batch_size": self.sample_rate * self.n_train,
            "steps": steps,
            "planned_steps": self.planned_steps,
            "max_grad_norm": self.max_grad_norm,
            "accountant": self.accountant,
            "train_rows": self.n_train,
            "mechanism": f"DP-SGD, Poisson sampling, per-example clipping (opacus {opacus.__version__})",
            "protects": "training rows (adapter and head weights); not validation or test rows",
        }

    def report(self) -> dict[str, Any]:
        """:meth:`spent`, then take Opacus's hooks off the model so later passes run as plain PEFT."""
        figures = self.spent()
        self.hooks.cleanup()
        for param in self.model.parameters():  # DPOptimizer's own per-parameter buffers
            if hasattr(param, "summed_grad"):
                del param.summed_grad
        return figures


class _PlaceholderOnEmpty:
    """Collate Poisson batches; an empty draw becomes one placeholder row with loss weight 0.

    Poisson sampling may draw no row at all; that step must still happen (the released update is pure
    noise). Transformers' attention cannot run a batch of 0 rows, so the step runs one placeholder row
    (``row_index`` -1) whose loss :meth:`PrivateTraining.mean_loss` multiplies by 0: its per-example
    gradient is exactly zero, so the update depends on no row.
    """

    def __init__(self, collate: Any, dataset: Any) -> None:
        self.collate, self.dataset = collate, dataset

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if features:
            return self.collate(features)
        batch = self.collate([dict(self.dataset[0])])  # a copy: the collate pops keys
        batch["row_index"] = torch.full_like(batch["row_index"], -1)
        return batch


def _poisson_loader(train_loader: Any, sample_rate: float, steps_per_epoch: int) -> Any:
    """The same rows and collate function, each row drawn independently with ``sample_rate`` per step.

    Opacus's own DPDataLoader would count ``int(1 / q)`` steps per epoch (floating point can make that one
    short) and cannot give a transformer an empty batch; its sampler is used with an exact step count.
    """
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler
    from torch.utils.data import DataLoader

    dataset = train_loader.dataset
    sampler = UniformWithReplacementSampler(
        num_samples=len(dataset),
        sample_rate=sample_rate,
        generator=train_loader.generator,
        steps=steps_per_epoch,
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=_PlaceholderOnEmpty(train_loader.collate_fn, dataset),
        generator=train_loader.generator,
    )


def make_private(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: Any,
    total_steps: int,
    privacy: Any,
    n_train: int,
) -> PrivateTraining:
    """Make (model, optimizer, train loader) DP-SGD for ``total_steps`` steps at ``privacy.epsilon``.

    ``train_loader`` is the library's length-grouped loader; its batch size b sets the sampling rate
    q = 1 / ceil(n / b) (expected batch about b), and ``ceil(n / b)`` steps make an epoch, as without
    privacy. ``privacy.delta`` None means 1 / n.
    """
    require_opacus()
    from opacus import PrivacyEngine
    from opacus.accountants.utils import get_noise_multiplier

    _check_model(model, optimizer)
    delta = privacy.delta if privacy.delta is not None else 1.0 / n_train
    steps_per_epoch = len(train_loader)
    sample_rate = 1.0 / steps_per_epoch
    with warnings.catch_warnings():  # "secure RNG turned off": noise comes from torch's seeded RNG
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(accountant=privacy.accountant)
        noise = get_noise_multiplier(
            target_epsilon=privacy.epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=total_steps,
            accountant=privacy.accountant,
        )
        hooks, dp_optimizer, _ = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=train_loader,
            noise_multiplier=noise,
            max_grad_norm=privacy.max_grad_norm,
            poisson_sampling=False,  # the Poisson loader is built below, with exactly one epoch of steps
            wrap_model=False,
        )
    # LoRA's input does not require grad (the base is frozen); PyTorch warns once per hooked layer.
    warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")
    return PrivateTraining(
        engine=engine,
        hooks=hooks,
        model=model,
        optimizer=dp_optimizer,
        train_loader=_poisson_loader(train_loader, sample_rate, steps_per_epoch),
        target_epsilon=privacy.epsilon,
        delta=delta,
        noise_multiplier=float(noise),
        sample_rate=sample_rate,
        planned_steps=total_steps,
        max_grad_norm=privacy.max_grad_norm,
        accountant=privacy.accountant,
        n_train=n_train,
    )

"""Checkpoints that let a pre-empted run finish bit-for-bit as if it had never stopped.

A checkpoint is Accelerate's ``save_state`` (optimizer, scheduler, RNG states of every process, the
accumulation step counter) plus what the loop itself knows (:class:`LoopState`: step, epoch, position in
the epoch, history, best score, the best adapter's weights). Model weights are safetensors and hold only
the trainable tensors (adapter and head): the frozen base model is rebuilt from its checkpoint on resume.

Atomicity: a checkpoint is written into ``.step-NNNNNNN.tmp`` and renamed to ``step-NNNNNNN`` only when
complete; :func:`latest_checkpoint` ignores anything else, so a run killed mid-save resumes from the
previous one. Only the newest ``keep`` checkpoints stay.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from adapters.errors import AdaptersUserError

__all__ = [
    "LoopState",
    "CheckpointDir",
    "latest_checkpoint",
    "trainable_state",
    "data_fingerprint",
]

_NAME = re.compile(r"^step-(\d{7})$")
_LOOP_STATE = "loop_state.json"  # written last: its presence marks a complete checkpoint
_TRAINABLE = "trainable.safetensors"
_BEST = "best.safetensors"
_RUN = "run.json"


@dataclass
class LoopState:
    """Everything the training loop carries from one step to the next, besides Accelerate's own state."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0  # batches of the current epoch already consumed (the data position)
    best_score: float = -float("inf")
    best_step: int = 0
    bad_evals: int = 0
    best_scores: dict[str, float] = field(default_factory=dict)
    best_ranks: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    running_loss: list[float] = field(default_factory=list)  # losses since the last evaluation
    seconds_before: float = 0.0  # training time spent before this process started (resumed runs)
    # Tokens this process's training batches held: real (attention mask), computed (padding included),
    # and rows x length^2 summed (attention's size): the cost report's tokens/s, padding and FLOPs.
    tokens: dict[str, int] = field(
        default_factory=lambda: {"real": 0, "computed": 0, "squared": 0, "rows": 0}
    )

    def judge(self, scores: dict[str, float], score: float, first: bool, patience: int) -> tuple[bool, bool]:
        """Note one evaluation; ``score`` is the primary metric signed so that higher is better. Returns
        (is it the new best, has patience run out). The first evaluation is the best so far even if NaN."""
        if first or (not math.isnan(score) and score > self.best_score):
            self.best_score = score if not math.isnan(score) else -math.inf
            self.best_step, self.bad_evals, self.best_scores = self.step, 0, scores
            return True, False
        self.bad_evals += 1
        return False, bool(patience) and self.bad_evals >= patience


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the trainable tensors (adapter + head) on the CPU, by parameter name."""
    return {
        name: param.detach().cpu().clone().contiguous()
        for name, param in model.named_parameters()
        if param.requires_grad
    }


def _load_trainable(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    expected = {name for name, param in model.named_parameters() if param.requires_grad}
    if set(tensors) != expected:
        raise RuntimeError(
            f"checkpoint {path} does not match the model: {len(set(tensors) ^ expected)} tensors differ "
            "(was the recipe changed?)"
        )
    model.load_state_dict(tensors, strict=False)


_FINGERPRINT_ROWS = 4096


def data_fingerprint(frames: dict[str, Any]) -> str:
    """sha256 over the prepared splits (ids, texts, labels): a resumed run must see the same data."""
    digest = hashlib.sha256()
    for name in sorted(frames):
        frame = frames[name]
        digest.update(name.encode())
        for column in ("row_id", "text", "label"):
            # The same bytes as one "\x1f"-joined string, hashed a slice at a time: no copy of a split's text
            values = frame[column]
            for start in range(0, len(values), _FINGERPRINT_ROWS):
                part = "\x1f".join(map(str, values.iloc[start : start + _FINGERPRINT_ROWS].tolist()))
                digest.update((("\x1f" if start else "") + part).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint under ``root`` (half-written ones are never picked)."""
    if not root.is_dir():
        return None
    complete = [path for path in root.iterdir() if _NAME.match(path.name) and (path / _LOOP_STATE).is_file()]
    return max(complete, key=lambda path: path.name, default=None)


def _fsync_tree(directory: Path) -> None:
    """Flush a checkpoint's files and the directory entry, so a rename never exposes lost writes."""
    for path in [*directory.iterdir(), directory]:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class CheckpointDir:
    """The ``checkpoints/`` folder of one run: save, prune, find and restore checkpoints."""

    def __init__(self, root: Path, accelerator: Any, model: torch.nn.Module, keep: int) -> None:
        self.root, self.accelerator, self.model, self.keep = Path(root), accelerator, model, keep
        # Accelerate would save the whole model (frozen base included); save and load the trainable part.
        accelerator.register_save_state_pre_hook(self._save_weights)
        accelerator.register_load_state_pre_hook(self._load_weights)

    def _save_weights(self, models: list, weights: list, output_dir: str) -> None:
        if self.accelerator.is_main_process:
            from safetensors.torch import save_file

            save_file(trainable_state(self.model), os.path.join(output_dir, _TRAINABLE))
        weights.clear()

    def _load_weights(self, models: list, input_dir: str) -> None:
        _load_trainable(self.model, Path(input_dir) / _TRAINABLE)
        models.clear()

    def check_run(self, identity: dict[str, Any], resume: bool) -> None:
        """Record what this run is; on resume, refuse checkpoints of a different recipe, data or topology."""
        path = self.root / _RUN
        if resume and path.is_file():
            saved = _flatten(json.loads(path.read_text(encoding="utf-8")))
            current = _flatten(json.loads(json.dumps(identity)))
            changed = [key for key in sorted(set(saved) | set(current)) if saved.get(key) != current.get(key)]
            if changed:
                raise AdaptersUserError(
                    f"cannot resume: {', '.join(changed)} differ from the interrupted run's; rerun "
                    "without --resume and with --overwrite to start over",
                    where=str(self.root),
                )
            return
        if self.accelerator.is_main_process:
            self.root.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(identity, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(temporary, path)
        self.accelerator.wait_for_everyone()

    def save(self, loop: LoopState, best: dict[str, torch.Tensor] | None) -> Path:
        """Write a complete checkpoint for ``loop.step`` atomically, then drop the oldest beyond ``keep``."""
        final = self.root / f"step-{loop.step:07d}"
        staging = self.root / f".{final.name}.tmp"
        accelerator = self.accelerator
        if accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(staging))  # every process writes its own RNG state
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            from safetensors.torch import save_file

            if best is not None:
                save_file(best, str(staging / _BEST))
            (staging / _LOOP_STATE).write_text(json.dumps(asdict(loop)), encoding="utf-8")
            _fsync_tree(staging)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(staging, final)
            self._prune()
        accelerator.wait_for_everyone()
        return final

    def _prune(self) -> None:
        complete = sorted(path for path in self.root.iterdir() if _NAME.match(path.name))
        for path in complete[: -self.keep]:
            trash = path.with_name(f".{path.name}.trash")  # renamed first: never a half-deleted 'step-'
            os.replace(path, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def restore(self, path: Path) -> tuple[LoopState, dict[str, torch.Tensor] | None]:
        """Load a checkpoint into the model, optimizer, scheduler and RNGs; return the loop state and best."""
        from safetensors.torch import load_file

        self.accelerator.load_state(str(path))
        loop = LoopState(**json.loads((path / _LOOP_STATE).read_text(encoding="utf-8")))
        best = load_file(str(path / _BEST)) if (path / _BEST).is_file() else None
        return loop, best

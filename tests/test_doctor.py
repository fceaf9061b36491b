"""``adapters doctor``: the preflight finds the known traps without loading a model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapters.cli import main
from adapters.doctor import doctor_exit_code, run_doctor
from tests.conftest import make_frame, tiny_recipe, write_data

REPO = Path(__file__).resolve().parents[1]


def _rows(checks) -> dict[str, tuple[str, str]]:
    return {check.name: (check.status, check.detail) for check in checks}


def _recipe_file(tmp_path: Path, model_dir: Path, **sections) -> str:
    data = write_data(tmp_path, make_frame(60))
    recipe = tiny_recipe(model_dir, **sections)
    recipe["data"]["source"] = str(data)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def test_default_recipe_is_healthy_and_counts_trainable_parameters() -> None:
    checks = run_doctor("german-credit/lora")
    rows = _rows(checks)
    assert doctor_exit_code(checks) == 0, checks
    assert rows["head"][0] == "OK" and "classifier" in rows["head"][1]
    assert "369,794 trainable" in rows["method"][1]  # LoRA r16 on q/k/v + head + pooler of MiniLM
    assert "= 16" in rows["global batch"][1] and rows["hub"][0] == "OK"


def test_fsdp_with_8bit_and_batch_arithmetic() -> None:
    checks = run_doctor("german-credit/lora-8bit", [], str(REPO / "recipes/accelerate/fsdp.yaml"))
    rows = _rows(checks)
    assert rows["quantization"][0] == "FAIL" and "FSDP" in rows["quantization"][1]
    assert "x 2 process(es)" in rows["global batch"][1] and "= 32" in rows["global batch"][1]
    assert doctor_exit_code(checks) == 1


def test_cpu_flag_with_two_processes_is_flagged(tmp_path: Path) -> None:
    config = tmp_path / "cpu.yaml"
    config.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: 'NO'\nnum_processes: 2\nuse_cpu: true\n"
        "mixed_precision: 'no'\n"
    )
    rows = _rows(run_doctor("german-credit/lora", [], str(config)))
    assert rows["cpu processes"][0] == "FAIL" and "ONE process" in rows["cpu processes"][1]


def test_deepspeed_accumulation_must_match() -> None:
    checks = run_doctor(
        "german-credit/lora",
        ["training.gradient_accumulation_steps=2"],
        str(REPO / "recipes/accelerate/deepspeed-zero2.yaml"),
    )
    assert any(c.name == "deepspeed" and c.status == "FAIL" and "accumulation" in c.detail for c in checks)


def test_bad_targets_and_missing_pad_token(tmp_path: Path, tiny_llama_dir: Path) -> None:
    recipe = _recipe_file(tmp_path, tiny_llama_dir, method={"target_modules": ["query", "value"]})
    rows = _rows(run_doctor(recipe))
    assert rows["method"][0] == "FAIL" and "query" in rows["method"][1]
    assert rows["pad token"][0] == "WARN" and "34055" in rows["pad token"][1]
    assert rows["head"][0] == "OK" and "score" in rows["head"][1]  # Llama's classification head


def test_hub_needed_while_offline_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = _rows(run_doctor("german-credit/lora", ["model.name_or_path=someorg/some-model"]))
    assert rows["model"][0] == "FAIL"  # its config cannot be read offline
    assert rows["hub"][0] == "WARN" and "HF_HUB_OFFLINE" in rows["hub"][1]


def test_cli_prints_table_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "german-credit/lora", "training.per_device_batch_size=8"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["check", "status", "detail"] and "= 8" in out
    assert main(["doctor", "german-credit/lora", "method={type: poly}"]) == 1
    assert "cannot be used for classification" in capsys.readouterr().out

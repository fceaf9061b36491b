"""CLI: exit codes, one-line errors without tracebacks, nothing left behind, the subcommands work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adapters.cli import main
from tests.conftest import make_frame, write_data


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "adapters", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


@pytest.fixture
def recipe_file(tmp_path: Path, recipe_for) -> Path:
    csv = write_data(tmp_path, make_frame(80))
    recipe = recipe_for(
        data={"source": str(csv)},
        training={"max_steps": 2, "eval_every": 1, "output_dir": str(tmp_path / "out")},
    )
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_recipes_lists_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert "german-credit/lora" in out and "german-credit/lora-8bit" in out


def test_python_dash_m_works() -> None:
    result = run_cli("recipes")
    assert result.returncode == 0 and "german-credit/dora" in result.stdout


def test_unknown_key_exit_2_one_line(recipe_file: Path, tmp_path: Path) -> None:
    result = run_cli("train", str(recipe_file), "training.epochz=1")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "training.epochz" in lines[0] and "epochs" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_debug_shows_traceback(recipe_file: Path) -> None:
    result = run_cli("--debug", "train", str(recipe_file), "training.epochz=1")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_bad_row_names_row_and_leaves_nothing(recipe_file: Path, tmp_path: Path) -> None:
    frame = make_frame(80)
    frame.loc[9, "outcome"] = "perhaps"
    write_data(tmp_path, frame)
    result = run_cli("train", str(recipe_file))
    assert result.returncode == 2
    assert "row 10" in result.stderr and "perhaps" in result.stderr and "loans.csv" in result.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_missing_recipe_file(tmp_path: Path) -> None:
    result = run_cli("train", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "nope.yaml" in result.stderr


@pytest.mark.parametrize(
    "command",
    [["eval", "/nonexistent/dir"], ["predict", "/nonexistent/dir", "--input", "x.csv", "--output", "y.csv"]],
)
def test_not_an_artifact(command: list[str]) -> None:
    result = run_cli(*command)
    assert result.returncode == 2 and "adapter_config.json" in result.stderr


def test_train_eval_predict_round_trip(recipe_file: Path, tmp_path: Path) -> None:
    result = run_cli("train", str(recipe_file), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert '"test"' in result.stdout and "roc_auc" in result.stdout
    again = run_cli("train", str(recipe_file))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    out = tmp_path / "out"
    evaluated = run_cli("eval", str(out), "--data", str(tmp_path / "data" / "loans.csv"))
    assert evaluated.returncode == 0 and "roc_auc" in evaluated.stdout
    new_rows = tmp_path / "new.csv"
    make_frame(5, seed=9).drop(columns="outcome").to_csv(new_rows, index=False)
    predicted = run_cli("predict", str(out), "--input", str(new_rows), "--output", str(tmp_path / "p.csv"))
    assert predicted.returncode == 0, predicted.stderr
    assert "prob_bad" in (tmp_path / "p.csv").read_text().splitlines()[0]
    wrong = tmp_path / "wrong.csv"
    make_frame(5).rename(columns={"note": "memo"}).to_csv(wrong, index=False)
    failed = run_cli("predict", str(out), "--input", str(wrong), "--output", str(tmp_path / "q.csv"))
    assert failed.returncode == 2 and "'note'" in failed.stderr and not (tmp_path / "q.csv").exists()


def test_overrides_after_options_are_accepted() -> None:
    from adapters.cli import build_parser

    parser = build_parser()
    args, extra = parser.parse_known_args(["train", "r.yaml", "--overwrite", "training.epochs=1"])
    assert extra == ["training.epochs=1"]
    result = run_cli("train", "missing.yaml", "--overwrite", "training.epochs=1")
    assert result.returncode == 2 and "missing.yaml" in result.stderr and "unrecognized" not in result.stderr
    result = run_cli("train", "missing.yaml", "--bogus")
    assert result.returncode == 2 and "unrecognized arguments: --bogus" in result.stderr

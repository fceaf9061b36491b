"""``adapters curve``: the grid of (system, fraction, seed) cells on one fixed test split, its cache, its
reports, and the paired differences it reads them by. One small grid is computed once per module (tiny
model, one epoch) and read by the tests; a changed recipe is tried on a copy of it."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from adapters import api
from adapters.cli import main
from adapters.curve_report import paired_difference
from adapters.data import prepare_data
from adapters.errors import AdaptersUserError
from adapters.learning_curve import curve, draw_seeds, parse_fractions, parse_seeds
from adapters.recipe import DataConfig
from tests.conftest import make_frame, tiny_recipe, write_data

FRACTIONS, SEEDS = [0.1, 1.0], [0, 1]
SYSTEMS = {"adapter", "logistic_regression", "hist_gradient_boosting", "stack"}


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict:
    """The recipe (a table: two text columns, so the tabular baselines apply), its file, and one
    computed 2-fraction × 2-seed grid with baselines and the stack."""
    root = tmp_path_factory.mktemp("curve")
    source = write_data(root, make_frame(90))
    recipe = tiny_recipe(tiny_model_dir, data={"source": str(source), "text_columns": ["note", "income"]})
    recipe_file = root / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    output = root / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HOME", str(root / "hf_home"))
        result = curve(
            recipe,
            fractions=FRACTIONS,
            seeds=2,
            draws_small=2,
            baselines=True,
            stack=True,
            output_dir=output,
            progress=False,
        )
    return {"recipe": recipe, "file": recipe_file, "output": output, "result": result, "source": source}


def test_grid_writes_csv_png_and_md_with_one_row_per_cell(grid: dict) -> None:
    rows = pd.read_csv(grid["output"] / "curve.csv")
    assert len(rows) == len(SYSTEMS) * len(FRACTIONS) * len(SEEDS) == grid["result"].computed
    assert set(rows["system"]) == SYSTEMS
    assert {(f, s) for f, s in zip(rows["fraction"], rows["seed"], strict=True)} == {
        (f, s) for f in FRACTIONS for s in SEEDS
    }
    columns = ["system", "fraction", "seed", "n_train", "roc_auc", "accuracy", "f1", "log_loss"]
    assert set(columns + ["expected_cost", "wall_seconds", "energy_kwh"]) <= set(rows.columns)
    assert rows["roc_auc"].between(0, 1).all() and (rows["wall_seconds"] >= 0).all()
    sizes = rows.groupby("fraction")["n_train"].unique()  # every system and seed of a fraction: one size
    assert sizes.map(len).eq(1).all() and sizes[0.1][0] == math.ceil(0.1 * sizes[1.0][0])
    assert (grid["output"] / "curve.png").read_bytes()[:4] == b"\x89PNG"
    report = (grid["output"] / "curve.md").read_text(encoding="utf-8")
    assert "With 10 % of the labels" in report and "of its full-data ROC-AUC" in report
    assert "Paired differences" in report and "95 % CI" in report
    assert "## Goals" in report and "logistic regression at 10 % + 0.03" in report
    stack = [json.loads(p.read_text()) for p in (grid["output"] / "cells" / "stack").glob("*/cell.json")]
    assert all(0 <= cell["weight"] <= 1 and cell["baseline"] in SYSTEMS for cell in stack)


def test_every_cell_is_scored_on_the_same_test_rows(grid: dict) -> None:
    files = sorted((grid["output"] / "cells").glob("*/*/predictions.csv"))
    assert len(files) == 3 * len(FRACTIONS) * len(SEEDS)  # the stack is computed from these
    first = pd.read_csv(files[0])["row_id"].tolist()
    assert all(pd.read_csv(path)["row_id"].tolist() == first for path in files[1:])
    adapter = sorted((grid["output"] / "cells" / "adapter").iterdir())[0]
    assert not (adapter / "adapter_model.safetensors").exists() and (adapter / "metrics.json").exists()


def test_draws_differ_between_seeds_and_keep_validation_and_test() -> None:
    config = DataConfig(text_columns=["note"], label_column="outcome", id_column="applicant")
    frame = make_frame(90)
    draws = {
        (fraction, seed): prepare_data(
            config.model_copy(update={"train_fraction": fraction, "train_fraction_seed": seed}), frame
        )
        for fraction in (0.25, 0.5)
        for seed in (0, 1)
    }
    full = prepare_data(config, frame)
    n_full = len(full.frames["train"])
    for (fraction, _), data in draws.items():
        assert len(data.frames["train"]) == math.ceil(fraction * n_full)
        assert set(data.frames["train"]["row_id"]) <= set(full.frames["train"]["row_id"])
        for split in ("validation", "test"):
            assert data.frames[split]["row_id"].tolist() == full.frames[split]["row_id"].tolist()
    assert set(draws[0.25, 0].frames["train"]["row_id"]) != set(draws[0.25, 1].frames["train"]["row_id"])
    assert set(draws[0.5, 0].frames["train"]["row_id"]) != set(draws[0.5, 1].frames["train"]["row_id"])


def test_rerun_recomputes_nothing(grid: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached cell was trained again")

    monkeypatch.setattr(api, "train", refuse)
    again = curve(
        grid["recipe"], fractions=FRACTIONS, seeds=2, draws_small=2, baselines=True, stack=True,
        output_dir=grid["output"], progress=False,
    )  # fmt: skip
    assert again.computed == 0 and len(again.rows) == len(grid["result"].rows)


def test_changed_recipe_recomputes_the_adapter_cells_only(grid: dict, tmp_path: Path) -> None:
    output = tmp_path / "copy"
    shutil.copytree(grid["output"], output)
    calls: list[object] = []
    real = api.train

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api, "train", counting)
        result = curve(
            grid["recipe"], ["training.learning_rate=0.004"], fractions=[1.0], seeds=[0], baselines=True,
            stack=True, output_dir=output, progress=False,
        )  # fmt: skip
    assert len(calls) == 1 and result.computed == 2  # the adapter, and the stack built on it


def test_cli_runs_from_the_cache_and_refuses_bad_settings_in_one_line(
    grid: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "train", lambda *a, **k: pytest.fail("cached cells are not trained"))
    base = ["curve", str(grid["file"]), "--output", str(grid["output"]), "--no-progress"]
    grid_args = ["--fractions", "0.1,1", "--seeds", "0,1", "--draws-small", "2", "--baselines", "--stack"]
    code = main([*base, *grid_args])
    captured = capsys.readouterr()
    assert code == 0 and "0 computed" in captured.out
    # which draws run is said before any work ("--seeds 2" would be a count, "2," the seed 2)
    assert "fraction 0.1: seeds 0, 1\nfraction 1: seeds 0, 1\n" in captured.err
    threads = ["curve", str(grid["file"]), "training.num_threads=1", *base[2:]]  # speed, not the cell
    assert main([*threads, *grid_args]) == 0 and "0 computed" in capsys.readouterr().out
    for bad in (["--fractions", "0,1"], ["--fractions", "1.5"], ["--fractions", "a"], ["--draws-small", "0"]):
        assert main([*base, *bad]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("error: ") and "\n" not in error


def test_full_finetune_trains_every_weight_and_reports_cost_ratios(grid: dict, tmp_path: Path) -> None:
    """Added to a finished grid: the adapter cells come from the cache, the full fine-tunes are trained on
    the same draws, and curve.md sets their cost against the adapter's."""
    output = tmp_path / "out"
    shutil.copytree(grid["output"], output)
    result = curve(
        grid["recipe"], fractions=[1.0], seeds=2, full_finetune=True, output_dir=output, progress=False
    )
    assert result.computed == 2  # the two full fine-tunes; the adapters were cached
    rows = result.rows.set_index("system")
    full, adapter = rows.loc["full_finetune"], rows.loc["adapter"]
    assert (full["trainable_params"] == full["trainable_params"].max()).all()
    metrics = json.loads((output / "cells" / "full_finetune" / "f1-s0" / "metrics.json").read_text())
    assert metrics["cost"]["trainable_params"] == metrics["cost"]["total_params"]
    assert (adapter["trainable_params"] < full["trainable_params"].min()).all()
    assert (full["checkpoint_bytes"] == 4 * full["trainable_params"]).all()
    assert full["roc_auc"].between(0, 1).all() and full["padding_fraction"].between(0, 1).all()
    report = (output / "curve.md").read_text(encoding="utf-8")
    assert "## Cost: adapter / full fine-tuning" in report and "| full fine-tune | 1 |" in report
    ratio_row = next(line for line in report.splitlines() if line.startswith("| 1 | 2 |"))
    checkpoint_ratio = float(ratio_row.split("|")[-2].split("x")[0])
    assert 0 < checkpoint_ratio < 0.5  # the adapter and head against every weight


def _copy_of_grid(grid: dict, tmp_path: Path) -> tuple[Path, list[str]]:
    """A copy of the computed grid to add systems to, and the CLI call that reads it at fraction 1."""
    output = tmp_path / "out"
    shutil.copytree(grid["output"], output)
    return output, ["curve", str(grid["file"]), "--output", str(output), "--no-progress", "--fractions", "1"]


def test_a_variant_trains_on_the_same_draws_and_is_compared_draw_by_draw(
    grid: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output, base = _copy_of_grid(grid, tmp_path)
    code = main([*base, "--seeds", "2", "--variant", "rank2", "method.r=2", "training.learning_rate=0.01"])
    assert code == 0 and "(2 computed" in capsys.readouterr().out  # the adapters came from the cache
    rows = pd.read_csv(output / "curve.csv")
    variant = rows[rows["system"] == "variant-rank2"]
    assert sorted(variant["seed"]) == [0, 1]
    assert (variant["trainable_params"] < rows[rows["system"] == "adapter"]["trainable_params"].min()).all()
    saved = yaml.safe_load((output / "cells" / "variant-rank2" / "f1-s0" / "recipe.yaml").read_text())
    assert saved["method"]["r"] == 2 and saved["training"]["seed"] == 0
    report = (output / "curve.md").read_text(encoding="utf-8")
    assert "| adapter, variant rank2 | 1 |" in report
    # One fraction: no curve, but the findings still give each system's mean and the paired differences.
    assert "With 100 % of the labels (about " in report and "the mean ROC-AUC is 0." in report
    assert " for the adapter, 0." in report and " for adapter, variant rank2. Only this fraction" in report
    assert "On the same 2 draws at 100 %, adapter − adapter, variant rank2 = " in report
    # A variant whose recipe is the adapter's is the same cell: the adapter's cells serve (e.g. the recipe
    # before a change, compared with the changed one on finished draws).
    for seed in (0, 1):
        shutil.copytree(
            output / "cells" / "adapter" / f"f1-s{seed}", output / "cells" / "variant-same" / f"f1-s{seed}"
        )
    assert main([*base, "--seeds", "2", "--variant", "same", "method.r=4"]) == 0
    assert "(0 computed" in capsys.readouterr().out
    systems = pd.read_csv(output / "curve.csv")["system"].value_counts()
    assert systems["variant-same"] == systems["adapter"] == 2
    for bad in (
        ["--variant", "rank2"],
        ["--variant", "Bad-Name", "method.r=2"],
        ["--variant", "s", "data.split_seed=3"],
    ):
        assert main([*base, *bad]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("error: ") and "--variant" in error and "\n" not in error


def test_full_finetune_refuses_quantized_and_private_recipes(grid: dict) -> None:
    with pytest.raises(AdaptersUserError, match="--full-finetune"):
        curve(
            grid["recipe"], ["model.quantization=8bit"], fractions=[1.0], full_finetune=True, progress=False
        )


def test_paired_difference_on_a_hand_example() -> None:
    found = paired_difference([0.8, 0.7, 0.9], [0.7, 0.5, 0.6])  # differences 0.1, 0.2, 0.3
    half = 4.302652729749464 * 0.1 / math.sqrt(3)  # t(0.975, df 2) · sd / √n
    assert found["n"] == 3 and found["mean"] == pytest.approx(0.2) and found["sd"] == pytest.approx(0.1)
    assert (found["low"], found["high"]) == pytest.approx((0.2 - half, 0.2 + half))
    assert not found["excludes_zero"]
    assert paired_difference([0.15, 0.16, 0.14, 0.15], [0.1] * 4)["excludes_zero"]
    assert paired_difference([0.5], [0.4])["low"] is None


def test_settings_are_checked() -> None:
    assert parse_fractions("1,0.1,0.1") == [0.1, 1.0]
    for bad in ("0", "1.5", "-0.1", "", "x"):
        with pytest.raises(AdaptersUserError):
            parse_fractions(bad)
    assert parse_seeds(3) == [0, 1, 2] and parse_seeds("4") == [0, 1, 2, 3] and parse_seeds("5,2") == [5, 2]
    with pytest.raises(AdaptersUserError):
        parse_seeds("1,1")
    assert draw_seeds(0.05, [3, 0], 4) == [3, 0, 1, 2] and draw_seeds(0.5, [3, 0], 4) == [3, 0]
    assert np.array_equal(draw_seeds(0.1, [0, 1, 2], 2), [0, 1, 2])


def test_public_curve_is_the_function_after_its_module_is_imported() -> None:
    """The module is not ``adapters.curve``: importing a submodule of that name would replace the
    package's lazy ``adapters.curve`` function with the module object."""
    import adapters
    import adapters.learning_curve

    assert adapters.curve is adapters.learning_curve.curve and callable(adapters.curve)


def test_a_setting_added_later_keeps_old_cells_only_at_the_value_that_computes_as_before() -> None:
    """A cell cached before ``training.fast_cpu_dropout`` existed was trained with torch's masks: it is
    the cell of ``fast_cpu_dropout=false`` (same hash), not of the default's other masks."""
    from types import SimpleNamespace

    import adapters
    from adapters.curve_cells import CellMaker

    maker = SimpleNamespace(fingerprint="data")
    recipe = adapters.load_recipe("german-credit/lora")
    torch_masks = recipe.model_copy(
        update={"training": recipe.training.model_copy(update={"fast_cpu_dropout": False})}
    )
    before = recipe.to_dict()
    del before["training"]["fast_cpu_dropout"]
    old_cell = CellMaker.digest(maker, "adapter", SimpleNamespace(to_dict=lambda: before))
    assert CellMaker.digest(maker, "adapter", torch_masks) == old_cell
    assert CellMaker.digest(maker, "adapter", recipe) != old_cell


def test_a_seed_ensemble_averages_adapters_trained_on_the_same_draw_with_other_seeds(
    grid: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output, base = _copy_of_grid(grid, tmp_path)
    assert main([*base, "--seeds", "2", "--ensemble", "3"]) == 0
    # 2 members × 2 draws trained, 2 ensembles scored; the adapters came from the cache
    assert "(6 computed" in capsys.readouterr().out
    cells = output / "cells"
    for seed in (0, 1):
        for member in (1, 2):
            saved = yaml.safe_load((cells / f"member-{member}" / f"f1-s{seed}" / "recipe.yaml").read_text())
            assert saved["training"]["seed"] == seed + 1000 * member
            assert saved["data"]["train_fraction_seed"] == seed  # the same draw, another training seed
        read = [
            pd.read_csv(cells / system / f"f1-s{seed}" / "predictions.csv")
            for system in ("adapter", "member-1", "member-2", "ensemble")
        ]
        assert all(frame["row_id"].tolist() == read[0]["row_id"].tolist() for frame in read)
        mean = np.mean([frame["prob_bad"].to_numpy() for frame in read[:3]], axis=0)
        np.testing.assert_allclose(read[3]["prob_bad"], mean, rtol=1e-6)
        assert not np.allclose(read[0]["prob_bad"], read[1]["prob_bad"])  # another seed, another adapter
        cell = json.loads((cells / "ensemble" / f"f1-s{seed}" / "cell.json").read_text())
        members = [
            json.loads((cells / s / f"f1-s{seed}" / "cell.json").read_text())
            for s in ("adapter", "member-1", "member-2")
        ]
        assert cell["members"] == 3
        assert cell["wall_seconds"] == pytest.approx(sum(m["wall_seconds"] for m in members), abs=0.01)
    rows = pd.read_csv(output / "curve.csv")
    assert (rows["system"] == "ensemble").sum() == 2 and rows["system"].str.startswith("member-").sum() == 4
    report = (output / "curve.md").read_text(encoding="utf-8")
    assert "| seed ensemble (mean of the adapters) | 1 |" in report  # paired with the adapter
    assert "member-" not in report  # members are read through the ensemble
    assert main([*base, "--seeds", "2", "--ensemble", "3"]) == 0
    assert "(0 computed" in capsys.readouterr().out
    assert main([*base, "--ensemble", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "--ensemble" in error and "\n" not in error

"""Lineage: lineage.json for every run, transfer chains through model.init_adapter, `adapters lineage`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

import adapters
from adapters.cli import main
from adapters.errors import AdaptersUserError
from adapters.lineage import format_lineage, read_lineage, sha256_file
from tests.conftest import make_frame, tiny_recipe, write_data


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> list[Path]:
    """Three adapters: a from a CSV file, b started from a, c started from b (another portfolio each)."""
    root = tmp_path_factory.mktemp("chain")
    source = write_data(root, make_frame(80, seed=0))
    first = adapters.train(
        tiny_recipe(tiny_model_dir, data={"source": str(source)}), output_dir=root / "a", progress=False
    )
    outputs = [first.output_dir]
    for name, seed in (("b", 1), ("c", 2)):
        recipe = tiny_recipe(tiny_model_dir, model={"init_adapter": str(outputs[-1])}, name=name)
        outputs.append(
            adapters.train(
                recipe, data=make_frame(80, seed=seed), output_dir=root / name, progress=False
            ).output_dir
        )
    return outputs


def test_lineage_records_base_data_recipe_and_software(chain: list[Path], tiny_model_dir: Path) -> None:
    lineage = read_lineage(chain[0])
    assert lineage["parents"] == [] and lineage["init_adapter"] is None
    weights = lineage["base_model"]["weights_sha256"]
    assert weights == {"model.safetensors": sha256_file(tiny_model_dir / "model.safetensors")}
    data = lineage["data"]
    assert data["files_sha256"] == {"loans.csv": sha256_file(Path(data["source"]))}
    assert data["rows"] == {"train": 48, "validation": 16, "test": 16} and data["split_seed"] == 42
    assert data["train_fraction"] == 1.0 and len(data["rows_sha256"]) == 64
    assert lineage["recipe"]["method"]["r"] == 4
    assert {"torch", "transformers", "peft", "accelerate", "peft-recipes"} <= set(lineage["software"])
    assert lineage["hardware"]["device"] == "cpu" and lineage["hardware"]["cpu_count"] >= 1
    assert 0 < lineage["train_seconds"] <= lineage["wall_seconds"]


def test_chain_of_three_is_recorded_and_printed(chain: list[Path], capsys: pytest.CaptureFixture) -> None:
    lineage = read_lineage(chain[2])
    parent = lineage["parents"][0]
    grandparent = parent["parents"][0]
    assert [lineage["adapter"]["name"], parent["adapter"]["name"], grandparent["adapter"]["name"]] == [
        "c",
        "b",
        "tiny",
    ]
    assert grandparent == read_lineage(chain[0])  # the parent's lineage is copied whole, not re-derived
    assert lineage["init_adapter"]["same_labels"] and lineage["init_adapter"]["fresh_tensors"] == []
    assert main(["lineage", str(chain[2])]) == 0
    tree = capsys.readouterr().out.splitlines()
    assert tree[0].startswith("c: lora on ") and tree[1].startswith("└── started from b: lora")
    assert tree[2].startswith("    └── started from tiny: lora")
    assert "started from b" in (chain[2] / "README.md").read_text()


def test_init_adapter_starts_from_the_parent_weights(chain: list[Path], tiny_model_dir: Path) -> None:
    from adapters.modeling import build_model
    from adapters.recipe import load_recipe

    recipe = load_recipe(tiny_recipe(tiny_model_dir, model={"init_adapter": str(chain[0])}))
    built = build_model(recipe.model, recipe.method, ["good", "bad"], "bad")
    saved = load_file(str(chain[0] / "adapter_model.safetensors"))
    state = {name: tensor for name, tensor in built.model.named_parameters()}
    lora_key = next(key for key in saved if "lora_A" in key)
    live = lora_key.replace("lora_A.weight", "lora_A.default.weight")
    assert state[live].abs().sum() > 0 and (state[live] == saved[lora_key]).all()
    head = next(key for key in saved if "classifier.weight" in key)
    live_head = head.replace("classifier.weight", "classifier.modules_to_save.default.weight")
    assert (state[live_head] == saved[head]).all()


def test_other_labels_get_a_fresh_head(chain: list[Path], tiny_model_dir: Path) -> None:
    from adapters.modeling import build_model
    from adapters.recipe import load_recipe

    recipe = load_recipe(tiny_recipe(tiny_model_dir, model={"init_adapter": str(chain[0])}))
    built = build_model(recipe.model, recipe.method, ["low", "mid", "high"], "high")
    init = built.provenance["init_adapter"]
    assert not init["same_labels"] and any("classifier" in key for key in init["fresh_tensors"])
    assert init["loaded_tensors"] > 0  # the LoRA weights still carried over


def test_mismatched_start_is_refused(chain: list[Path], tiny_model_dir: Path, tiny_gpt2_dir: Path) -> None:
    other_method = tiny_recipe(tiny_model_dir, model={"init_adapter": str(chain[0])})
    other_method["method"] = {"type": "ia3", "target_modules": ["query", "value"], "feedforward_modules": []}
    with pytest.raises(AdaptersUserError, match="model.init_adapter.*is LORA.*IA3"):
        adapters.train(other_method, data=make_frame(80), output_dir=chain[0].parent / "x", progress=False)
    with pytest.raises(AdaptersUserError, match="model.init_adapter.*trained on"):
        adapters.train(
            tiny_recipe(
                tiny_gpt2_dir, model={"init_adapter": str(chain[0])}, method={"target_modules": ["c_attn"]}
            ),
            data=make_frame(80),
            output_dir=chain[0].parent / "y",
            progress=False,
        )
    with pytest.raises(AdaptersUserError, match="model.init_adapter"):
        adapters.train(
            tiny_recipe(tiny_model_dir, model={"init_adapter": str(chain[0].parent / "nope")}),
            data=make_frame(80),
            output_dir=chain[0].parent / "z",
            progress=False,
        )
    assert not (chain[0].parent / "x").exists() and not (chain[0].parent / "z").exists()


def test_lineage_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "a").mkdir()
    assert main(["lineage", str(tmp_path / "a")]) == 2
    assert "no lineage.json" in capsys.readouterr().err


def test_format_lineage_without_parent_lineage() -> None:
    entry = {
        "adapter": {"name": "x", "method": "lora"},
        "base_model": {"id": "m"},
        "parents": [
            {
                "adapter": {"name": "p", "method": "lora"},
                "base_model": {"id": "m"},
                "note": "no lineage.json",
                "parents": [],
            }
        ],
    }
    assert format_lineage(entry).splitlines() == [
        "x: lora on m",
        "└── started from p: lora on m  [no lineage.json]",
    ]
    json.dumps(entry)

"""Recipe schema: defaults, overrides, strict keys with helpful errors, every shipped recipe valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.errors import AdaptersUserError
from adapters.recipe import Recipe, list_recipes, load_recipe, method_types, parse_overrides


def test_builtin_recipes_listed_and_valid() -> None:
    recipes = list_recipes()
    for name in ("german-credit/lora", "german-credit/dora", "german-credit/ia3", "german-credit/lora-8bit"):
        assert name in recipes
    for name in recipes:
        recipe = load_recipe(name)
        assert isinstance(recipe, Recipe)
        header = recipes[name].read_text().splitlines()[:6]
        assert any("adapters train" in line for line in header), f"{name} header lacks the command"
        assert any("accelerate launch" in line for line in header), f"{name} header lacks accelerate"


def test_default_recipe_is_german_credit_lora() -> None:
    recipe = load_recipe()
    assert recipe.data.source == "south_german_credit"
    assert recipe.method.type == "lora"
    assert "pooler" in recipe.method.peft_kwargs()["modules_to_save"]
    assert recipe.eval.cost_matrix == {"bad": {"good": 5.0}, "good": {"bad": 1.0}}


def test_overrides_are_typed_from_yaml() -> None:
    recipe = load_recipe(
        "german-credit/lora",
        [
            "training.epochs=2",
            "method.target_modules=[query,value]",
            "training.learning_rate=1e-4",
            "data.class_weights=balanced",
        ],
    )
    assert recipe.training.epochs == 2
    assert recipe.method.peft_kwargs()["target_modules"] == ["query", "value"]
    assert recipe.training.learning_rate == pytest.approx(1e-4)
    assert recipe.data.class_weights == "balanced"


def test_python_overrides_as_dict_and_sections() -> None:
    recipe = load_recipe("german-credit/lora", {"method.r": 4}, training={"seed": 7})
    assert recipe.method.peft_kwargs()["r"] == 4
    assert recipe.training.seed == 7
    assert recipe.training.epochs == load_recipe("german-credit/lora").training.epochs


def test_parse_overrides_nests() -> None:
    assert parse_overrides(["a.b=1", "a.c=x"]) == {"a": {"b": 1, "c": "x"}}
    with pytest.raises(AdaptersUserError, match="section.key=value"):
        parse_overrides(["nokey"])


def test_unknown_key_names_key_and_lists_valid() -> None:
    with pytest.raises(AdaptersUserError) as info:
        load_recipe("german-credit/lora", ["training.epochz=1"])
    message = str(info.value)
    assert "training.epochz" in message and "epochs" in message and "learning_rate" in message
    assert "\n" not in message


def test_unknown_section() -> None:
    with pytest.raises(AdaptersUserError, match="'trainig'.*training"):
        load_recipe({"trainig": {"epochs": 1}})


def test_wrong_type_names_key() -> None:
    with pytest.raises(AdaptersUserError, match=r"training\.epochs"):
        load_recipe("german-credit/lora", ["training.epochs=many"])
    with pytest.raises(AdaptersUserError, match="model.quantization"):
        load_recipe("german-credit/lora", ["model.quantization=2bit"])


def test_method_keys_checked_against_peft_config_class() -> None:
    with pytest.raises(AdaptersUserError, match=r"method\.rr.*lora_alpha"):
        load_recipe("german-credit/lora", ["method.rr=3"])
    with pytest.raises(AdaptersUserError, match="task_type"):
        load_recipe({"method": {"type": "lora", "task_type": "CAUSAL_LM"}})
    recipe = load_recipe(
        {"method": {"type": "ia3", "target_modules": ["key", "value"], "feedforward_modules": []}}
    )
    assert recipe.method.type == "ia3"


def test_unsupported_method_lists_supported() -> None:
    with pytest.raises(AdaptersUserError) as info:
        load_recipe({"method": {"type": "lorax"}})
    assert all(name in str(info.value) for name in method_types())


def test_primary_metric_must_be_computed() -> None:
    with pytest.raises(AdaptersUserError, match="primary_metric"):
        load_recipe({"eval": {"metrics": ["accuracy"], "primary_metric": "roc_auc"}})


def test_yaml_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("training:\n  epochs: [1\n")
    with pytest.raises(AdaptersUserError, match="broken.yaml"):
        load_recipe(path)


def test_missing_recipe_lists_builtins() -> None:
    with pytest.raises(AdaptersUserError, match="german-credit/lora"):
        load_recipe("nope/never")


def test_round_trip_yaml(tmp_path: Path) -> None:
    recipe = load_recipe("german-credit/dora", ["training.epochs=1"])
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe.to_yaml())
    assert load_recipe(path).to_dict() == recipe.to_dict()


def test_expected_cost_needs_cost_matrix() -> None:
    assert "expected_cost" not in load_recipe({}).eval.metrics  # default list drops it without costs
    with pytest.raises(AdaptersUserError, match="cost_matrix"):
        load_recipe({"eval": {"metrics": ["roc_auc", "expected_cost"]}})


def test_numeric_labels_become_strings_and_booleans_are_refused() -> None:
    recipe = load_recipe({"data": {"label_names": [0, 1], "positive_label": 1}})
    assert recipe.data.label_names == ["0", "1"] and recipe.data.positive_label == "1"
    with pytest.raises(AdaptersUserError, match="quote it"):
        load_recipe({"data": {"positive_label": True}})


def test_bare_no_for_mixed_precision_means_no() -> None:
    """YAML 1.1 reads `training.mixed_precision=no` as false; it means 'no' here."""
    assert load_recipe(None, ["training.mixed_precision=no"]).training.mixed_precision == "no"


def test_flat_dict_gives_trackers_section_keys_and_plain_values() -> None:
    flat = load_recipe("german-credit/lora").to_flat_dict()
    assert flat["training.learning_rate"] == 1e-3 and flat["method.r"] == 16
    assert flat["method.target_modules"] == "['query', 'key', 'value']"  # a list becomes its text
    assert all(isinstance(value, int | float | str | bool) for value in flat.values())

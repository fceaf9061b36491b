"""The model card: Hub metadata that parses back, the sections a reader needs, cost and energy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

import adapters
from adapters.card import card_data
from adapters.errors import AdaptersUserError
from adapters.recipe import load_recipe
from tests.conftest import make_frame, tiny_recipe


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A tiny artifact trained with the energy tracker on and a country for CO2."""
    recipe = tiny_recipe(
        tiny_model_dir,
        training={"track_energy": True, "energy_country": "DEU"},
        card={"license": "apache-2.0", "intended_use": "Scoring toy loans in tests."},
    )
    output = tmp_path_factory.mktemp("card") / "tiny"
    return adapters.train(recipe, data=make_frame(80), output_dir=output, progress=False).output_dir


def test_card_metadata_parses_back(measured: Path, tiny_model_dir: Path) -> None:
    card = ModelCard.load(measured / "README.md")
    data = card.data
    assert data.library_name == "peft" and data.base_model == str(tiny_model_dir)
    assert data.pipeline_tag == "text-classification" and data.license == "apache-2.0"
    assert {"peft", "lora", "peft-recipes"} <= set(data.tags)
    test_metrics = json.loads((measured / "metrics.json").read_text())["test"]
    parsed = {result.metric_type: result.metric_value for result in data.eval_results}
    assert parsed == pytest.approx({k: v for k, v in test_metrics.items() if v is not None})
    assert all(result.dataset_split == "test" for result in data.eval_results)


def test_card_body_has_the_sections_a_reader_needs(measured: Path) -> None:
    text = ModelCard.load(measured / "README.md").text
    for heading in (
        "## Intended use",
        "## Out-of-scope use",
        "## Where the knowledge comes from",
        "## Metrics",
        "## Cost and energy",
        "## How to load it with plain PEFT",
        "## Bias, risks and limitations",
    ):
        assert heading in text, heading
    assert "Scoring toy loans in tests." in text
    assert "AutoPeftModelForSequenceClassification" in text and "rows sha256" in text


def test_energy_and_co2_measured(measured: Path) -> None:
    energy = json.loads((measured / "metrics.json").read_text())["cost"]["energy"]
    assert energy["energy_kwh"] > 0 and energy["co2_kg"] > 0 and energy["country_iso_code"] == "DEU"
    assert energy["tracker"].startswith("codecarbon")
    assert json.loads((measured / "lineage.json").read_text())["energy"] == energy
    text = (measured / "README.md").read_text()
    assert f"{energy['energy_kwh']:.3g} kWh" in text and "grid of DEU" in text


def test_a_failing_tracker_does_not_fail_the_run(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codecarbon

    def no_counters(self) -> None:
        raise PermissionError("cannot read /sys/class/powercap")

    monkeypatch.setattr(codecarbon.OfflineEmissionsTracker, "start", no_counters)
    recipe = tiny_recipe(tiny_model_dir, training={"track_energy": True})
    result = adapters.train(recipe, data=make_frame(80), output_dir=tmp_path / "out", progress=False)
    energy = json.loads((result.output_dir / "metrics.json").read_text())["cost"]["energy"]
    assert energy["energy_kwh"] is None and "powercap" in energy["note"]
    assert "not measured" in (result.output_dir / "README.md").read_text()


def test_unknown_energy_country_refused_before_work(tiny_model_dir: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(tiny_model_dir, training={"track_energy": True, "energy_country": "XYZ"})
    with pytest.raises(AdaptersUserError, match="training.energy_country"):
        adapters.train(recipe, data=make_frame(80), output_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_default_recipe_metadata_names_its_dataset() -> None:
    recipe = load_recipe("german-credit/lora")
    data = card_data(
        recipe, {"test": {"roc_auc": 0.75}}, "sentence-transformers/all-MiniLM-L6-v2", "apache-2.0"
    )
    assert data.datasets == ["south_german_credit"]
    header = data.to_dict()
    assert header["model-index"][0]["results"][0]["metrics"][0] == {
        "type": "roc_auc",
        "value": 0.75,
        "name": "roc_auc",
    }

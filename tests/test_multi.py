"""MultiAdapter (several adapters on one base model) and ``adapters combine`` (add_weighted_adapter)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import adapters
from adapters.cli import main
from adapters.combine import METHODS, combine
from adapters.errors import AdaptersUserError
from tests.conftest import make_frame, tiny_recipe, write_data


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    """Three LoRA artifacts on the tiny BERT, trained from CSV files (so each has a readable test split):
    ``a`` and ``b`` differ in data and seed; ``pooled`` also saves BERT's pooler (modules_to_save)."""
    root = tmp_path_factory.mktemp("multi")
    trained = {}
    for name, seed, method in [("a", 0, {}), ("b", 1, {}), ("pooled", 2, {"modules_to_save": ["pooler"]})]:
        data = write_data(root / name, make_frame(80, seed=seed))
        recipe = tiny_recipe(
            tiny_model_dir, data={"source": str(data)}, training={"epochs": 2, "seed": seed}, method=method
        )
        trained[name] = adapters.train(recipe, output_dir=root / "out" / name, progress=False).output_dir
    return trained


@pytest.fixture(scope="module")
def rows():
    return make_frame(24, seed=9)


@pytest.fixture(scope="module")
def single(sources, rows) -> dict[str, np.ndarray]:
    """Each adapter's probabilities on ``rows`` through its own Classifier (the reference)."""
    return {name: adapters.load(directory).predict_proba(rows) for name, directory in sources.items()}


def _copy(source: Path, target: Path, edit_file: str, edit) -> Path:
    """A copy of an artifact with one JSON/YAML file edited (metadata-only variations for refusals)."""
    shutil.copytree(source, target)
    path = target / edit_file
    if path.suffix == ".json":
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    else:
        path.write_text(yaml.safe_dump(edit(yaml.safe_load(path.read_text()))))
    return target


def test_classifier_still_reproduces_the_training_run(sources) -> None:
    """Classifier.predict_proba (now logits → scores, shared with MultiAdapter) equals what the training
    loop itself recorded in predictions.csv, independently of the Classifier code."""
    import pandas as pd

    predictions = pd.read_csv(sources["a"] / "predictions.csv", dtype={"row_id": str})
    frame = make_frame(80, seed=0).set_index("applicant").loc[predictions["row_id"]].reset_index()
    recorded = predictions[["prob_good", "prob_bad"]].to_numpy()
    np.testing.assert_allclose(adapters.load(sources["a"]).predict_proba(frame), recorded, atol=1e-5)


def test_each_adapter_equals_its_own_classifier(sources, rows, single) -> None:
    multi = adapters.MultiAdapter(sources)
    assert multi.names == ["a", "b", "pooled"] and set(multi.model.peft_config) == set(sources)
    for name, directory in sources.items():
        np.testing.assert_allclose(multi.predict_proba(rows, adapter=name), single[name], atol=1e-5)
        assert multi.predict(rows, adapter=name) == adapters.load(directory).predict(rows)
    assert np.abs(single["a"] - single["b"]).max() > 1e-3, "the sources must differ for these tests to bite"
    # switching back and forth leaves nothing behind
    np.testing.assert_allclose(multi.predict_proba(rows, adapter="a"), single["a"], atol=1e-5)


def test_mixed_batch_is_one_forward_pass_and_equals_per_adapter(
    sources, rows, single, monkeypatch: pytest.MonkeyPatch
) -> None:
    multi = adapters.MultiAdapter({"a": sources["a"], "b": sources["b"]})
    assert multi.can_mix(["a", "b"])
    calls = []
    original = adapters.Classifier.logits

    def spy(self, texts, batch_size=64, adapter_names=None):
        calls.append(None if adapter_names is None else list(adapter_names))
        return original(self, texts, batch_size, adapter_names)

    monkeypatch.setattr(adapters.Classifier, "logits", spy)
    per_row = ["a", "b", "b", "a"] * 6
    mixed = multi.predict_proba(rows, adapter=per_row)
    assert len(calls) == 1 and sorted(calls[0]) == sorted(per_row), "one pass with PEFT's adapter_names"
    for row, name in enumerate(per_row):
        np.testing.assert_allclose(mixed[row], single[name][row], atol=1e-5)
    threshold_decisions = ["bad" if p >= 0.5 else "good" for p in mixed[:, 1]]
    assert multi.predict(rows, adapter=per_row) == threshold_decisions


def test_mixed_batch_renders_rows_per_adapter(sources, rows, tmp_path: Path) -> None:
    """Adapters whose recipes render rows differently still share one batch, each row with its template."""

    def template(recipe: dict) -> dict:
        recipe["data"]["template"], recipe["data"]["text_columns"] = "applicant note: {note}", None
        return recipe

    other = _copy(sources["b"], tmp_path / "b_template", "recipe.yaml", template)
    multi = adapters.MultiAdapter({"a": sources["a"], "templated": other})
    assert multi.can_mix(["a", "templated"])
    reference = adapters.load(other).predict_proba(rows)
    assert np.abs(reference - adapters.load(sources["b"]).predict_proba(rows)).max() > 1e-6
    per_row = ["templated", "a"] * 12
    mixed = multi.predict_proba(rows, adapter=per_row)
    np.testing.assert_allclose(mixed[0::2], reference[0::2], atol=1e-5)
    np.testing.assert_allclose(mixed[1::2], adapters.load(sources["a"]).predict_proba(rows)[1::2], atol=1e-5)


def test_mixed_batch_falls_back_to_one_pass_per_adapter(sources, rows, single) -> None:
    """PEFT cannot split a batch for BERT's pooler (a modules_to_save that is not a Linear layer)."""
    multi = adapters.MultiAdapter(sources)
    assert not multi.can_mix(["a", "pooled"])
    per_row = ["pooled", "a", "b"] * 8
    mixed = multi.predict_proba(list(rows["note"]), adapter=per_row)
    for row, name in enumerate(per_row):
        np.testing.assert_allclose(mixed[row], single[name][row], atol=1e-5)
    decisions = multi.predict(list(rows["note"]), adapter=per_row)
    assert decisions == ["bad" if p >= 0.5 else "good" for p in mixed[:, 1]]


def test_parameters_base_once_adapters_each(sources, tiny_model_dir: Path) -> None:
    """One base model plus each adapter's own weights, not N base models."""
    from transformers import AutoModelForSequenceClassification

    base = sum(
        p.numel()
        for p in AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2).parameters()
    )
    separate = [sum(p.numel() for p in adapters.load(d).model.parameters()) for d in sources.values()]
    multi = adapters.MultiAdapter(sources)
    together = sum(p.numel() for p in multi.model.parameters())
    assert together == base + sum(count - base for count in separate)
    assert together < sum(separate) - (len(sources) - 1) * base * 0.99


def test_refusals(sources, rows, tmp_path: Path) -> None:
    def other_base(config: dict) -> dict:
        return {**config, "base_model_name_or_path": "someone/another-model"}

    moved = _copy(sources["b"], tmp_path / "other_base", "adapter_config.json", other_base)
    with pytest.raises(AdaptersUserError, match="base model someone/another-model"):
        adapters.MultiAdapter([sources["a"], moved])

    def three_labels(config: dict) -> dict:
        return {**config, "id2label": {"0": "good", "1": "bad", "2": "ugly"}}

    wider = _copy(sources["b"], tmp_path / "wider", "config.json", three_labels)
    with pytest.raises(AdaptersUserError, match="3 labels"):
        adapters.MultiAdapter([sources["a"], wider])

    def regression(config: dict) -> dict:
        return {**config, "adapters_task": "regression"}

    other_task = _copy(sources["b"], tmp_path / "task", "config.json", regression)
    with pytest.raises(AdaptersUserError, match="regression adapter"):
        adapters.MultiAdapter([sources["a"], other_task])
    with pytest.raises(AdaptersUserError, match="two adapters are named 'a'"):
        adapters.MultiAdapter([sources["a"], sources["a"]])
    with pytest.raises(AdaptersUserError, match="adapter name 'x.y'"):
        adapters.MultiAdapter({"x.y": sources["a"]})
    multi = adapters.MultiAdapter({"a": sources["a"]})
    with pytest.raises(AdaptersUserError, match="no adapter named 'c'"):
        multi.predict_proba(rows, adapter="c")
    with pytest.raises(AdaptersUserError, match="adapter= names 2 rows, the inputs have 24"):
        multi.predict_proba(rows, adapter=["a", "a"])


# --- combine ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_each_method_writes_a_loadable_artifact(sources, rows, single, tmp_path: Path, method: str) -> None:
    output = tmp_path / f"combined-{method}"
    result = combine({"a": sources["a"], "b": sources["b"]}, output, method=method, weights=[0.6, 0.4])
    for name in ("adapter_config.json", "adapter_model.safetensors", "config.json", "recipe.yaml"):
        assert (output / name).is_file(), name
    assert (output / "tokenizer_config.json").is_file() and (output / "combine.md").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == [output.name], "no staging dir left"
    probabilities = adapters.load(output).predict_proba(rows)
    assert probabilities.shape == (24, 2) and np.isfinite(probabilities).all()
    for name in ("a", "b"):
        assert np.abs(probabilities - single[name]).max() > 1e-5, f"{method} equals source {name}"
    record = json.loads((output / "combine.json").read_text())
    assert record["method"] == method and record["weights"] == [0.6, 0.4]
    assert record["density"] == (0.5 if method in ("ties", "dare_ties") else None)
    assert [source["name"] for source in record["sources"]] == ["a", "b"]
    config = json.loads((output / "adapter_config.json").read_text())
    assert config["r"] == (8 if method == "cat" else 4) and record["rank"] == config["r"]
    assert (
        config["base_model_name_or_path"]
        == json.loads((sources["a"] / "adapter_config.json").read_text())["base_model_name_or_path"]
    )
    assert set(record["evaluation"]) == {"a", "b"}
    for split in ("a", "b"):
        scored = record["evaluation"][split]
        assert set(scored["sources"]) == {"a", "b"} and "roc_auc" in scored["combined"]
        assert scored["combined"] == pytest.approx(result.evaluation[split]["combined"])
    table = (output / "combine.md").read_text()
    assert (
        "| a roc_auc | a accuracy | b roc_auc | b accuracy | combined roc_auc | combined accuracy |" in table
    )
    assert "\n| a | " in table and "\n| b | " in table and "weighted average" in table


def test_linear_one_zero_reproduces_the_source(sources, rows, single, tmp_path: Path) -> None:
    """All of A and none of B is A: the LoRA matrices and the head are wired in, with A's scaling."""
    from peft import AutoPeftModelForSequenceClassification
    from transformers import AutoConfig, AutoTokenizer

    def uncalibrated(directory: Path, inputs) -> np.ndarray:
        # a combined adapter drops its sources' calibrations (each was fitted to one source's scores)
        classifier = adapters.load(directory)
        logits = classifier.logits(classifier.texts(inputs)).astype(np.float64)
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    for weights, name in (([1.0, 0.0], "a"), ([0.0, 1.0], "b")):
        output = tmp_path / f"only-{name}"
        result = combine({"a": sources["a"], "b": sources["b"]}, output, method="linear", weights=weights)
        assert "calibration" not in json.loads((output / "config.json").read_text())
        np.testing.assert_allclose(
            adapters.load(output).predict_proba(rows), uncalibrated(sources[name], rows), atol=1e-4
        )
        for split in ("a", "b"):
            evaluation = result.evaluation[split]
            # the ranking is the source's; probabilities are not (the sources are calibrated, it is not)
            source_auc = evaluation["sources"][name]["roc_auc"]
            assert evaluation["combined"]["roc_auc"] == pytest.approx(source_auc, abs=1e-6)
    # plain PEFT, no adapters code: the artifact stands on its own
    config = AutoConfig.from_pretrained(output)
    model = AutoPeftModelForSequenceClassification.from_pretrained(
        output, id2label=config.id2label, label2id=config.label2id, num_labels=config.num_labels
    ).eval()
    import torch

    tokenizer = AutoTokenizer.from_pretrained(output)
    texts = rows["note"].tolist()
    with torch.no_grad():
        plain = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.softmax(-1).numpy()
    np.testing.assert_allclose(plain, uncalibrated(sources["b"], texts), atol=1e-4)


def test_combine_cli(sources, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out"
    holdout = write_data(tmp_path, make_frame(30, seed=7), "holdout.csv")
    argv = ["combine", f"first={sources['a']}", f"second={sources['b']}", "--method", "ties"]
    argv += [
        "--weights",
        "0.7,0.3",
        "--density",
        "0.8",
        "--output",
        str(output),
        "--data",
        f"second={holdout}",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| first |" in printed and "| second |" in printed and f"artifact: {output}" in printed
    record = json.loads((output / "combine.json").read_text())
    assert record["weights"] == [0.7, 0.3] and record["density"] == 0.8
    assert record["evaluation"]["second"]["data"] == str(holdout)
    assert record["evaluation"]["first"]["data"] == "recipe test split"
    assert main(argv) == 2 and "exists" in capsys.readouterr().err  # no silent overwrite

    for extra, message in [
        (["--weights", "1"], "--weights: 1 weights for 2 adapters"),
        (["--weights", "1,x"], "not comma-separated numbers"),
        (["--density", "0.5"], "--density applies to ties and dare_ties, not linear"),
        (["--method", "svd"], "unknown method 'svd'"),
    ]:
        target = tmp_path / "refused"
        code = main(["combine", str(sources["a"]), str(sources["b"]), "--output", str(target), *extra])
        error = capsys.readouterr().err
        assert code == 2 and error.startswith("error: ") and message in error and error.count("\n") == 1
        assert not target.exists() and not list(tmp_path.glob(".refused*"))


def test_combine_refusals(sources, tmp_path: Path) -> None:
    def swapped(config: dict) -> dict:
        return {**config, "id2label": {"0": "bad", "1": "good"}, "label2id": {"bad": 0, "good": 1}}

    reordered = _copy(sources["b"], tmp_path / "swapped", "config.json", swapped)
    with pytest.raises(AdaptersUserError, match="labels must be the same"):
        combine([sources["a"], reordered], tmp_path / "x")
    with pytest.raises(AdaptersUserError, match="saves modules"):
        combine([sources["a"], sources["pooled"]], tmp_path / "x")

    def rank8(config: dict) -> dict:
        return {**config, "r": 8}

    wider = _copy(sources["b"], tmp_path / "rank8", "adapter_config.json", rank8)
    with pytest.raises(
        AdaptersUserError, match=r"linear needs adapters of one rank \(r=4 for a, r=8 for rank8\)"
    ):
        combine([sources["a"], wider], tmp_path / "x")

    def from_frame(recipe: dict) -> dict:
        recipe["data"]["source"] = "<DataFrame>"
        return recipe

    framed = _copy(sources["b"], tmp_path / "framed", "recipe.yaml", from_frame)
    with pytest.raises(AdaptersUserError, match="pass --data framed=FILE"):
        combine([sources["a"], framed], tmp_path / "x")
    with pytest.raises(AdaptersUserError, match="no adapter named 'c'"):
        combine([sources["a"], sources["b"]], tmp_path / "x", data={"c": sources["a"] / "config.json"})
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x*"))


def test_failed_combine_leaves_nothing(sources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the adapter is written (here: evaluating it) leaves no output and no staging dir."""

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("adapters.api.evaluate", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        combine([sources["a"], sources["b"]], tmp_path / "out")
    assert not list(tmp_path.iterdir())

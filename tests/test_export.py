"""Merge and ONNX export: standalone models that score as the adapter does, written whole or not at all."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import adapters
from adapters.cli import main
from adapters.errors import AdaptersUserError
from adapters.export import export_onnx
from adapters.merge import merge_adapter
from tests.conftest import make_frame, tiny_recipe, write_data

pytest.importorskip("onnxruntime")

TEXTS = ["debt late salary", "house owner teacher", "unemployed", "stable savings and a loan risk"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    recipe = tiny_recipe(tiny_model_dir, training={"epochs": 2}, method={"modules_to_save": ["pooler"]})
    output = tmp_path_factory.mktemp("export") / "tiny"
    return adapters.train(recipe, data=make_frame(80), output_dir=output, progress=False).output_dir


@pytest.fixture(scope="module")
def merged(trained: Path) -> Path:
    output = trained.parent / "merged"
    assert main(["merge", str(trained), str(output)]) == 0
    return output


@pytest.fixture(scope="module")
def exported(trained: Path) -> Path:
    rows = write_data(trained.parent, make_frame(60, seed=5), "parity.csv")
    output = trained.parent / "onnx"
    assert main(["export", str(trained), str(output), "--onnx", "--int8", "--data", str(rows)]) == 0
    return output


def _pipeline_proba(directory: Path, texts: list[str], label_names: list[str]) -> np.ndarray:
    from transformers import pipeline

    scored = pipeline("text-classification", model=str(directory), top_k=None)(texts)
    return np.array(
        [[next(s["score"] for s in row if s["label"] == name) for name in label_names] for row in scored]
    )


def _nothing_written(output: Path) -> bool:
    return not output.exists() and not list(output.parent.glob(f".{output.name}.*"))


def test_merged_model_loads_with_pipeline_and_scores_as_the_adapter(trained: Path, merged: Path) -> None:
    classifier = adapters.load(trained)
    np.testing.assert_allclose(
        _pipeline_proba(merged, TEXTS, classifier.label_names), classifier.predict_proba(TEXTS), atol=1e-5
    )
    files = {path.name for path in merged.iterdir()}
    assert "model.safetensors" in files and "adapter_config.json" not in files  # standalone, no PEFT
    assert not list(merged.glob("*.bin")) and not list(merged.glob("*.pt"))
    config = json.loads((merged / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "good", "1": "bad"} and config["label2id"] == {"good": 0, "bad": 1}
    assert config["positive_label"] == "bad" and config["decision_threshold"] == 0.5
    assert "label_thresholds" not in config  # unset settings are not saved as null
    record = json.loads((merged / "merge.json").read_text())
    assert record["source_adapter"] == str(trained.resolve()) and record["note"] is None
    assert Path(record["base_model"]).name.startswith("tiny-bert") and record["method"] == "lora"
    assert record["merge_max_abs_diff"] < 1e-5
    assert (merged / "lineage.json").read_bytes() == (trained / "lineage.json").read_bytes()
    assert json.loads((merged / "tokenizer_config.json").read_text())["model_max_length"] == 32


def test_merge_refuses_an_existing_output_and_a_non_artifact(trained: Path, merged: Path, capsys) -> None:
    before = (merged / "model.safetensors").stat().st_mtime_ns
    assert main(["merge", str(trained), str(merged)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "--overwrite" in error and error.count("\n") == 1
    assert (merged / "model.safetensors").stat().st_mtime_ns == before
    empty = trained.parent / "not-an-artifact"
    empty.mkdir(exist_ok=True)
    target = trained.parent / "never"
    assert main(["merge", str(empty), str(target)]) == 2
    error = capsys.readouterr().err
    assert "not an adapter directory" in error and error.count("\n") == 1
    assert _nothing_written(target)


def _edited_copy(trained: Path, name: str, **config: object) -> Path:
    copy = trained.parent / name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(trained, copy)
    saved = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**saved, **config}))
    return copy


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"adapters_task": "regression", "problem_type": "regression"},
            "cannot merge this regression adapter",
        ),
        ({"adapters_task": "sft"}, "cannot merge this sft adapter: it is a causal LM"),
        ({"verbalizer": {"question": "Good?", "words": {}, "token_ids": [1, 2]}}, "verbalizer"),
    ],
    ids=["regression", "sft", "verbalizer"],
)
def test_merge_refuses_tasks_no_pipeline_reproduces(trained: Path, config: dict, message: str) -> None:
    source = _edited_copy(trained, "edited", **config)
    target = trained.parent / "refused"
    with pytest.raises(AdaptersUserError, match=message):
        merge_adapter(source, target)
    assert _nothing_written(target)


def test_merge_refuses_prompt_learning(tiny_model_dir: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(tiny_model_dir)
    recipe["method"] = {"type": "prompt_tuning", "num_virtual_tokens": 4}
    artifact = adapters.train(recipe, data=make_frame(40), output_dir=tmp_path / "pt", progress=False)
    with pytest.raises(
        AdaptersUserError, match="prompt_tuning is a prompt-learning method.*nothing to merge"
    ):
        merge_adapter(artifact.output_dir, tmp_path / "merged")
    assert _nothing_written(tmp_path / "merged")


def test_merge_token_classification_for_the_token_pipeline(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForTokenClassification, pipeline

    overrides = {"model.name_or_path": str(tiny_model_dir), "training.max_steps": 4}
    overrides.update({"data.train_fraction": 0.2, "data.max_length": 48})
    source = adapters.train("loan-notes/pii-tagging", overrides, output_dir=tmp_path / "pii", progress=False)
    output = merge_adapter(source.output_dir, tmp_path / "merged")
    assert json.loads((output / "merge.json").read_text())["pipeline"] == "token-classification"
    classifier = adapters.load(source.output_dir)
    standalone = AutoModelForTokenClassification.from_pretrained(output)
    encoded = classifier.tokenizer(["Call Anna Weber on +49-0301234567 ."], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(standalone(**encoded).logits, classifier.model(**encoded).logits)
    found = pipeline("token-classification", model=str(output))("Call Anna Weber .")
    assert all(item["entity"] in classifier.label_names for item in found)


@pytest.mark.bnb
def test_8bit_adapter_merges_into_the_full_precision_base(recipe_for, tmp_path: Path, capsys) -> None:
    recipe = recipe_for(model={"quantization": "8bit"}, training={"epochs": 2, "learning_rate": 1e-2})
    source = adapters.train(recipe, data=make_frame(80), output_dir=tmp_path / "q8", progress=False)
    assert main(["merge", str(source.output_dir), str(tmp_path / "merged")]) == 0
    printed = capsys.readouterr().out.splitlines()
    notes = [line for line in printed if line.startswith("note: ")]
    assert len(notes) == 1 and "8bit base" in notes[0] and "full precision" in notes[0]
    record = json.loads((tmp_path / "merged" / "merge.json").read_text())
    assert record["trained_quantization"] == "8bit" and record["merged_dtype"] == "float32"
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert "quantization_config" not in config
    quantized = adapters.load(source.output_dir)
    merged = _pipeline_proba(tmp_path / "merged", TEXTS, quantized.label_names)
    np.testing.assert_allclose(merged, quantized.predict_proba(TEXTS), atol=5e-2)  # int8 vs fp32 weights


def test_onnx_fp32_scores_as_pytorch(trained: Path, exported: Path) -> None:
    import onnxruntime

    from adapters.export import OnnxClassifier

    texts = [*TEXTS, "salary " * 40]  # a long row: the sequence axis is dynamic (and truncated to 32)
    expected = adapters.load(trained).predict_proba(texts)
    np.testing.assert_allclose(OnnxClassifier(exported).predict_proba(texts), expected, atol=1e-4)
    # plain onnxruntime: inputs as the saved tokenizer gives them, one output "logits", any batch size
    session = onnxruntime.InferenceSession(str(exported / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [node.name for node in session.get_outputs()] == ["logits"]
    names = {node.name for node in session.get_inputs()}
    assert names == {"input_ids", "attention_mask", "token_type_ids"}
    from transformers import AutoTokenizer

    encoded = AutoTokenizer.from_pretrained(exported)(texts[:3], padding=True, return_tensors="np")
    (logits,) = session.run(["logits"], {name: encoded[name] for name in names})
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected[:3], atol=1e-4)


def test_onnx_int8_is_smaller_and_close(trained: Path, exported: Path) -> None:
    from adapters.export import OnnxClassifier

    fp32, int8 = exported / "model.onnx", exported / "model.int8.onnx"
    assert int8.is_file() and int8.stat().st_size < 0.5 * fp32.stat().st_size
    full = OnnxClassifier(exported).predict_proba(TEXTS)
    np.testing.assert_allclose(
        OnnxClassifier(exported, "model.int8.onnx").predict_proba(TEXTS), full, atol=0.1
    )


def test_parity_json_reports_both_models(exported: Path) -> None:
    report = json.loads((exported / "parity.json").read_text())
    assert report["rows"] == 60 and report["rows_from"].endswith("parity.csv")
    assert report["positive_label"] == "bad" and 0 <= report["reference_roc_auc"] <= 1
    assert report["merged_torch"]["max_abs_prob_diff"] < 1e-5
    for key, bound in (("onnx_fp32", 1e-4), ("onnx_int8", 0.1)):
        row = report[key]
        assert row["max_abs_prob_diff"] < bound and row["bytes"] == (exported / row["file"]).stat().st_size
        assert row["roc_auc_diff"] == pytest.approx(row["roc_auc"] - report["reference_roc_auc"])
    assert abs(report["onnx_fp32"]["roc_auc_diff"]) < 0.01
    assert {"model.onnx", "config.json", "tokenizer.json", "merge.json"} <= {
        p.name for p in exported.iterdir()
    }


def test_export_refusals_are_one_line_and_write_nothing(trained: Path, exported: Path, capsys) -> None:
    target = trained.parent / "never-onnx"
    before = (exported / "parity.json").read_text()
    cases = [
        (["export", str(trained), str(exported), "--onnx"], "--overwrite"),
        (["export", str(trained), str(target)], "--onnx"),
        (["export", str(trained), str(target), "--onnx"], "trained from a DataFrame"),  # no rows to check on
        (["export", str(trained.parent / "not-an-artifact"), str(target), "--onnx"], "not an adapter"),
    ]
    (trained.parent / "not-an-artifact").mkdir(exist_ok=True)
    for argv, message in cases:
        assert main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.startswith("error: ") and message in error and error.count("\n") == 1, error
        assert _nothing_written(target)
    assert (exported / "parity.json").read_text() == before
    multi = _edited_copy(trained, "multi", adapters_task="multi_label")
    with pytest.raises(
        AdaptersUserError, match="supports classification adapters with a head, not multi_label"
    ):
        export_onnx(multi, target, data=TEXTS)
    assert _nothing_written(target)


def test_failed_parity_check_leaves_nothing(trained: Path, tmp_path: Path, monkeypatch) -> None:
    from adapters import export

    monkeypatch.setattr(export, "_FP32_TOLERANCE", -1.0)
    with pytest.raises(RuntimeError, match="does not reproduce the merged model"):
        export.export_onnx(trained, tmp_path / "onnx", data=TEXTS)
    assert _nothing_written(tmp_path / "onnx")


def test_missing_onnx_names_the_extra(monkeypatch) -> None:
    from adapters.export import require_onnx

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(AdaptersUserError, match=r"pip install 'peft-recipes\[onnx\]'"):
        require_onnx()

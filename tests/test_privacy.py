"""DP-LoRA (training.privacy): exact per-example gradients, the privacy spent, refusals, the missing extra.

Opacus has computed silently wrong per-sample gradients before (opacus #820); the clipping, and so the
guarantee, is only as good as they are. The first tests compare them with one backward pass per example.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import adapters
from adapters.cli import main
from adapters.data import prepare_data
from adapters.errors import AdaptersUserError
from adapters.heads import class_logits, task_loss
from adapters.recipe import PrivacyConfig, load_recipe
from adapters.training import run_training
from tests.conftest import make_frame, write_data

# The missing-extra test runs either way; the others need the [dp] extra.
needs_opacus = pytest.mark.skipif(importlib.util.find_spec("opacus") is None, reason="needs opacus ([dp])")

TEXTS = [  # different token lengths, so the batch is padded
    "salary",
    "debt late default risk loan unemployed debt",
    "owner teacher",
    "stable savings house owner salary",
    "late loan risk",
]
LABELS = [0, 1, 0, 1, 1]
PRIVATE = {"privacy": {"epsilon": 8}}


LORA = {"type": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["query", "value"], "lora_dropout": 0.0}


def _tiny_peft(model_dir: Path, method: dict[str, Any] = LORA) -> Any:
    """The library's own model build (the new head in modules_to_save), trainable weights randomised."""
    from adapters.methods import MethodConfig
    from adapters.modeling import build_model
    from adapters.recipe import ModelConfig

    built = build_model(
        ModelConfig(name_or_path=str(model_dir)), MethodConfig(**method), ["good", "bad"], "bad"
    )
    torch.manual_seed(3)
    with torch.no_grad():  # lora_B starts at zero, which would make lora_A's gradients trivially zero
        for param in built.model.parameters():
            if param.requires_grad:
                param.normal_(0.0, 0.3)
    return built


def _features(tokenizer: Any) -> list[dict[str, Any]]:
    encoded = tokenizer(TEXTS)
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": label, "row_index": index}
        for index, (ids, mask, label) in enumerate(
            zip(encoded["input_ids"], encoded["attention_mask"], LABELS, strict=True)
        )
    ]


def _loader(tokenizer: Any, features: list[dict[str, Any]]) -> torch.utils.data.DataLoader:
    from adapters.data.tokenize import _collator

    return torch.utils.data.DataLoader(features, batch_size=2, collate_fn=_collator(tokenizer))


def _one_by_one(model: torch.nn.Module, tokenizer: Any) -> list[dict[str, torch.Tensor]]:
    """Reference: each example alone, unpadded, one backward pass each."""
    names = [name for name, param in model.named_parameters() if param.requires_grad]
    params = [param for param in model.parameters() if param.requires_grad]
    grads = []
    for text, label in zip(TEXTS, LABELS, strict=True):
        inputs = tokenizer([text], return_tensors="pt")
        loss = task_loss(class_logits(model, dict(inputs), None), torch.tensor([label]), None)
        grads.append(dict(zip(names, torch.autograd.grad(loss, params), strict=True)))
    return grads


def _assert_matches(per_sample: dict[str, torch.Tensor], reference: list[dict[str, torch.Tensor]]) -> None:
    assert per_sample.keys() == reference[0].keys()
    assert any("classifier" in name for name in per_sample)
    for name, samples in per_sample.items():
        assert samples.shape[0] == len(TEXTS)
        for index, single in enumerate(reference):
            expected = single[name]
            assert expected.abs().max() > 1e-4  # a real gradient, not a trivially equal zero
            torch.testing.assert_close(samples[index], expected, atol=1e-5, rtol=1e-4, msg=name)


@needs_opacus
def test_library_per_example_gradients_equal_single_example_passes(tiny_model_dir: Path) -> None:
    """What training uses: make_private's hooks, the library's collate (padding) and per-example loss;
    and the placeholder row of an empty Poisson draw, whose gradient must be zero (the step is noise)."""
    from adapters.privacy import make_private

    built = _tiny_peft(tiny_model_dir)
    model, features = built.model, _features(built.tokenizer)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.eval()  # make_private must put it in train mode itself ("No activations detected" otherwise)
    private = make_private(model, optimizer, _loader(built.tokenizer, features), 3, PrivacyConfig(), 5)
    assert model.training
    batch = private.train_loader.collate_fn([dict(feature) for feature in features])
    assert batch["attention_mask"].sum(-1).unique().numel() > 2  # really padded
    logits = class_logits(model, {k: batch[k] for k in ("input_ids", "attention_mask")}, None)
    loss = private.mean_loss(task_loss(logits, batch["labels"], None, reduction="none"), batch)
    loss.backward()
    per_sample = {n: p.grad_sample.clone() for n, p in model.named_parameters() if p.requires_grad}

    # An empty Poisson draw runs one placeholder row whose per-example gradient is exactly zero.
    private.optimizer.zero_grad()
    empty = private.train_loader.collate_fn([])
    assert empty["row_index"].tolist() == [-1]
    logits = class_logits(model, {k: empty[k] for k in ("input_ids", "attention_mask")}, None)
    private.mean_loss(task_loss(logits, empty["labels"], None, reduction="none"), empty).backward()
    for param in model.parameters():
        if param.requires_grad:
            assert param.grad_sample.shape[0] == 1 and not param.grad_sample.any()

    figures = private.report()  # takes the hooks off: the reference passes run on a plain model
    assert figures["steps"] == 0 and figures["epsilon"] == 0.0
    assert not any(hasattr(param, "grad_sample") for param in model.parameters())
    _assert_matches(per_sample, _one_by_one(model, built.tokenizer))


@needs_opacus
@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # frozen inputs: expected with LoRA
@pytest.mark.parametrize(
    "method",
    [
        LORA,
        {**LORA, "type": "rslora"},
        {"type": "ln_tuning", "target_modules": ["LayerNorm"]},
    ],
    ids=lambda method: method["type"],
)
def test_grad_sample_module_equals_single_example_passes(tiny_model_dir: Path, method: dict) -> None:
    """Opacus's GradSampleModule gives the exact per-example gradients for every method DP accepts."""
    from opacus.grad_sample import GradSampleModule

    built = _tiny_peft(tiny_model_dir, method)
    model = built.model.train()
    inputs = built.tokenizer(TEXTS, padding=True, return_tensors="pt")
    wrapped = GradSampleModule(model)
    loss = task_loss(wrapped(**inputs).logits, torch.tensor(LABELS), None)  # a batch mean
    loss.backward()
    per_sample = {n: p.grad_sample.clone() for n, p in model.named_parameters() if p.requires_grad}
    wrapped.to_standard_module()
    _assert_matches(per_sample, _one_by_one(model, built.tokenizer))


def _captured_outcomes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    import adapters.training

    outcomes: list[Any] = []
    real = adapters.training.run_training

    def capture(*args: Any, **kwargs: Any) -> Any:
        outcomes.append(real(*args, **kwargs))
        return outcomes[-1]

    monkeypatch.setattr(adapters.training, "run_training", capture)
    return outcomes


def _adapter_tensors(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(directory / "adapter_model.safetensors"))


@needs_opacus
def test_private_run_spends_at_most_epsilon_and_reloads(
    recipe_for, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes = _captured_outcomes(monkeypatch)
    frame = make_frame(80)
    private = adapters.train(
        recipe_for(training={"epochs": 2, **PRIVATE}), data=frame, output_dir=tmp_path / "dp", progress=False
    )
    spent = outcomes[-1].privacy
    assert 0 < spent["epsilon"] <= 8.0
    assert spent["steps"] == spent["planned_steps"] == outcomes[-1].steps
    assert spent["delta"] == pytest.approx(1 / 48)  # 80 rows, 60% for training
    assert spent["noise_multiplier"] > 0 and spent["accountant"] == "prv"
    # write_artifact reloaded the adapter with plain PEFT and compared predictions; it loads again here
    probabilities = private.load().predict_proba(["salary house", "debt late"])
    assert probabilities.shape == (2, 2)
    lineage = json.loads((tmp_path / "dp" / "lineage.json").read_text())
    assert lineage["privacy"]["epsilon"] == spent["epsilon"]
    assert lineage["recipe"]["training"]["privacy"]["epsilon"] == 8
    assert "differential privacy" in (tmp_path / "dp" / "README.md").read_text()
    metrics = json.loads((tmp_path / "dp" / "metrics.json").read_text())
    assert metrics["privacy"] == spent

    plain = adapters.train(
        recipe_for(training={"epochs": 2}), data=frame, output_dir=tmp_path / "plain", progress=False
    )
    assert outcomes[-1].privacy is None
    private_weights, plain_weights = _adapter_tensors(private.output_dir), _adapter_tensors(plain.output_dir)
    assert private_weights.keys() == plain_weights.keys()
    assert max(float((private_weights[k] - plain_weights[k]).abs().max()) for k in plain_weights) > 1e-3


@needs_opacus
def test_early_stop_reports_the_smaller_epsilon_spent(recipe_for) -> None:
    recipe = load_recipe(
        recipe_for(
            training={
                "epochs": 3,
                "eval_every": 1,
                "learning_rate": 1e-12,  # never improves: stops after `patience` evaluations
                "early_stopping_patience": 2,
                "privacy": {"epsilon": 8, "accountant": "rdp"},
            }
        )
    )
    outcome = run_training(recipe, prepare_data(recipe.data, make_frame(80)), progress=False)
    spent = outcome.privacy
    assert spent["accountant"] == "rdp"
    assert spent["steps"] == outcome.steps == 3 < spent["planned_steps"] == 18
    assert 0 < spent["epsilon"] < 8.0


@needs_opacus
@pytest.mark.parametrize(
    ("sections", "words"),
    [
        ({"training": {"gradient_accumulation_steps": 2}}, "gradient_accumulation_steps"),
        ({"training": {"checkpoint_every": 1}}, "checkpoint_every"),
        ({"training": {"gradient_checkpointing": True}}, "gradient_checkpointing"),
        ({"method": {"type": "dora", "r": 4, "target_modules": ["query", "value"]}}, "dora"),
        ({"method": {"type": "prompt_tuning", "num_virtual_tokens": 3}}, "prompt_tuning"),
        ({"method": {**LORA, "use_dora": True}}, "lora_magnitude_vector"),  # caught on the built model
    ],
)
def test_refused_combinations_are_one_line(recipe_for, sections: dict, words: str) -> None:
    raw = recipe_for(training={**PRIVATE, **sections.get("training", {})})
    if "method" in sections:  # the whole section: the tiny recipe's LoRA keys do not fit other methods
        raw["method"] = sections["method"]
    recipe = load_recipe(raw)
    with pytest.raises(AdaptersUserError) as caught:
        run_training(recipe, prepare_data(recipe.data, make_frame(80)), progress=False)
    assert words in str(caught.value) and len(str(caught.value).splitlines()) == 1


@needs_opacus
@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"num_processes": 2}, "one process"),
        ({"num_processes": 1, "distributed_type": "DistributedType.FSDP"}, "one process"),
        ({"num_processes": 1, "mixed_precision": "fp16"}, "fp16"),
    ],
)
def test_refused_topologies(recipe_for, arguments: dict, words: str) -> None:
    from adapters.privacy import check_private_training

    recipe = load_recipe(recipe_for(training=PRIVATE))
    with pytest.raises(AdaptersUserError, match=words) as caught:
        check_private_training(recipe, **arguments)
    assert str(caught.value).startswith("training.privacy: ")
    quantized = recipe.model_copy(update={"model": recipe.model.model_copy(update={"quantization": "8bit"})})
    with pytest.raises(AdaptersUserError, match="quantization"):
        check_private_training(quantized, 1)


@needs_opacus
def test_cli_refusal_exits_2_with_one_line(
    recipe_for, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    recipe = recipe_for(
        data={"source": str(write_data(tmp_path, make_frame(80)))},
        training={"max_steps": 2, "output_dir": str(tmp_path / "out"), **PRIVATE},
    )
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path), "training.gradient_accumulation_steps=2", "--no-progress"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "training.privacy" in error[0] and "gradient_accumulation_steps" in error[0]
    assert not (tmp_path / "out").exists()


def test_missing_opacus_names_the_extra(recipe_for, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from adapters.privacy import require_opacus

    monkeypatch.setitem(sys.modules, "opacus", None)  # `import opacus` now raises ImportError
    with pytest.raises(AdaptersUserError, match=r"pip install 'peft-recipes\[dp\]'"):
        require_opacus()
    with pytest.raises(AdaptersUserError, match=r"peft-recipes\[dp\]") as caught:
        adapters.train(recipe_for(training=PRIVATE), data=make_frame(80), output_dir=tmp_path / "out")
    assert len(str(caught.value).splitlines()) == 1
    assert not (tmp_path / "out").exists()

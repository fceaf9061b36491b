"""Merge a trained adapter into its base model: one standalone transformers model, no PEFT at serving time.

``merge_and_unload()`` folds the adapter's weight deltas into the base weights and puts the trained copies
of ``modules_to_save`` (the task head) in place, so the result is a plain ``...ForSequenceClassification``
that ``transformers.pipeline`` loads and that runs as fast as the base model. The saved config keeps the
labels and this package's decision settings (threshold, positive label, per-label thresholds); a fitted
temperature is folded into the last layer, so the pipeline's probabilities are the calibrated ones.

What cannot be merged is refused with the reason: prompt-learning methods (their virtual tokens are
inputs, not weight deltas), tasks no pipeline scores as :class:`adapters.Classifier` does (regression,
verbalizer classifiers, SFT). An adapter trained on an 8/4-bit base is merged into the base reloaded in
full precision: LoRA cannot merge into bitsandbytes weights (peft #638).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.artifact import check_output_location, refuse_existing, staged_output, write_json
from adapters.errors import AdaptersUserError
from adapters.recipe import Recipe, load_recipe

__all__ = ["MERGE_FILE", "MergedModel", "merge_adapter", "mergeable_task", "merged_model", "read_artifact"]

MERGE_FILE = "merge.json"

# adapters task -> the transformers pipeline that reproduces its scores from the merged model
PIPELINES = {
    "classification": "text-classification",
    "multi_label": "text-classification",
    "token_classification": "token-classification",
}
_REFUSED = {
    "regression": "the text-classification pipeline would squash its standardised output with a sigmoid",
    "sft": "it is a causal LM for generation; serve the adapter with PEFT or merge it with PEFT directly",
}
# Texts the merged model must score as the unmerged one did (a guard against a lost head or a bad merge).
_PROBES = ["stable salary, owns a house", "late payments and unpaid debt", "x"]


@dataclass
class MergedModel:
    """A merged model in memory, with what is needed to save or export it."""

    model: Any
    tokenizer: Any
    recipe: Recipe
    task: str
    note: str | None
    record: dict[str, Any] = field(default_factory=dict)


def read_artifact(directory: str | Path) -> tuple[Recipe, dict[str, Any], dict[str, Any]]:
    """The recipe, saved config.json and adapter_config.json of an artifact directory (no model loaded)."""
    directory = Path(directory)
    for name in ("adapter_config.json", "config.json", "recipe.yaml"):
        if not (directory / name).is_file():
            raise AdaptersUserError(f"not an adapter directory (no {name})", where=str(directory))
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    adapter = json.loads((directory / "adapter_config.json").read_text(encoding="utf-8"))
    return load_recipe(directory / "recipe.yaml"), config, adapter


def mergeable_task(directory: str | Path) -> str:
    """The artifact's task, or a one-line refusal saying why it cannot be merged (no model loaded)."""
    from peft import PeftConfig

    directory = Path(directory)
    _, config, adapter = read_artifact(directory)
    method = str(adapter.get("peft_type", "?")).lower()
    if PeftConfig.from_pretrained(str(directory)).is_prompt_learning:
        raise AdaptersUserError(
            f"{method} is a prompt-learning method: its virtual tokens are model inputs, not weight "
            "deltas, so there is nothing to merge; serve the adapter itself (adapters.load)",
            where=str(directory),
        )
    task = config.get("adapters_task") or "classification"
    if config.get("verbalizer"):
        raise AdaptersUserError(
            "cannot merge a verbalizer classifier: its class scores are answer-word logits of a causal LM, "
            "which no transformers pipeline reproduces; serve the adapter itself (adapters.load)",
            where=str(directory),
        )
    if task not in PIPELINES:
        reason = _REFUSED.get(task, "no transformers pipeline reproduces its scores")
        raise AdaptersUserError(f"cannot merge this {task} adapter: {reason}", where=str(directory))
    return task


def _scores(model: Any, tokenizer: Any, problem_type: str | None) -> Any:
    import torch

    from adapters.heads import to_scores

    encoded = tokenizer(_PROBES, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return to_scores(model(**encoded).logits.float(), problem_type)


def _fold_temperature(model: Any, tokenizer: Any, problem_type: str | None) -> str | None:
    """Fold a saved temperature into the classifier's last layer, so every consumer of the merged model
    (``pipeline``, ONNX) gets calibrated probabilities: softmax(W x / T) = softmax((W / T) x).

    The last linear layer with one output per label is the one that makes the logits. Isotonic calibration
    is no layer: it stays in config.json for the caller to apply (the note says so).
    """
    import torch

    from adapters.metrics.calibration import apply_calibration

    spec = getattr(model.config, "calibration", None)
    if not spec:
        return None
    if spec.get("method") != "temperature":
        return (
            f"{spec.get('method')} calibration is not folded into the weights: apply config.json's "
            "`calibration` to the pipeline's probabilities"
        )
    heads = [
        module
        for module in model.modules()
        if isinstance(module, torch.nn.Linear) and module.out_features == model.config.num_labels
    ]
    if not heads:
        return "no linear output layer found: the temperature stays in config.json (`calibration`)"
    expected = apply_calibration(_scores(model, tokenizer, problem_type).numpy(), spec)
    temperature = float(spec["temperature"])
    with torch.no_grad():
        heads[-1].weight.div_(temperature)
        if heads[-1].bias is not None:
            heads[-1].bias.div_(temperature)
    difference = float(abs(_scores(model, tokenizer, problem_type).numpy() - expected).max())
    if difference > 1e-5:
        raise RuntimeError(f"folding the temperature changed the scores by {difference:.3g}; nothing written")
    model.config.calibration = None  # applied by the weights now; saving it too would apply it twice
    return f"temperature {temperature:g} folded into the classifier's last layer (weights and bias / T)"


def merged_model(directory: str | Path) -> MergedModel:
    """Reload the adapter in full precision on the CPU, merge it, and check the merge changed no score."""
    import peft
    import transformers

    from adapters.reload import OWN_CONFIG_KEYS, load_adapter_model

    directory = Path(directory)
    task = mergeable_task(directory)
    recipe, _, adapter = read_artifact(directory)
    model_config, note = recipe.model, None
    if model_config.quantization != "none":
        model_config = model_config.model_copy(update={"quantization": "none"})
        note = (
            f"trained on a {recipe.model.quantization} base: merged into the base reloaded in full precision "
            f"({model_config.torch_dtype}), since LoRA cannot merge into bitsandbytes weights (peft #638); "
            "scores differ slightly from the quantized adapter's"
        )
    model, tokenizer = load_adapter_model(directory, model_config, "cpu")
    problem_type = model.get_base_model().config.problem_type
    before = _scores(model, tokenizer, problem_type)
    try:
        merged = model.merge_and_unload()
    except (NotImplementedError, ValueError, AttributeError) as exc:
        message = f"PEFT cannot merge this {adapter.get('peft_type', '')} adapter ({exc})"
        raise AdaptersUserError(message, where=str(directory)) from None
    difference = float((before - _scores(merged, tokenizer, problem_type)).abs().max())
    if difference > 1e-4:
        raise RuntimeError(f"merging changed the scores by {difference:.3g}; nothing was written")
    calibration_note = _fold_temperature(merged, tokenizer, problem_type)
    for key in OWN_CONFIG_KEYS:  # reload sets them all; keep only those the artifact has
        if getattr(merged.config, key, None) is None and hasattr(merged.config, key):
            delattr(merged.config, key)
    # The pipeline truncates to the tokenizer's limit; make it the length the adapter was trained with.
    tokenizer.model_max_length = tokenizer.init_kwargs["model_max_length"] = recipe.data.max_length
    record = {
        "source_adapter": str(directory.resolve()),
        "base_model": adapter.get("base_model_name_or_path"),
        "base_model_revision": adapter.get("revision"),
        "method": recipe.method.type,
        "task": task,
        "pipeline": PIPELINES[task],
        "trained_quantization": recipe.model.quantization,
        "merged_dtype": str(next(merged.parameters()).dtype).removeprefix("torch."),
        "merge_max_abs_diff": difference,
        "calibration": calibration_note,
        "note": note,
        "versions": {"peft": peft.__version__, "transformers": transformers.__version__},
    }
    return MergedModel(merged, tokenizer, recipe, task, note, record)


def merge_adapter(directory: str | Path, output: str | Path, overwrite: bool = False) -> Path:
    """Write the merged model of the artifact ``directory`` to ``output``; return ``output``.

    ``output`` holds safetensors weights, config.json (labels and decision settings), the tokenizer and
    ``merge.json`` (source adapter, base model, the merge note). It is assembled in a hidden staging
    directory and renamed into place, so a failure leaves nothing behind; an existing ``output`` is
    replaced only with ``overwrite``.
    """
    directory, output = Path(directory), Path(output)
    mergeable_task(directory)  # a wrong directory is reported before the output is looked at
    refuse_existing(output, overwrite)
    check_output_location(output, None, [directory])
    merged = merged_model(directory)
    with staged_output(output, overwrite) as staging:
        merged.model.save_pretrained(staging)
        merged.tokenizer.save_pretrained(staging)
        write_json(staging / MERGE_FILE, merged.record)
        if (directory / "lineage.json").is_file():  # the merged model has the adapter's provenance
            shutil.copyfile(directory / "lineage.json", staging / "lineage.json")
    return output

"""The model card (README.md of an artifact): base model, method, data, metrics, how to load it."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from adapters.data.builtin import BUILTIN_DATASETS
from adapters.recipe import Recipe

__all__ = ["render_model_card", "write_model_card"]


def _format(value: float) -> str:
    return "n/a" if value != value else f"{value:.4f}"  # NaN check without numpy


def render_model_card(
    recipe: Recipe, data: Any, metrics: dict[str, dict[str, float]], summary: dict[str, Any]
) -> str:
    """Fill the card template; the YAML header is Hub metadata (library, base model, tags, metrics)."""
    base = summary.get("base_model", {})
    base_id = base.get("hub_id") or base.get("local_path") or recipe.model.name_or_path
    base_note = (
        f" (loaded from the copy embedded in `{base['embedded_in']}`)" if base.get("embedded_in") else ""
    )
    source = data.info.get("source", recipe.data.source)
    data_note = ""
    builtin = BUILTIN_DATASETS.get(recipe.data.source)
    if builtin is not None:
        data_note = f". {builtin.citation} Licence: {builtin.license}."
    rows = data.info.get("rows", {})
    names = sorted(set(metrics.get("validation", {})) | set(metrics.get("test", {})))
    metric_rows = "\n".join(
        f"| {name} | {_format(metrics.get('validation', {}).get(name, float('nan')))} | "
        f"{_format(metrics.get('test', {}).get(name, float('nan')))} |"
        for name in names
    )
    card_data = {
        "library_name": "peft",
        "base_model": base_id,
        "pipeline_tag": "text-generation"
        if recipe.model.verbalizer or recipe.task == "sft"
        else "token-classification"
        if recipe.task == "token_classification"
        else "text-classification",
        "tags": ["peft", recipe.method.type, "peft-recipes"],
        "model-index": [
            {
                "name": recipe.name,
                "results": [
                    {
                        "task": {"type": "text-classification"},
                        "dataset": {
                            "name": str(recipe.data.source),
                            "type": str(recipe.data.source),
                            "split": "test",
                        },
                        "metrics": [
                            {"type": name, "value": float(value)}
                            for name, value in metrics.get("test", {}).items()
                            if value == value
                        ],
                    }
                ],
            }
        ],
    }
    template = files("adapters").joinpath("templates/model_card.md").read_text(encoding="utf-8")
    return template.format(
        card_data=yaml.safe_dump(card_data, sort_keys=False).strip(),
        name=recipe.name,
        description=recipe.description or "",
        method=recipe.method.type,
        base_model=base_id,
        base_note=base_note,
        remote_code=(
            "**executed** — `trust_remote_code: true`: Python code shipped with the base model ran "
            "during training and runs again when the adapter is loaded"
            if recipe.model.trust_remote_code
            else "none executed (`trust_remote_code: false`)"
        ),
        task_line=_task_line(recipe, data.label_names),
        decision_line=_decision_line(recipe, data.label_names),
        use_code=_use_code(recipe),
        method_args=", ".join(f"{k}={v}" for k, v in recipe.method.peft_kwargs().items()) or "defaults",
        modules_to_save=", ".join(f"`{m}`" for m in base.get("modules_to_save", [])) or "none",
        data_source=source,
        data_rows=", ".join(f"{split}: {count} rows" for split, count in rows.items()),
        data_note=data_note,
        primary_metric=recipe.eval.primary_metric,
        metric_rows=metric_rows,
        steps=summary.get("steps"),
        seconds=summary.get("train_seconds"),
        best_step=summary.get("best_step"),
        test_rows=rows.get("test", "?"),
    )


_USE_HEAD = """from peft import AutoPeftModelForSequenceClassification
from transformers import AutoConfig, AutoTokenizer

config = AutoConfig.from_pretrained("PATH")  # labels, problem type, thresholds (or target scale)
model = AutoPeftModelForSequenceClassification.from_pretrained(
    "PATH", id2label=config.id2label, label2id=config.label2id, num_labels=config.num_labels,
    problem_type=config.problem_type,
)
tokenizer = AutoTokenizer.from_pretrained("PATH")"""

_USE_VERBALIZER = """from peft import AutoPeftModelForCausalLM
from transformers import AutoConfig, AutoTokenizer

config = AutoConfig.from_pretrained("PATH")  # config.verbalizer: question, answer words, token ids
model = AutoPeftModelForCausalLM.from_pretrained("PATH")
tokenizer = AutoTokenizer.from_pretrained("PATH")  # left padding
# scores: model(**tokenizer([text + "\\n" + config.verbalizer["question"]], return_tensors="pt"))
#         .logits[:, -1, config.verbalizer["token_ids"]].softmax(-1)"""


_USE_GENERATE = """from peft import AutoPeftModelForCausalLM
from transformers import AutoTokenizer

model = AutoPeftModelForCausalLM.from_pretrained("PATH")
tokenizer = AutoTokenizer.from_pretrained("PATH")
inputs = tokenizer(PROMPT + "\\n", return_tensors="pt")  # the prompt, rendered as in recipe.yaml
answer = model.generate(**inputs, max_new_tokens=32, do_sample=False)[0, inputs["input_ids"].shape[1]:]
print(tokenizer.decode(answer, skip_special_tokens=True))"""


def _use_code(recipe: Recipe) -> str:
    if recipe.task == "sft":
        return _USE_GENERATE
    if recipe.model.verbalizer:
        return _USE_VERBALIZER
    if recipe.task == "token_classification":
        return _USE_HEAD.replace("SequenceClassification", "TokenClassification")
    return _USE_HEAD


def _task_line(recipe: Recipe, labels: list[str]) -> str:
    if recipe.task == "sft":
        return "instruction tuning (responses generated after the prompt; loss on the responses only)"
    if recipe.task == "token_classification":
        return f"token classification (one tag per word: {', '.join(labels)})"
    if recipe.task == "regression":
        return f"regression of `{labels[0]}` (predictions in its own units)"
    if recipe.task == "multi_label":
        return f"multi-label classification ({len(labels)} labels: {', '.join(labels)})"
    if recipe.model.verbalizer:
        words = ", ".join(f"{label} = {word!r}" for label, word in recipe.model.verbalizer.words.items())
        return f"classification by a causal LM's answer words ({words})"
    return f"sequence classification ({len(labels)} labels: {', '.join(labels)})"


def _decision_line(recipe: Recipe, labels: list[str]) -> str:
    if recipe.task == "sft":
        return "Prompts end with a newline; the response follows and ends with the tokenizer's EOS."
    if recipe.task == "token_classification":
        return "Each word gets the most probable tag of its first sub-word token."
    if recipe.task == "regression":
        return (
            "The model learned the standardised target; `config.json` holds `target_mean` and `target_std`."
        )
    if recipe.task == "multi_label":
        return "Per-label thresholds, tuned on validation for F1, are in `config.json` (`label_thresholds`)."
    return f"Decision threshold on P({recipe.data.positive_label or labels[-1]}): {recipe.eval.threshold}."


def write_model_card(
    directory: Path, recipe: Recipe, data: Any, metrics: dict[str, dict[str, float]], summary: dict[str, Any]
) -> Path:
    path = Path(directory) / "README.md"
    path.write_text(render_model_card(recipe, data, metrics, summary), encoding="utf-8")
    return path

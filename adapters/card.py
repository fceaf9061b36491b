"""The model card (README.md of an artifact), built with ``huggingface_hub.ModelCard``.

The YAML header is ``ModelCardData`` (library, base model, pipeline tag, tags, datasets, licence and a
``model-index`` with the test metrics), so the Hub indexes it; the body comes from the Jinja template
``templates/model_card.md``: intended and out-of-scope use, where the knowledge came from (lineage),
metrics, plots, cost and energy, how to load it with plain PEFT, limitations.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from adapters.data.builtin import BUILTIN_DATASETS
from adapters.recipe import Recipe

__all__ = ["render_model_card", "write_model_card", "card_data"]

_PIPELINE = {"token_classification": "token-classification", "sft": "text-generation"}
_INTENDED = (
    "One input to decisions that people review, on data like the training data ({source}): the same "
    "kind of applicants or texts, the same product and period. Choose the decision threshold for the "
    "costs of your errors, and re-validate on your own recent data first."
)
_OUT_OF_SCOPE = (
    "Fully automated decisions about people without human review or the explanations the law requires "
    "(e.g. reasons for a declined credit application); data from other populations, products, languages "
    "or periods without re-validation; any use the data's or base model's licence does not allow."
)


def _format(value: Any) -> str:
    if value is None or value != value:  # NaN check without numpy
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _pipeline_tag(recipe: Recipe) -> str:
    return "text-generation" if recipe.model.verbalizer else _PIPELINE.get(recipe.task, "text-classification")


def _datasets(recipe: Recipe) -> list[str] | None:
    """Hub dataset ids or built-in names; a local file is described in the body, not linked."""
    from adapters.data.readers import detect_format

    source = str(recipe.data.source)
    if source == "<DataFrame>":
        return None
    try:
        kind = detect_format(source, recipe.data.format)
    except Exception:  # noqa: BLE001 - the card is written after training; the data may be gone
        return None
    return [source] if kind in ("builtin", "hub") else None


def card_data(recipe: Recipe, metrics: dict[str, Any], base_id: str, license_id: str) -> Any:
    """The card's YAML header as ``ModelCardData``; ``eval_results`` becomes the Hub's ``model-index``."""
    from huggingface_hub import EvalResult, ModelCardData

    pipeline_tag = _pipeline_tag(recipe)
    datasets = _datasets(recipe)
    results = [
        EvalResult(
            task_type=pipeline_tag,
            dataset_type=str(recipe.data.source),
            dataset_name=str(recipe.data.source),
            dataset_split="test",
            metric_type=name,
            metric_name=name,
            metric_value=float(value),
        )
        for name, value in metrics.get("test", {}).items()
        if isinstance(value, int | float) and value == value
    ]
    return ModelCardData(
        model_name=recipe.name,
        library_name="peft",
        base_model=base_id,
        pipeline_tag=pipeline_tag,
        tags=["peft", recipe.method.type, "peft-recipes", recipe.task.replace("_", "-")],
        datasets=datasets,
        license=license_id,
        eval_results=results or None,
    )


def _cost_rows(cost: dict[str, Any]) -> str:
    energy = cost.get("energy") or {}
    peak = cost.get("peak_cuda_memory_bytes") or cost.get("peak_rss_bytes")
    rows = [
        (
            "trainable parameters",
            f"{cost.get('trainable_params', 'n/a'):,} of {cost.get('total_params', 0):,} "
            f"({_format(cost.get('trainable_percent'))} %)"
            if cost.get("trainable_params")
            else "n/a",
        ),
        (
            "peak memory",
            f"{peak / 2**20:.0f} MiB ({'GPU' if cost.get('peak_cuda_memory_bytes') else 'RSS'})"
            if peak
            else "n/a",
        ),
        (
            "training time",
            f"{cost.get('train_seconds', 0):.1f} s on {cost.get('num_processes', 1)} × "
            f"{cost.get('device', '?')}",
        ),
        ("samples / s", f"{cost.get('train_samples_per_second') or 0:.1f}"),
    ]
    if cost.get("train_tokens"):
        rows += [
            (
                "tokens / s",
                f"{cost.get('train_tokens_per_second') or 0:,.0f} ({cost['train_tokens']:,} tokens in all)",
            ),
            ("padding", f"{100 * cost.get('padding_fraction', 0):.1f} % of the computed positions"),
            (
                "training compute (estimated)",
                f"{cost.get('estimated_train_flops', 0) / 1e12:.3g} TFLOP, "
                f"{cost.get('achieved_gflops_per_second') or 0:.1f} GFLOP/s",
            ),
        ]
    rows += [
        (
            "energy",
            f"{energy['energy_kwh']:.3g} kWh ({energy.get('tracker')})"
            if energy.get("energy_kwh") is not None
            else f"not measured ({energy.get('note', 'no tracker')})",
        ),
        (
            "CO2",
            f"{energy['co2_kg']:.3g} kg (grid of {energy.get('country_iso_code')})"
            if energy.get("co2_kg") is not None
            else "not estimated (no country given)",
        ),
    ]
    return "\n".join(f"| {name} | {value} |" for name, value in rows)


def _lineage_lines(lineage: dict[str, Any] | None) -> tuple[str, str, str]:
    """Data fingerprint, software line, and the transfer chain (empty when the adapter started fresh)."""
    if not lineage:
        return "n/a", "n/a", ""
    from adapters.lineage import format_lineage

    data = lineage.get("data", {})
    files_sha = ", ".join(
        f"`{name}` sha256 {digest[:12]}" for name, digest in data.get("files_sha256", {}).items()
    )
    fingerprint = (
        f"rows sha256 {str(data.get('rows_sha256'))[:16]} (split seed {data.get('split_seed')}, "
        f"train fraction {data.get('train_fraction')})" + (f"; files: {files_sha}" if files_sha else "")
    )
    software = ", ".join(f"{name} {version}" for name, version in lineage.get("software", {}).items())
    git = lineage.get("git")
    if git:
        software += f"; project commit {git['commit'][:12]}{' (uncommitted changes)' if git['dirty'] else ''}"
    chain = format_lineage(lineage) if lineage.get("parents") else ""
    return fingerprint, software, chain


def render_model_card(
    recipe: Recipe,
    data: Any,
    metrics: dict[str, Any],
    summary: dict[str, Any],
    lineage: dict[str, Any] | None = None,
) -> str:
    """The whole card as text (YAML header + body)."""
    from huggingface_hub import ModelCard

    from adapters.fairness import card_section
    from adapters.plots import card_section as plots_section

    base = summary.get("base_model", {})
    base_id = base.get("hub_id") or base.get("local_path") or recipe.model.name_or_path
    base_note = (
        f" (loaded from the copy embedded in `{base['embedded_in']}`)" if base.get("embedded_in") else ""
    )
    if lineage and lineage.get("base_model", {}).get("commit"):
        base_note += f", commit `{lineage['base_model']['commit']}`"
    source = data.info.get("source", recipe.data.source)
    data_note = ""
    builtin = BUILTIN_DATASETS.get(recipe.data.source)
    if builtin is not None:
        data_note = f". {builtin.citation} Licence: {builtin.license}."
    data_note += f" ({data.info['cleaning']['note']})" if data.info.get("cleaning", {}).get("note") else ""
    rows = data.info.get("rows", {})
    names = sorted(set(metrics.get("validation", {})) | set(metrics.get("test", {})))
    metric_rows = "\n".join(
        f"| {name} | {_format(metrics.get('validation', {}).get(name))} | "
        f"{_format(metrics.get('test', {}).get(name))} |"
        for name in names
    )
    license_id = recipe.card.license or base.get("license") or "other"
    fingerprint, software, chain = _lineage_lines(lineage)
    template = files("adapters").joinpath("templates/model_card.md").read_text(encoding="utf-8")
    card = ModelCard.from_template(
        card_data(recipe, metrics, base_id, license_id),
        template_str=template,
        name=recipe.name,
        description=recipe.description or "",
        intended_use=recipe.card.intended_use or _INTENDED.format(source=source),
        out_of_scope_use=recipe.card.out_of_scope_use or _OUT_OF_SCOPE,
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
        decision_line=_decision_line(recipe, data.label_names, metrics) + _privacy_line(lineage),
        use_code=_use_code(recipe),
        method_args=", ".join(f"{k}={v}" for k, v in recipe.method.peft_kwargs().items()) or "defaults",
        modules_to_save=", ".join(f"`{m}`" for m in base.get("modules_to_save", [])) or "none",
        data_source=source,
        data_rows=", ".join(f"{split}: {count} rows" for split, count in rows.items()),
        data_note=data_note,
        data_fingerprint=fingerprint,
        software=software,
        chain=chain,
        primary_metric=recipe.eval.primary_metric,
        metric_rows=metric_rows,
        cost_rows=_cost_rows(metrics.get("cost", {})),
        steps=summary.get("steps"),
        seconds=summary.get("train_seconds"),
        best_step=summary.get("best_step"),
        test_rows=rows.get("test", "?"),
        plots_section=plots_section(summary.get("plots", []), recipe, data.label_names, metrics, summary),
        fairness_section=card_section(recipe, summary.get("fairness")),  # eval.fairness, exclude_from_text
    )
    return str(card)


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


def _privacy_line(lineage: dict[str, Any] | None) -> str:
    """DP-SGD runs: the guarantee the weights carry, so a reader does not assume more (or less)."""
    spent = (lineage or {}).get("privacy")
    if not spent:
        return ""
    return (
        f" Trained with differential privacy (DP-SGD, Opacus): the adapter and head weights are "
        f"(ε = {spent['epsilon']:.2f}, δ = {spent['delta']:.2g})-DP with respect to each training row "
        f"(noise multiplier {spent['noise_multiplier']:.3f}, clipping norm {spent['max_grad_norm']}, "
        f"{spent['steps']} steps, {spent['accountant']} accountant); validation rows, used for model "
        "selection and calibration, are not protected."
    )


def _decision_line(recipe: Recipe, labels: list[str], metrics: dict[str, Any] | None = None) -> str:
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
    return _calibration_lines(recipe, labels, metrics or {})


def _calibration_lines(recipe: Recipe, labels: list[str], metrics: dict[str, Any]) -> str:
    """How scores become calibrated probabilities and decisions, with what that changed on test."""
    positive = recipe.data.positive_label or labels[-1]
    threshold = metrics.get("threshold", {})
    calibration = metrics.get("calibration", {})
    spec = calibration.get("spec") or {}
    value = threshold.get("value", recipe.eval.threshold)
    lines = []
    if spec.get("method") == "temperature":
        lines.append(
            f"Probabilities are calibrated by temperature scaling (T = {spec['temperature']:.3f}, fitted on "
            "validation; `config.json` → `calibration`): a plain-PEFT user computes "
            "`softmax(logits / T)`."
        )
    elif spec.get("method") == "isotonic":
        lines.append(
            f"P({positive}) is calibrated by isotonic regression fitted on validation (`config.json` → "
            "`calibration`: interpolate `x` → `y`)."
        )
    else:
        lines.append("Probabilities are the softmax of the logits (no calibration).")
    before, after = calibration.get("test_before", {}), calibration.get("test_after", {})
    if spec and "ece" in before:
        lines.append(
            f"Test ECE {before['ece']:.3f} → {after['ece']:.3f}, Brier {before['brier']:.3f} → "
            f"{after['brier']:.3f}."
        )
    rule = threshold.get("rule", recipe.eval.threshold)
    how = f" (rule `{rule}` on validation)" if isinstance(rule, str) else ""
    lines.append(
        f"Decision threshold on P({positive}): {float(value):.3f}{how}; `config.json` → `decision_threshold`."
    )
    test = threshold.get("test", {})
    if "approval_rate" in test:
        line = (
            f"On test: approval rate {test['approval_rate']:.1%} (at 0.5: {test['approval_rate_at_0.5']:.1%})"
        )
        if "expected_cost" in test:
            line += (
                f", expected cost per applicant {test['expected_cost']:.3f} "
                f"(at 0.5: {test['expected_cost_at_0.5']:.3f})"
            )
        lines.append(line + ".")
    return " ".join(lines)


def write_model_card(
    directory: Path,
    recipe: Recipe,
    data: Any,
    metrics: dict[str, Any],
    summary: dict[str, Any],
    lineage: dict[str, Any] | None = None,
) -> Path:
    path = Path(directory) / "README.md"
    path.write_text(render_model_card(recipe, data, metrics, summary, lineage), encoding="utf-8")
    return path

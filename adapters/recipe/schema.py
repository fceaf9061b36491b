"""The recipe: one validated YAML document that says everything a training run depends on.

A recipe is the unit of reproducibility: it is saved, fully resolved, next to every adapter. Keys are
checked strictly (a typo is an error, not a silently ignored key), and errors name the key and list the
valid ones. The ``method`` section is the exception that proves the rule: its keys belong to PEFT's own
config class for that tuner, so :mod:`adapters.methods` checks them against that class's fields instead
of mirroring them here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from adapters.errors import AdaptersUserError
from adapters.methods import MethodConfig, check_method_for_task, method_types
from adapters.recipe.base import Section, label_name
from adapters.recipe.evaluation import (
    LOWER_IS_BETTER,
    TASK_METRICS,
    EvalConfig,
    FairnessAttributeConfig,
)

__all__ = [
    "DEFAULT_BASE_MODEL",
    "method_types",
    "Recipe",
    "ModelConfig",
    "VerbalizerConfig",
    "DataConfig",
    "MethodConfig",
    "TrainingConfig",
    "EvalConfig",
    "FairnessAttributeConfig",
    "PrivacyConfig",
    "CardConfig",
    "LOWER_IS_BETTER",
    "TASK_METRICS",
]

DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class VerbalizerConfig(Section):
    """Classification by a causal LM: a question after the text, one answer word per label (TabLLM-style).

    The class scores are the next-token logits of the label words' first tokens; training minimises the
    cross-entropy over those words only, so no new head is added and the LM head stays frozen.
    """

    question: str = "Answer:"
    words: dict[str, str]

    @field_validator("words", mode="before")
    @classmethod
    def _label_keys(cls, value: Any) -> Any:
        return {label_name(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value


class ModelConfig(Section):
    """The base model: a Hub id or local directory.

    ``head: classifier`` adds a sequence-classification head (AutoModelForSequenceClassification);
    ``head: verbalizer`` keeps a causal LM as it is and reads the answer words' logits.
    """

    name_or_path: str = DEFAULT_BASE_MODEL
    head: Literal["classifier", "verbalizer"] = "classifier"
    verbalizer: VerbalizerConfig | None = None
    revision: str | None = None
    quantization: Literal["none", "8bit", "4bit"] = "none"
    quant_type: Literal["nf4", "fp4"] = "nf4"  # 4-bit only
    double_quant: bool = False  # 4-bit only: also quantize the quantization constants (~0.4 bit/weight)
    torch_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    trust_remote_code: bool = False
    config_kwargs: dict[str, Any] = Field(default_factory=dict)
    # Start from an existing adapter (a directory or Hub repo id) instead of a fresh one: transfer from
    # one portfolio to another. Its adapter config wins over `method`; its lineage becomes the parent.
    init_adapter: str | None = None


class DataConfig(Section):
    """Where rows come from, how a row becomes text, and how rows are split and sub-sampled."""

    source: str = "south_german_credit"
    format: Literal["auto", "builtin", "csv", "jsonl", "parquet", "dir", "hub"] = "auto"
    text_columns: list[str] | None = None
    template: str | None = None
    label_column: str | None = None
    label_names: list[str] | None = None
    positive_label: str | None = None
    id_column: str | None = None
    split_column: str | None = None
    validation_size: float = Field(0.2, gt=0, lt=1)
    test_size: float = Field(0.2, gt=0, lt=1)
    split_seed: int = Field(42, ge=0, lt=2**32)  # numpy and scikit-learn seeds are uint32
    train_fraction: float = Field(1.0, gt=0, le=1)
    # Seed of the train_fraction sub-sample only (None: split_seed). A learning curve draws many training
    # sub-samples while validation and test, seeded by split_seed, stay the same rows.
    train_fraction_seed: int | None = Field(None, ge=0, lt=2**32)
    max_length: int = Field(256, ge=8)
    class_weights: Literal["none", "balanced"] | dict[str, float] = "none"
    label_separator: str = Field("|", min_length=1)  # multi_label: "late|fraud" in one label cell
    # Columns kept out of the model's input (their sentences are dropped from the template, or the column
    # from text_columns) while staying available to the fairness report: protected attributes.
    exclude_from_text: list[str] = Field(default_factory=list)
    # Real exports are ragged: rows whose rendered text is empty or whitespace carry nothing to learn from
    # (drop, counted in the run's data report) unless the data is meant to be complete (error names the row).
    empty_text: Literal["drop", "error"] = "drop"
    # Classes with fewer rows than this in the whole source (before splitting) cannot be split stratified:
    # they are merged into a class "other" (dropped too if it stays under the count) or dropped; reported.
    min_class_count: int | None = Field(None, ge=2)
    rare_classes: Literal["other", "drop"] = "other"

    @field_validator("label_names", mode="before")
    @classmethod
    def _label_strings(cls, value: Any) -> Any:
        return [label_name(item) for item in value] if isinstance(value, list) else value

    @field_validator("positive_label", mode="before")
    @classmethod
    def _positive_string(cls, value: Any) -> Any:
        return None if value is None else label_name(value)

    @model_validator(mode="after")
    def _text_or_template(self) -> DataConfig:
        if self.text_columns and self.template:
            raise ValueError("give either data.text_columns or data.template, not both")
        if self.validation_size + self.test_size >= 1:
            raise ValueError("data.validation_size + data.test_size must be below 1")
        return self


class PrivacyConfig(Section):
    """Differentially private training (DP-SGD with Opacus, extra [dp]) of the trainable parameters only.

    ``delta`` None means 1/n (n training rows); the noise is calibrated so the accountant's spent epsilon
    after all steps is at most ``epsilon``.
    """

    epsilon: float = Field(8.0, gt=0)
    delta: float | None = Field(None, gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)  # per-sample clipping norm
    accountant: Literal["prv", "rdp"] = "prv"


class TrainingConfig(Section):
    """The optimisation loop; Accelerate owns devices and processes, so none of that appears here."""

    epochs: float = Field(3, gt=0)
    max_steps: int | None = Field(None, ge=1)
    # Small training sets: at least this many optimizer steps (more epochs), so 60 rows get as many updates
    # as the adapter needs, not the 24 steps of 6 epochs; evaluate every N steps then (eval_every).
    min_steps: int | None = Field(None, ge=1)
    per_device_batch_size: int = Field(16, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    # Batch rows of similar length (less padding). Where length goes with the label (German Credit: -0.30)
    # such batches are class-skewed (benchmarks/batch_composition.py); false: shuffled batches.
    group_by_length: bool = True
    gradient_accumulation_steps: int = Field(1, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    scheduler: Literal[
        "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"
    ] = "linear"
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    mixed_precision: Literal["no", "fp16", "bf16"] | None = None  # None: what `accelerate launch` says
    # Recompute activations in the backward pass (non-reentrant, so DDP and frozen embeddings work):
    # less memory for long inputs or large models, about a third more compute.
    gradient_checkpointing: bool = False
    seed: int = Field(42, ge=0, lt=2**32)
    # On CPU, draw dropout masks two elements per 32-bit random number (adapters/dropout.py): a step of the
    # default recipe 9 % faster, the same drop probability; false keeps torch's own masks (the random
    # stream of runs made before this setting existed).
    fast_cpu_dropout: bool = True
    # BERT-family sequence classifiers read only the first token of the last layer: compute that layer
    # for the first token alone (adapters/first_token.py; ~14 % of MiniLM's step). Same outputs; the
    # skipped positions' dropout masks are no longer drawn. False: the full last layer.
    first_token_last_layer: bool = True
    deterministic: bool = False  # also force deterministic kernels (GPU: slower; CPU runs are already)
    checkpoint_every: int | None = Field(None, ge=1)  # steps; lets `--resume` continue a killed run
    keep_checkpoints: int = Field(2, ge=1)
    eval_every: int | Literal["epoch"] = "epoch"
    early_stopping_patience: int | None = Field(None, ge=1)
    output_dir: str = "outputs/{name}"
    log_with: list[Literal["tensorboard"]] = Field(default_factory=lambda: ["tensorboard"])
    num_threads: int | None = Field(None, ge=1)
    # Energy (kWh) from codecarbon's offline tracker (extra [energy]); CO2 only when the country is known
    # (ISO 3166 alpha-3, e.g. DEU): the grid's carbon intensity is a per-country figure.
    track_energy: bool = True
    energy_country: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    privacy: PrivacyConfig | None = None  # DP-LoRA; None trains without differential privacy

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_no(cls, value: Any) -> Any:
        return "no" if value is False else value  # YAML 1.1 reads a bare `no` as false

    @field_validator("eval_every")
    @classmethod
    def _positive_steps(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("training.eval_every must be a positive number of steps or 'epoch'")
        return value


class CardConfig(Section):
    """What the model card says beyond the measured facts: licence and the uses it is meant for."""

    license: str | None = None  # None: the base model's licence when known, else "other"
    intended_use: str | None = None
    out_of_scope_use: str | None = None


class Recipe(Section):
    """A whole recipe. ``Recipe()`` is the default German-credit LoRA recipe's schema defaults."""

    name: str = "recipe"
    description: str = ""
    # classification: one label per text (softmax); multi_label: any number of labels per text (one
    # sigmoid each, per-label thresholds tuned on validation); regression: one number per text (MSE).
    # token_classification: one tag per word (BIO), words whitespace-separated in one text column.
    # sft: instruction tuning of a causal LM; the rendered text is the prompt, label_column the response,
    # and the loss covers the response tokens only.
    task: Literal["classification", "multi_label", "regression", "token_classification", "sft"] = (
        "classification"
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    card: CardConfig = Field(default_factory=CardConfig)

    @model_validator(mode="before")
    @classmethod
    def _task_metrics(cls, raw: Any) -> Any:
        """Other tasks get their own default metrics (and drop the credit cost matrix) unless given."""
        if not isinstance(raw, dict) or raw.get("task") not in TASK_METRICS:
            return raw
        metrics, primary = TASK_METRICS[raw["task"]]
        section = dict(raw.get("eval") or {})
        section.setdefault("metrics", list(metrics))
        section.setdefault("primary_metric", primary)
        return {**raw, "eval": section}

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        # The name becomes a directory (output_dir: outputs/{name}); it must not climb out of it.
        if not _SAFE_NAME.fullmatch(value):
            raise ValueError(
                f"name {value!r} must be letters, digits, '.', '_' or '-' and start with a letter or "
                "digit (it becomes a directory name)"
            )
        return value

    @model_validator(mode="after")
    def _head_and_method_fit(self) -> Recipe:
        if (self.model.head == "verbalizer") != (self.model.verbalizer is not None):
            raise ValueError(
                "model.head: verbalizer and model.verbalizer (question, words per label) go together"
            )
        if self.model.verbalizer is not None and self.data.label_names:
            missing = sorted(set(self.data.label_names) - set(self.model.verbalizer.words))
            if missing:
                raise ValueError(f"model.verbalizer.words has no word for labels {missing}")
        if self.model.head == "verbalizer" and self.task != "classification":
            raise ValueError(f"model.head: verbalizer is for classification, not task: {self.task}")
        if self.task != "classification" and (self.eval.cost_matrix or self.data.class_weights != "none"):
            raise ValueError(
                f"eval.cost_matrix and data.class_weights are for classification, not {self.task}"
            )
        if self.task == "token_classification" and len(self.data.text_columns or []) != 1:
            raise ValueError(
                "task: token_classification reads its words from exactly one data.text_columns column"
            )
        check_method_for_task(self.method.type, self.peft_task)
        return self

    @property
    def peft_task(self) -> str:
        """The PEFT task the method must serve: a head on an encoder/decoder, or a causal LM (verbalizer)."""
        return "causal_lm" if self.model.head == "verbalizer" or self.task == "sft" else "classification"

    @model_validator(mode="after")
    def _checkpointable(self) -> Recipe:
        if self.training.checkpoint_every and self.method.type == "adalora":
            raise ValueError(
                "training.checkpoint_every: AdaLoRA's rank allocator keeps state outside the model and "
                "optimizer, so its runs cannot be resumed exactly; use lora/dora or no checkpoints"
            )
        return self

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "recipe") -> Recipe:
        """Validate ``raw``; a validation error becomes one user error naming the key."""
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as exc:
            raise AdaptersUserError(_explain(exc), where=where) from None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_flat_dict(self) -> dict[str, Any]:
        """``section.key`` -> value, lists and mappings as text: hyperparameters as trackers take them."""
        flat: dict[str, Any] = {}
        for section, values in self.to_dict().items():
            if not isinstance(values, dict):  # name, description, task: not hyperparameters
                continue
            for key, value in values.items():
                plain = isinstance(value, int | float | str | bool)
                flat[f"{section}.{key}"] = value if plain else str(value)
        return flat

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @property
    def output_dir(self) -> Path:
        return Path(self.training.output_dir.replace("{name}", self.name))


def _valid_keys(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The field names valid at ``path`` (for 'did you mean' style messages)."""
    current: type[BaseModel] = model
    for part in path[:-1]:
        field = current.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        current = annotation
    return list(current.model_fields)


def _explain(exc: ValidationError) -> str:
    """One line for the first problem: the dotted key, what is wrong, and the valid keys if unknown."""
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        valid = _valid_keys(Recipe, loc)
        return f"unknown key {key!r}; valid keys here: {', '.join(valid)}"
    if not key:
        return message
    if error["type"] == "value_error":
        return message if key in message else f"{key}: {message}"
    return f"{key}: {message} (got {error.get('input')!r})"

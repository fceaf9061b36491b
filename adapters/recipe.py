"""The recipe: one validated YAML document that says everything a training run depends on.

A recipe is the unit of reproducibility: it is saved, fully resolved, next to every adapter. Keys are
checked strictly (a typo is an error, not a silently ignored key), and errors name the key and list the
valid ones. The ``method`` section is the exception that proves the rule: its keys belong to PEFT's own
config class for that tuner, so :mod:`adapters.methods` checks them against that class's fields instead
of mirroring them here.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adapters.errors import AdaptersUserError
from adapters.methods import MethodConfig, check_method_for_task, method_types

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
    "load_recipe",
    "list_recipes",
    "recipe_dirs",
    "parse_overrides",
]

DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

LOWER_IS_BETTER = frozenset(
    {"log_loss", "brier", "ece", "expected_cost", "loss", "mse", "rmse", "mae", "perplexity"}
)

# Default metrics and primary metric of the tasks other than classification.
TASK_METRICS = {
    "multi_label": (
        ("f1_micro", "f1_macro", "precision_micro", "recall_micro", "subset_accuracy"),
        "f1_micro",
    ),
    "regression": (("mse", "rmse", "mae", "r2"), "r2"),
    "token_classification": (
        ("entity_f1", "entity_precision", "entity_recall", "token_accuracy"),
        "entity_f1",
    ),
    "sft": (("perplexity",), "perplexity"),
}

DEFAULT_METRICS = [
    "roc_auc",
    "pr_auc",
    "gini",
    "ks",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "f1_macro",
    "log_loss",
    "brier",
    "ece",
    "expected_cost",
]


def _label(value: Any) -> str:
    """Label names are strings; numbers are accepted (CSV labels 0/1), YAML booleans are refused."""
    if isinstance(value, bool):
        raise ValueError(f"label {value!r} was read as a YAML boolean; quote it (e.g. 'yes', 'no')")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class VerbalizerConfig(_Section):
    """Classification by a causal LM: a question after the text, one answer word per label (TabLLM-style).

    The class scores are the next-token logits of the label words' first tokens; training minimises the
    cross-entropy over those words only, so no new head is added and the LM head stays frozen.
    """

    question: str = "Answer:"
    words: dict[str, str]

    @field_validator("words", mode="before")
    @classmethod
    def _label_keys(cls, value: Any) -> Any:
        return {_label(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value


class ModelConfig(_Section):
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


class DataConfig(_Section):
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
        return [_label(item) for item in value] if isinstance(value, list) else value

    @field_validator("positive_label", mode="before")
    @classmethod
    def _positive_string(cls, value: Any) -> Any:
        return None if value is None else _label(value)

    @model_validator(mode="after")
    def _text_or_template(self) -> DataConfig:
        if self.text_columns and self.template:
            raise ValueError("give either data.text_columns or data.template, not both")
        if self.validation_size + self.test_size >= 1:
            raise ValueError("data.validation_size + data.test_size must be below 1")
        return self


class PrivacyConfig(_Section):
    """Differentially private training (DP-SGD with Opacus, extra [dp]) of the trainable parameters only.

    ``delta`` None means 1/n (n training rows); the noise is calibrated so the accountant's spent epsilon
    after all steps is at most ``epsilon``.
    """

    epsilon: float = Field(8.0, gt=0)
    delta: float | None = Field(None, gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)  # per-sample clipping norm
    accountant: Literal["prv", "rdp"] = "prv"


class TrainingConfig(_Section):
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


class FairnessAttributeConfig(_Section):
    """A protected attribute for the fairness report: a column of the data and how its values group.

    A numeric column is cut at ``bins`` (``[25]``: below 25 / 25 and over) into groups named ``labels``;
    any other column groups by its values. ``not_reported`` names why the attribute is listed but not
    split (e.g. the data cannot recover it), which the report then states instead of a wrong split.
    """

    column: str
    bins: list[float] | None = None
    labels: list[str] | None = None
    not_reported: str | None = None
    # Groups with fewer test rows are shown with their n but left out of the gaps (parity, equalized
    # odds): in a group of 4 rows one applicant moves a rate by 0.25, which is noise, not a finding.
    min_group_size: int = Field(20, ge=1)

    @model_validator(mode="after")
    def _labels_fit_bins(self) -> FairnessAttributeConfig:
        if self.bins is not None and (not self.bins or sorted(set(self.bins)) != self.bins):
            raise ValueError("eval.fairness: bins must be one or more increasing numbers, e.g. [25]")
        if self.labels is not None and (self.bins is None or len(self.labels) != len(self.bins) + 1):
            raise ValueError("eval.fairness: labels needs bins, and one label more than bins")
        return self


class EvalConfig(_Section):
    """Metrics computed on validation (model selection) and test (the reported figure), and the decision
    settings fitted on validation after training: calibration and threshold."""

    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS))
    primary_metric: str = "roc_auc"
    # A fixed cut-off on P(positive), or a rule applied on validation: max_f1, min_cost (needs cost_matrix).
    threshold: float | Literal["max_f1", "min_cost"] = 0.5
    cost_matrix: dict[str, dict[str, float]] | None = None
    # Fitted on validation after training, saved in config.json, applied by predict_proba.
    calibration: Literal["temperature", "isotonic", "none"] = "temperature"
    fairness: list[FairnessAttributeConfig] = Field(default_factory=list)
    # Largest demographic-parity or equalized-odds gap tolerated; above it: a warning (--strict: exit 3)
    fairness_max_gap: float | None = Field(None, gt=0, le=1)

    @field_validator("threshold")
    @classmethod
    def _threshold_inside(cls, value: float | str) -> float | str:
        if isinstance(value, float) and not 0 < value < 1:
            raise ValueError("eval.threshold must lie strictly between 0 and 1, or be max_f1 or min_cost")
        return value

    @field_validator("cost_matrix", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                _label(k): ({_label(p): c for p, c in row.items()} if isinstance(row, dict) else row)
                for k, row in value.items()
            }
        return value

    @model_validator(mode="after")
    def _primary_is_computed(self) -> EvalConfig:
        if "expected_cost" in self.metrics and not self.cost_matrix:
            if "metrics" in self.model_fields_set:
                raise ValueError(
                    "eval.metrics has expected_cost but eval.cost_matrix is not set "
                    "(e.g. cost_matrix: {bad: {good: 5}, good: {bad: 1}})"
                )
            self.metrics = [name for name in self.metrics if name != "expected_cost"]
        if self.threshold == "min_cost" and not self.cost_matrix:
            raise ValueError("eval.threshold: min_cost needs eval.cost_matrix")
        if self.primary_metric != "loss" and self.primary_metric not in self.metrics:
            raise ValueError(
                f"eval.primary_metric {self.primary_metric!r} is not in eval.metrics "
                f"({', '.join(self.metrics)}) and is not 'loss'"
            )
        return self

    @property
    def greater_is_better(self) -> bool:
        return self.primary_metric not in LOWER_IS_BETTER


class CardConfig(_Section):
    """What the model card says beyond the measured facts: licence and the uses it is meant for."""

    license: str | None = None  # None: the base model's licence when known, else "other"
    intended_use: str | None = None
    out_of_scope_use: str | None = None


class Recipe(_Section):
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


def recipe_dirs() -> list[Path]:
    """Where named recipes live: inside an installed wheel, or ``recipes/`` of a source checkout."""
    package_dir = Path(__file__).resolve().parent
    candidates = [package_dir / "_recipes", package_dir.parent / "recipes"]
    return [path for path in candidates if path.is_dir()]


def list_recipes() -> dict[str, Path]:
    """Built-in recipe names (``german-credit/lora``) mapped to their YAML files."""
    found: dict[str, Path] = {}
    for root in recipe_dirs():
        for path in sorted(root.rglob("*.yaml")):
            name = path.relative_to(root).with_suffix("").as_posix()
            if not name.startswith("accelerate/"):
                found.setdefault(name, path)
    return found


def _resolve_path(recipe: str | Path) -> Path:
    path = Path(recipe)
    if path.is_file():
        return path
    builtin = list_recipes()
    name = str(recipe).removesuffix(".yaml").removeprefix("recipes/")
    if name in builtin:
        return builtin[name]
    raise AdaptersUserError(
        f"no such recipe file or built-in recipe; built-ins: {', '.join(builtin)}", where=str(recipe)
    )


def _override_pairs(items: Iterable[str] | Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    if items is None:
        return []
    if isinstance(items, Mapping):
        return list(items.items())
    pairs = []
    for item in items:
        if "=" not in item:
            raise AdaptersUserError("an override must look like section.key=value", where=item)
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise AdaptersUserError("the value is not valid YAML", where=item) from None
        pairs.append((key.strip(), value))
    return pairs


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict; the value replaces what was there (a dict is not merged)."""
    parts = key.split(".")
    for part in parts[:-1]:
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        if not isinstance(child, dict):
            raise AdaptersUserError(f"{part!r} is a value, not a section", where=key)
        target = child
    target[parts[-1]] = value


def parse_overrides(items: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """``["training.epochs=2", "method.r=8"]`` or ``{"training.epochs": 2}`` → a nested dict.

    Values given as strings are parsed as YAML, so ``[query,value]``, ``true`` and ``1e-4`` get their
    natural types.
    """
    nested: dict[str, Any] = {}
    for key, value in _override_pairs(items):
        _set_dotted(nested, key, value)
    return nested


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _source_beside_recipe(raw: dict[str, Any], path: Path) -> None:
    """A relative ``data.source`` in a recipe file names a file or directory beside the recipe when one is
    there (made absolute), else it stays relative to the working directory.

    So a recipe and its data move together and the built-in recipes find their data from any directory,
    also inside an installed wheel. Overrides (``data.source=...``) are typed relative to the shell's
    directory and are applied after this, unchanged.
    """
    data = raw.get("data")
    if not isinstance(data, dict) or data.get("format") in ("builtin", "hub"):
        return
    source = data.get("source")
    if not isinstance(source, str) or not source.strip() or Path(source).is_absolute():
        return
    try:
        beside = (path.parent / source).resolve()
        moved = beside.exists() and beside != Path(source).resolve()  # same place as from the cwd: as is
    except (OSError, ValueError):  # not a usable path (NUL byte, too long): the reader reports it
        return
    if moved:
        data["source"] = str(beside)


def load_recipe(
    recipe: str | Path | Mapping[str, Any] | Recipe | None = None,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    **sections: Any,
) -> Recipe:
    """Load a recipe (file path, built-in name, dict or Recipe) and apply overrides.

    ``overrides`` takes dotted keys (CLI style); ``sections`` takes whole sections as keyword arguments,
    e.g. ``load_recipe("german-credit/lora", training={"epochs": 1})``.
    """
    where = "recipe"
    if recipe is None:
        recipe = "german-credit/lora"
    if isinstance(recipe, Recipe):
        raw = recipe.to_dict()
    elif isinstance(recipe, Mapping):
        raw = copy.deepcopy(dict(recipe))  # overrides must not write into the caller's dict
    else:
        path = _resolve_path(recipe)
        where = str(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise AdaptersUserError(
                f"invalid YAML ({getattr(exc, 'problem', exc)})", where=f"{path}{line}"
            ) from None
        if not isinstance(raw, dict):
            raise AdaptersUserError("a recipe must be a YAML mapping of sections", where=where)
        default_name = path.stem if path.parent.name in ("", ".") else f"{path.parent.name}-{path.stem}"
        raw.setdefault("name", re.sub(r"[^A-Za-z0-9._-]+", "-", default_name).strip("-._") or "recipe")
        _source_beside_recipe(raw, path)
    raw = _merge(raw, sections)
    for key, value in _override_pairs(overrides):
        _set_dotted(raw, key, value)
    return Recipe.from_dict(raw, where=where)

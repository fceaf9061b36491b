"""The recipe's ``eval`` section: metrics for model selection and the report, decision settings fitted on
validation (calibration, cut-off, costs) and the fairness report's protected attributes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from adapters.recipe.base import Section, label_name

__all__ = ["DEFAULT_METRICS", "LOWER_IS_BETTER", "TASK_METRICS", "EvalConfig", "FairnessAttributeConfig"]

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


class FairnessAttributeConfig(Section):
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


class EvalConfig(Section):
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
                label_name(k): ({label_name(p): c for p, c in row.items()} if isinstance(row, dict) else row)
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

"""How a model's output becomes class scores: a classification head, or a causal LM's answer words.

A verbalizer turns a causal LM into a classifier without a new head (TabLLM-style): a question follows
the text ("... Is this applicant a good credit risk? Answer:"), and the class scores are the next-token
logits of each label's answer word (" yes", " no"). Training minimises the cross-entropy over those
words, so the scores are probabilities over the labels, as with a head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from adapters.errors import AdaptersUserError

__all__ = [
    "PROBLEM_TYPES",
    "class_logits",
    "class_weight_tensor",
    "to_scores",
    "target_scale",
    "task_loss",
    "token_loss_sums",
    "with_question",
    "answer_token_ids",
    "verbalizer_of",
]

# recipe task -> transformers' config.problem_type (saved in config.json, read back at prediction)
PROBLEM_TYPES = {
    "classification": "single_label_classification",
    "multi_label": "multi_label_classification",
    "regression": "regression",
    "token_classification": None,  # transformers has no problem_type for these; config.adapters_task says it
    "sft": None,
}


def answer_token_ids(tokenizer: Any, words: dict[str, str], label_names: Sequence[str]) -> list[int]:
    """The first token of each label's answer word, in label order; the tokens must differ."""
    ids = []
    for label in label_names:
        tokens = tokenizer(words[label], add_special_tokens=False)["input_ids"]
        if not tokens:
            raise AdaptersUserError(f"the answer for {label!r} is empty", where="model.verbalizer.words")
        ids.append(tokens[0])
    if len(set(ids)) < len(ids):
        raise AdaptersUserError(
            f"answer words {list(words.values())} start with the same token for this tokenizer; "
            "choose words that differ in their first token (with a leading space, e.g. ' yes', ' no')",
            where="model.verbalizer.words",
        )
    return ids


def with_question(texts: Sequence[str], verbalizer: dict[str, Any] | None) -> list[str]:
    """Append the verbalizer's question to each text (unchanged when there is no verbalizer)."""
    if not verbalizer:
        return list(texts)
    return [f"{text}\n{verbalizer['question']}" for text in texts]


def verbalizer_of(model: Any) -> dict[str, Any] | None:
    """The verbalizer saved in a model's config (``question``, ``words``, ``token_ids``), if any."""
    config = getattr(model, "config", None)
    return getattr(config, "verbalizer", None) if config is not None else None


def class_logits(model: Any, inputs: dict[str, torch.Tensor], answer_ids: list[int] | None) -> torch.Tensor:
    """(batch, labels) scores: the head's logits, or the answer words' logits at the last position.

    Verbalizer inputs are left-padded, so the last position is the answer slot for every row; only that
    position's logits are computed (``logits_to_keep=1``), not a vocabulary-sized row per token.
    """
    if answer_ids is None:
        return model(**inputs).logits
    logits = model(**inputs, logits_to_keep=1).logits
    return logits[:, -1, answer_ids]


def target_scale(config: Any) -> tuple[float, float]:
    """Regression targets are learned standardised; (mean, std) of the training targets, from the config."""
    return float(getattr(config, "target_mean", 0.0) or 0.0), float(getattr(config, "target_std", 1.0) or 1.0)


def to_scores(
    logits: torch.Tensor, problem_type: str | None, scale: tuple[float, float] = (0.0, 1.0)
) -> torch.Tensor:
    """What a task reports: class probabilities (softmax), per-label probabilities (sigmoid) or numbers
    (regression: the standardised output mapped back with the training targets' ``scale``)."""
    if problem_type == "multi_label_classification":
        return logits.sigmoid()
    if problem_type == "regression":
        return logits.squeeze(-1) * scale[1] + scale[0]
    return logits.softmax(-1)


def token_loss_sums(
    logits: torch.Tensor, labels: torch.Tensor, next_token: bool = False, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the summed cross-entropy of its scored tokens (label != -100) and how many there are.

    ``next_token`` (causal LM): position t predicts label t+1, as the model's own loss shifts.
    """
    if next_token:
        logits, labels = logits[:, :-1], labels[:, 1:]
    per_token = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), labels, weight=weights, reduction="none"
    )
    scored = (labels != -100).float()
    return (per_token * scored).sum(-1), scored.sum(-1)


def class_weight_tensor(
    setting: str | dict[str, float], labels: np.ndarray, label_names: list[str]
) -> torch.Tensor | None:
    """``balanced`` weights classes by n / (k · count); a dict gives weights by label name."""
    if setting == "none":
        return None
    if setting == "balanced":
        counts = np.bincount(labels, minlength=len(label_names)).astype(float)
        return torch.tensor(len(labels) / (len(label_names) * np.maximum(counts, 1)), dtype=torch.float32)
    return torch.tensor([float(setting.get(name, 1.0)) for name in label_names], dtype=torch.float32)


def task_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    problem_type: str | None,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    scale: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """Cross-entropy (classes), binary cross-entropy per label (multi-label) or squared error on the
    standardised target (regression, so the loss is on the same scale whatever the target's unit).

    With ``reduction="none"`` one value per example (multi-label: averaged over its labels).
    """
    functional = torch.nn.functional
    if problem_type == "multi_label_classification":
        loss = functional.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none").mean(-1)
    elif problem_type == "regression":
        target = (labels.float() - scale[0]) / scale[1]
        loss = functional.mse_loss(logits.squeeze(-1), target, reduction="none")
    elif logits.dim() == 3:  # tokens (or next tokens, causal_lm): (batch, tokens, classes); -100: not scored
        sums, counts = token_loss_sums(logits, labels, problem_type == "causal_lm", weights)
        if reduction == "mean":
            return sums.sum() / counts.sum().clamp(min=1)
        loss = sums / counts.clamp(min=1)
    else:
        return functional.cross_entropy(logits, labels, weight=weights, reduction=reduction)
    return loss.mean() if reduction == "mean" else loss

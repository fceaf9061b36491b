"""A trained artifact directory, loaded for use: ``adapters.load(DIR)`` → :class:`Classifier`.

It reads only what :mod:`adapters.artifact` wrote (adapter, tokenizer, config, recipe), through plain
PEFT, so what it predicts is what a user without this package would get; the recipe adds only the row
rendering and the decision (calibration, cut-off) that travel in ``config.json``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adapters.errors import AdaptersUserError
from adapters.heads import class_logits, target_scale, to_scores, with_question
from adapters.recipe import load_recipe

__all__ = ["Classifier", "load", "sorted_batches"]


def sorted_batches(texts: Sequence[str], batch_size: int) -> Iterator[list[int]]:
    """Row indices in batches of similar length: far less padding than the input order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class Classifier:
    """A trained artifact as a classifier: texts or rows in, probabilities or labels out."""

    def __init__(
        self, directory: str | Path, device: str | None = None, *, model: Any = None, tokenizer: Any = None
    ) -> None:
        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        from adapters.hub import artifact_dir, looks_like_hub_id

        # A Hub repo id (a string naming no local path) is downloaded, or read from the cache offline.
        hub = isinstance(directory, str) and looks_like_hub_id(directory)
        self.directory = artifact_dir(directory) if hub else Path(directory)
        if not (self.directory / "adapter_config.json").is_file():
            raise AdaptersUserError("not an adapter directory (no adapter_config.json)", where=str(directory))
        self.recipe = load_recipe(self.directory / "recipe.yaml")
        if model is None:
            from adapters.reload import load_adapter_model

            model, tokenizer = load_adapter_model(self.directory, self.recipe.model, device)
            config = model.get_base_model().config
        else:  # one adapter of a model that holds several (MultiAdapter): settings from its own config.json
            from transformers import AutoConfig

            remote = self.recipe.model.trust_remote_code
            config = AutoConfig.from_pretrained(self.directory, trust_remote_code=remote)
        self.model, self.tokenizer = model, tokenizer
        self.verbalizer = getattr(config, "verbalizer", None)
        self.answer_ids = self.verbalizer["token_ids"] if self.verbalizer else None
        self.label_names = [config.id2label[i] for i in range(len(config.id2label))]
        self.threshold = float(getattr(config, "decision_threshold", 0.5))
        self.problem_type = getattr(config, "problem_type", None)
        self.label_thresholds = getattr(config, "label_thresholds", None)
        self.task = getattr(config, "adapters_task", None) or "classification"
        self.scale = target_scale(config)
        self.positive_label = getattr(config, "positive_label", None)
        # Fitted on validation after training (temperature or isotonic); applied to every probability.
        self.calibration = getattr(config, "calibration", None)
        self.device = next(self.model.parameters()).device

    def texts(self, inputs: pd.DataFrame | Sequence[str] | str) -> list[str]:
        """Render rows as the recipe did in training; plain strings pass through."""
        from adapters.data import render_text

        if isinstance(inputs, str):
            return [inputs]
        if isinstance(inputs, pd.DataFrame):
            data = self.recipe.data
            return render_text(inputs, data.template, data.text_columns, where="input")
        return [str(text) for text in inputs]

    def predict_proba(self, inputs: pd.DataFrame | Sequence[str] | str, batch_size: int = 64) -> np.ndarray:
        """An (n, num_labels) array of probabilities, columns in ``label_names`` order."""
        if self.task in ("token_classification", "sft"):
            what = "tags words: use predict() or tag()" if self.task != "sft" else "generates: use predict()"
            raise AdaptersUserError(f"this adapter {what}", where=str(self.directory))
        return self.scores(self.logits(with_question(self.texts(inputs), self.verbalizer), batch_size))

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """Logits of :meth:`logits` → what the task reports: class probabilities (calibrated when the
        adapter saved a calibration), per-label probabilities, or numbers for regression."""
        import torch

        from adapters.metrics.calibration import apply_calibration

        scores = to_scores(torch.from_numpy(logits), self.problem_type, self.scale).numpy()
        scores = scores.reshape(len(logits), -1).astype(np.float64)
        if self.calibration and self.problem_type not in ("regression", "multi_label_classification"):
            scores = apply_calibration(scores, self.calibration)
        return scores

    def encode(self, texts: Sequence[str]) -> Any:
        """Tokenize rendered texts as in training (truncated to the recipe's max_length), as tensors."""
        return self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.recipe.data.max_length,
            padding=True,
            return_tensors="pt",
        )

    def logits(
        self, texts: Sequence[str], batch_size: int = 64, adapter_names: Sequence[str] | None = None
    ) -> np.ndarray:
        """(n, num_labels) float32 logits of rendered texts, tokenized in length-sorted batches.

        ``adapter_names`` (one per text) sends each row through that adapter of a model that holds several,
        in one forward pass (PEFT's mixed batches; used by :class:`adapters.multi.MultiAdapter`).
        """
        import torch

        from adapters.first_token import first_token_only

        out = np.zeros((len(texts), len(self.label_names)), dtype=np.float32)
        # The head reads the first token: the last layer computes only it (same logits, ~14 % fewer FLOPs).
        with torch.no_grad(), first_token_only(self.model):
            for chunk in sorted_batches(texts, batch_size):
                encoded = self.encode([texts[i] for i in chunk])
                encoded = {key: value.to(self.device) for key, value in encoded.items()}
                if adapter_names is not None:
                    encoded["adapter_names"] = [adapter_names[i] for i in chunk]
                logits = class_logits(self.model, encoded, self.answer_ids).float().cpu().numpy()
                out[chunk] = logits.reshape(len(chunk), -1)
        return out

    def predict(self, inputs: pd.DataFrame | Sequence[str] | str) -> list[Any]:
        """Label names for the inputs (see :meth:`decide`); token classification: space-joined tags;
        SFT: the generated responses."""
        if self.task == "sft":
            return self.generate(inputs)
        if self.task == "token_classification":
            return [" ".join(tags) for tags in self.tag(inputs)]
        return self.decide(self.predict_proba(inputs))

    def generate(self, inputs: pd.DataFrame | Sequence[str] | str, max_new_tokens: int = 32) -> list[str]:
        """SFT: the response to each prompt (greedy), as in training: ``prompt + newline`` then the answer."""
        import torch

        answers = []
        with torch.no_grad():
            for prompt in self.texts(inputs):
                encoded = self.tokenizer(prompt + "\n", return_tensors="pt").to(self.device)
                output = self.model.generate(
                    **encoded,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
                new = output[0, encoded["input_ids"].shape[1] :]
                answers.append(self.tokenizer.decode(new, skip_special_tokens=True).strip())
        return answers

    def tag(self, inputs: pd.DataFrame | Sequence[str] | str, batch_size: int = 64) -> list[list[str]]:
        """Token classification: one tag per whitespace-separated word (words past max_length: "O")."""
        import torch

        words = [text.split() for text in self.texts(inputs)]
        tags: list[list[str]] = []
        with torch.no_grad():
            for start in range(0, len(words), batch_size):
                chunk = words[start : start + batch_size]
                encoded = self.tokenizer(
                    chunk,
                    is_split_into_words=True,
                    truncation=True,
                    max_length=self.recipe.data.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                best = (
                    self.model(**{k: v.to(self.device) for k, v in encoded.items()}).logits.argmax(-1).cpu()
                )
                for row, row_words in enumerate(chunk):
                    found = ["O"] * len(row_words)
                    previous = None
                    for position, word in enumerate(encoded.word_ids(row)):
                        if word is not None and word != previous:
                            found[word] = self.label_names[int(best[row, position])]
                        previous = word
                    tags.append(found)
        return tags

    def decide(self, probabilities: np.ndarray) -> list[Any]:
        """Binary tasks apply the saved decision threshold to P(positive); others take the argmax.

        Regression returns the predicted numbers; multi-label the labels at or above their tuned
        thresholds, joined with the recipe's separator ("" when none).
        """
        if self.problem_type == "regression":
            return [float(value) for value in probabilities[:, 0]]
        if self.problem_type == "multi_label_classification":
            cuts = np.asarray(self.label_thresholds or [0.5] * len(self.label_names))
            separator = self.recipe.data.label_separator
            return [
                separator.join(name for name, hit in zip(self.label_names, row >= cuts, strict=True) if hit)
                for row in probabilities
            ]
        if len(self.label_names) == 2 and self.positive_label in self.label_names:
            positive = self.label_names.index(self.positive_label)
            return [
                self.label_names[positive if row[positive] >= self.threshold else 1 - positive]
                for row in probabilities
            ]
        return [self.label_names[i] for i in probabilities.argmax(axis=1)]


def load(directory: str | Path, device: str | None = None) -> Classifier:
    """Load a trained artifact directory as a :class:`Classifier` (on the GPU when there is one)."""
    return Classifier(directory, device)

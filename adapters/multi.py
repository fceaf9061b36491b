"""Several adapters on one base model: load it once, predict with any adapter, or with one per row.

N artifacts loaded as N :class:`~adapters.classifier.Classifier` objects hold N copies of the base model's
weights. A :class:`MultiAdapter` holds one: PEFT keeps each adapter's own small weights (LoRA matrices,
its copy of the task head) beside the shared base and switches between them. A call that routes rows to
different adapters runs one forward pass for all of them where PEFT can mix adapters in a batch
(``adapter_names=``: LoRA without DoRA, heads that are Linear layers), else one pass per adapter.

Each adapter keeps its own rendering (template), tokenizer, threshold and labels: the scoring and decision
logic is :class:`Classifier`'s, run on the shared model with that adapter active.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adapters.classifier import Classifier
from adapters.errors import AdaptersUserError
from adapters.heads import with_question
from adapters.hub import artifact_dir, quiet_loading
from adapters.recipe import Recipe, load_recipe

__all__ = ["MultiAdapter", "AdapterSource", "named_directories", "read_sources", "check_compatible"]

Inputs = pd.DataFrame | Sequence[str] | str

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # PEFT keys adapters in torch ModuleDicts: no dots
# What ModulesToSaveWrapper._mixed_batch_forward accepts (peft/utils/other.py); another wrapped module,
# e.g. BERT's pooler in modules_to_save, makes PEFT refuse a mixed batch.
_MIXABLE_HEADS = ("Linear", "Embedding", "Conv1d", "Conv2d", "Conv3d")


@dataclass(frozen=True)
class AdapterSource:
    """One artifact directory under the caller's name, with what the compatibility checks read."""

    name: str
    directory: Path
    adapter: dict[str, Any]  # adapter_config.json
    config: dict[str, Any]  # config.json: labels, problem type, decision settings
    recipe: Recipe

    @property
    def base(self) -> str:
        revision = self.adapter.get("revision")
        return str(self.adapter.get("base_model_name_or_path")) + (f"@{revision}" if revision else "")

    @property
    def task(self) -> str:
        return self.config.get("adapters_task") or "classification"

    @property
    def label_names(self) -> list[str]:
        id2label = self.config.get("id2label") or {}
        return [id2label[key] for key in sorted(id2label, key=int)]


def _default_name(name_or_path: str | Path) -> str:
    """The directory's (or repo's) last part, made a valid PEFT adapter name."""
    last = Path(str(name_or_path).rstrip("/\\")).name
    return re.sub(r"[^A-Za-z0-9_-]", "_", last) or "adapter"


def named_directories(
    adapters: Mapping[str, str | Path] | Sequence[str | Path],
) -> dict[str, str | Path]:
    """``{name: path or repo id}`` from a dict, or from a list named after the directories."""
    if isinstance(adapters, str | Path):
        raise AdaptersUserError(
            "pass several adapters: a list of paths / repo ids, or a dict of names to them",
            where=str(adapters),
        )
    if isinstance(adapters, Mapping):
        items = [(str(name), where) for name, where in adapters.items()]
    else:
        items = [(_default_name(where), where) for where in adapters]
    if not items:
        raise AdaptersUserError("no adapters given")
    named: dict[str, str | Path] = {}
    for name, where in items:
        if name in named:
            raise AdaptersUserError(
                f"two adapters are named {name!r}; name them, e.g. {{'a': PATH_A, 'b': PATH_B}}",
                where=str(where),
            )
        if not _NAME.match(name) or name == "__base__":
            raise AdaptersUserError(
                f"adapter name {name!r}: use letters, digits, '_' and '-' ('__base__' is PEFT's)",
                where=str(where),
            )
        named[name] = where
    return named


def _read_json(directory: Path, name: str) -> dict[str, Any]:
    path = directory / name
    if not path.is_file():
        raise AdaptersUserError(f"not an adapter artifact directory (no {name})", where=str(directory))
    return json.loads(path.read_text(encoding="utf-8"))


def read_sources(named: Mapping[str, str | Path]) -> list[AdapterSource]:
    """Resolve each path or repo id to a local artifact and read its configs (no model is loaded)."""
    sources = []
    for name, where in named.items():
        directory = artifact_dir(where)
        adapter, config = _read_json(directory, "adapter_config.json"), _read_json(directory, "config.json")
        if not (directory / "recipe.yaml").is_file():
            raise AdaptersUserError(
                "not an adapter artifact directory (no recipe.yaml)", where=str(directory)
            )
        sources.append(
            AdapterSource(name, directory, adapter, config, load_recipe(directory / "recipe.yaml"))
        )
    return sources


def check_compatible(sources: Sequence[AdapterSource]) -> None:
    """Refuse adapters that cannot share one PEFT model, in one line naming the odd one out.

    One base model instance means the same base weights (id and revision) loaded the same way; one task
    head wrapper per module means heads of the same shape (task and number of labels); one PeftModel holds
    one tuner type (a LoRA model cannot also hold IA3 adapters). Templates may differ: rows are rendered
    per adapter.
    """
    first = sources[0]
    loading = ("quantization", "torch_dtype", "trust_remote_code")
    for other in sources[1:]:
        where = str(other.directory)
        if other.base != first.base:
            raise AdaptersUserError(
                f"adapter {other.name!r} is for base model {other.base}, {first.name!r} for {first.base}; "
                "adapters share one model only with the same base model",
                where=where,
            )
        if other.task != first.task:
            raise AdaptersUserError(
                f"adapter {other.name!r} is a {other.task} adapter, {first.name!r} a {first.task} one",
                where=where,
            )
        if len(other.label_names) != len(first.label_names):
            raise AdaptersUserError(
                f"adapter {other.name!r} has {len(other.label_names)} labels, {first.name!r} "
                f"{len(first.label_names)}; heads of different shapes cannot share one model",
                where=where,
            )
        if other.adapter.get("peft_type") != first.adapter.get("peft_type"):
            raise AdaptersUserError(
                f"adapter {other.name!r} is {other.adapter.get('peft_type')}, {first.name!r} "
                f"{first.adapter.get('peft_type')}; one PEFT model holds adapters of one method",
                where=where,
            )
        for key in loading:
            mine, theirs = getattr(other.recipe.model, key), getattr(first.recipe.model, key)
            if mine != theirs:
                raise AdaptersUserError(
                    f"adapter {other.name!r} loads its base model with model.{key}={mine!r}, "
                    f"{first.name!r} with {theirs!r}",
                    where=where,
                )


def _tokenizer_key(tokenizer: Any) -> tuple[Any, ...] | None:
    """Two tokenizers that agree on these tokenize alike (None: cannot tell)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    return type(tokenizer).__name__, backend.to_str(), tokenizer.padding_side, tokenizer.truncation_side


def _batch_key(classifier: Classifier) -> tuple[Any, ...] | None:
    """Rows of two adapters can share one tokenized batch only if these agree (None: cannot tell)."""
    tokenizer = _tokenizer_key(classifier.tokenizer)
    answers = tuple(classifier.answer_ids) if classifier.answer_ids is not None else None
    return None if tokenizer is None else (tokenizer, classifier.recipe.data.max_length, answers)


class MultiAdapter:
    """Several artifacts of the same base model, on one instance of it.

    ``MultiAdapter({"portfolio_a": DIR_A, "portfolio_b": DIR_B})`` or ``MultiAdapter([DIR_A, DIR_B])``
    (names from the directory names); paths or Hub repo ids. ``adapter=`` picks the adapter for every row
    (a name) or for each row (a list of names, one per row).
    """

    def __init__(
        self, adapters: Mapping[str, str | Path] | Sequence[str | Path], device: str | None = None
    ) -> None:
        from transformers import AutoTokenizer

        from adapters.base_model import pad_left
        from adapters.reload import load_adapter_model

        self.sources = read_sources(named_directories(adapters))
        check_compatible(self.sources)
        first = self.sources[0]
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        model, tokenizer = load_adapter_model(first.directory, first.recipe.model, device)
        torch_device = str(next(model.parameters()).device)
        with quiet_loading():
            if first.name != "default":  # load_adapter_model names its adapter "default": load it as named
                model.load_adapter(str(first.directory), adapter_name=first.name, torch_device=torch_device)
                model.set_adapter(first.name, inference_mode=True)
                model.delete_adapter("default")
            for source in self.sources[1:]:
                model.load_adapter(str(source.directory), adapter_name=source.name, torch_device=torch_device)
        model.eval()
        self.model = model
        self._classifiers: dict[str, Classifier] = {}
        tokenizers = {_tokenizer_key(tokenizer): tokenizer}  # one object per distinct tokenizer (~10 MB each)
        for source in self.sources:
            if source is not first:
                remote = source.recipe.model.trust_remote_code
                tokenizer = AutoTokenizer.from_pretrained(source.directory, trust_remote_code=remote)
                tokenizer = pad_left(tokenizer) if source.config.get("verbalizer") else tokenizer
                key = _tokenizer_key(tokenizer)
                tokenizer = tokenizers.setdefault(key, tokenizer) if key is not None else tokenizer
            self._classifiers[source.name] = Classifier(source.directory, model=model, tokenizer=tokenizer)
        self.task = self._classifiers[first.name].task
        self._mixable: dict[frozenset[str], bool] = {}

    @property
    def names(self) -> list[str]:
        """The adapters' names, in the order given."""
        return list(self._classifiers)

    def label_names(self, adapter: str) -> list[str]:
        """One adapter's label names: the columns of its probabilities."""
        return self._classifier(adapter).label_names

    def _classifier(self, name: str) -> Classifier:
        if name not in self._classifiers:
            raise AdaptersUserError(f"no adapter named {name!r}; loaded: {', '.join(self._classifiers)}")
        return self._classifiers[name]

    def _activate(self, name: str) -> Classifier:
        classifier = self._classifier(name)
        if self.model.active_adapter != name:
            self.model.set_adapter(name, inference_mode=True)
        return classifier

    def _groups(self, inputs: Inputs, adapter: str | Sequence[str]) -> tuple[int, dict[str, list[int]]]:
        """How many rows, and which rows go to which adapter (first-seen order)."""
        rows = 1 if isinstance(inputs, str) else len(inputs)
        names = [adapter] * rows if isinstance(adapter, str) else list(adapter)
        if len(names) != rows:
            raise AdaptersUserError(
                f"adapter= names {len(names)} rows, the inputs have {rows}", where="adapter"
            )
        groups: dict[str, list[int]] = {}
        for row, name in enumerate(names):
            self._classifier(name)
            groups.setdefault(name, []).append(row)
        return rows, groups

    @staticmethod
    def _part(inputs: Inputs, rows: list[int]) -> Inputs:
        if isinstance(inputs, str):
            return inputs
        if isinstance(inputs, pd.DataFrame | pd.Series):
            return inputs.iloc[rows]
        return [inputs[row] for row in rows]

    def _can_mix(self, names: frozenset[str]) -> bool:
        """Whether PEFT can run rows of these adapters in one forward pass (``adapter_names=``)."""
        if names not in self._mixable:
            from peft.utils.other import ModulesToSaveWrapper

            by_name = {source.name: source for source in self.sources}
            lora = all(
                by_name[name].adapter.get("peft_type") == "LORA" and not by_name[name].adapter.get("use_dora")
                for name in names
            )
            keys = {_batch_key(self._classifiers[name]) for name in names}
            # PEFT 0.21 sends adapter_names= to every head wrapper, even one that holds none of these
            # adapters: each must hold all of them and be of a type it can split a batch for.
            heads = all(
                names <= set(wrapper.modules_to_save)
                and type(wrapper.original_module).__name__ in _MIXABLE_HEADS
                for wrapper in self.model.modules()
                if isinstance(wrapper, ModulesToSaveWrapper)
            )
            self._mixable[names] = lora and heads and len(keys) == 1 and None not in keys
        return self._mixable[names]

    def can_mix(self, adapters: Sequence[str]) -> bool:
        """True when rows for these adapters share forward passes; else each adapter gets its own."""
        return self._can_mix(frozenset(adapters))

    def predict_proba(self, inputs: Inputs, adapter: str | Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Probabilities (numbers for regression) of one adapter, or of each row's own adapter.

        Equal, up to float noise, to ``adapters.load(that adapter's directory).predict_proba(rows)``.
        """
        if isinstance(adapter, str):
            return self._activate(adapter).predict_proba(inputs, batch_size)
        rows, groups = self._groups(inputs, adapter)
        if self.task in ("token_classification", "sft"):
            raise AdaptersUserError(f"these are {self.task} adapters: use predict()", where="adapter")
        texts: list[str] = [""] * rows
        per_row: list[str] = [""] * rows
        for name, members in groups.items():
            classifier = self._classifiers[name]
            rendered = with_question(classifier.texts(self._part(inputs, members)), classifier.verbalizer)
            for row, text in zip(members, rendered, strict=True):
                texts[row], per_row[row] = text, name
        out = np.zeros((rows, len(self._classifiers[self.names[0]].label_names)))
        if len(groups) > 1 and self._can_mix(frozenset(groups)):
            # Any adapter's tokenizer serves (_can_mix checked they agree); PEFT routes each row.
            logits = self._activate(per_row[0]).logits(texts, batch_size, adapter_names=per_row)
            for name, members in groups.items():
                out[members] = self._classifiers[name].scores(logits[members])
            return out
        for name, members in groups.items():
            classifier = self._activate(name)
            out[members] = classifier.scores(classifier.logits([texts[row] for row in members], batch_size))
        return out

    def predict(self, inputs: Inputs, adapter: str | Sequence[str]) -> list[Any]:
        """Decisions, each with its adapter's own saved threshold and labels (``Classifier.decide``);
        token classification: tags; SFT: generated responses."""
        if isinstance(adapter, str):
            return self._activate(adapter).predict(inputs)
        rows, groups = self._groups(inputs, adapter)
        per_word = self.task in ("token_classification", "sft")  # no probabilities: one pass per adapter
        probabilities = None if per_word else self.predict_proba(inputs, adapter)
        out: list[Any] = [None] * rows
        for name, members in groups.items():
            if probabilities is None:
                decided = self._activate(name).predict(self._part(inputs, members))
            else:
                decided = self._classifiers[name].decide(probabilities[members])
            for row, value in zip(members, decided, strict=True):
                out[row] = value
        return out

"""The cells of a learning curve: how each (system, fraction, seed) cell is trained or fitted, scored on
the fixed validation and test rows, written, and found again in the cache.

A finished cell writes ``cell.json`` last (atomically) with a hash of everything it depends on: the
recipe (adapter, variants, full fine-tune) or its data and eval sections (baselines), and the data file's
content. A rerun loads a cell whose hash matches and recomputes one whose recipe or data changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CELL_VERSION",
    "ENSEMBLE",
    "FULL_FINETUNE",
    "MEMBER",
    "VARIANT",
    "CellMaker",
    "cell_path",
    "is_trained",
]

CELL_VERSION = 1  # bump when a cell's contents change meaning: every cached cell is then recomputed
FULL_FINETUNE = "full_finetune"
ADAPTER_KEEP = ("predictions.csv", "validation.csv", "metrics.json", "recipe.yaml", "cell.json")
TRAINED = ("adapter", FULL_FINETUNE)  # systems that train the recipe's base model (the rest: baselines)
BASELINE_VERSION = 2  # 2: baselines weigh classes as data.class_weights says (the adapter's loss does)
# Recipe settings added after cells were first cached, with the value that computes what runs did before
# them: left out of a cell's hash at that value, so a finished curve's cells stay valid for it. (The
# defaults fast_cpu_dropout and first_token_last_layer draw other dropout masks than the cached cells
# had: those cells retrain.)
ADDED_SINCE_V1 = {
    ("training", "min_steps"): None,
    ("training", "fast_cpu_dropout"): False,
    ("training", "group_by_length"): True,
    ("training", "first_token_last_layer"): False,
}
VARIANT = "variant-"  # + a name: the adapter with recipe overrides (an experiment), on the same draws
# A seed ensemble's members after the adapter itself: member j is the recipe trained on the same draw with
# training seed (LoRA initialisation, batch order, dropout) seed + MEMBER_SEED_STEP * j.
MEMBER, MEMBER_SEED_STEP = "member-", 1000
ENSEMBLE = "ensemble"  # the average of the adapter's and its members' probabilities on one draw
STACK_WEIGHTS = np.round(np.linspace(0, 1, 21), 2)  # adapter's weight in the blend: 0, 0.05, …, 1


def _fingerprint(source: str) -> str:
    """The data's content hash (a file, or every file of a directory); a built-in or Hub name as is."""
    path = Path(source)
    if not path.exists():
        return f"name:{source}"
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _hash(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_trained(system: str) -> bool:
    """Whether a system trains the base model (adapter, variant, ensemble member, full fine-tune) rather
    than a baseline."""
    return system in TRAINED or system.startswith((VARIANT, MEMBER))


def cell_path(output_dir: Path, system: str, fraction: float, seed: int) -> Path:
    """Where one cell's files live: ``cells/{system}/f{fraction}-s{seed}``."""
    return Path(output_dir) / "cells" / system / f"f{fraction:g}-s{seed}"


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file beside it, so a killed run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _cached(directory: Path, digest: str) -> dict[str, Any] | None:
    try:
        cell = json.loads((directory / "cell.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return cell if cell.get("hash") == digest else None


def _probabilities_frame(frame: pd.DataFrame, label_names: list[str], probabilities: np.ndarray) -> str:
    """Scored rows as CSV: row_id, label name, prob_<label> (predictions.csv's layout)."""
    table = pd.DataFrame({"row_id": frame["row_id"], "label": [label_names[i] for i in frame["label"]]})
    for index, name in enumerate(label_names):
        table[f"prob_{name}"] = probabilities[:, index]
    return table.to_csv(index=False)


def _read_probabilities(path: Path, label_names: list[str], row_ids: Sequence[str]) -> np.ndarray:
    """A cell's saved probabilities, checked to be the fixed split's rows in its order (or it is a bug)."""
    table = pd.read_csv(path, dtype={"row_id": str})
    if table["row_id"].tolist() != list(row_ids):
        raise RuntimeError(f"{path} does not hold the curve's fixed split rows in order")
    return table[[f"prob_{name}" for name in label_names]].to_numpy(dtype=float)


class CellMaker:
    """One curve run: the resolved recipe, the fixed validation/test labels, and how each cell is made."""

    def __init__(
        self, recipe: Any, output_dir: Path, keep_adapters: bool, first: Any, variants: Mapping[str, Any]
    ) -> None:
        from adapters.scoring import metric_kwargs

        self.recipe, self.output_dir, self.keep_adapters = recipe, output_dir, keep_adapters
        self.recipes = {"adapter": recipe, **{VARIANT + name: found for name, found in variants.items()}}
        self.fingerprint = _fingerprint(recipe.data.source)
        self.computed = 0
        self.label_names: list[str] = first.label_names
        self.labels = {split: first.frames[split]["label"].to_numpy() for split in ("validation", "test")}
        self.row_ids = {split: first.frames[split]["row_id"].tolist() for split in ("validation", "test")}
        self.options = metric_kwargs(recipe, self.label_names)  # fixed threshold (or 0.5 under a rule)
        self.primary = "log_loss" if recipe.eval.primary_metric == "loss" else recipe.eval.primary_metric
        self.metrics = list(dict.fromkeys([*recipe.eval.metrics, self.primary]))
        self.sign = 1 if recipe.eval.greater_is_better else -1
        self._memo: tuple[tuple[float, int, str], Any] | None = None

    def cell_recipe(self, fraction: float, seed: int, system: str = "adapter") -> Any:
        base = self.recipes.get(system, self.recipe)
        data = base.data.model_copy(update={"train_fraction": fraction, "train_fraction_seed": seed})
        member = int(system.removeprefix(MEMBER)) if system.startswith(MEMBER) else 0
        training = base.training.model_copy(update={"seed": seed + MEMBER_SEED_STEP * member})
        return base.model_copy(update={"data": data, "training": training})

    def prepared(self, fraction: float, seed: int, system: str = "adapter") -> Any:
        """The draw's prepared data, read once for the adapter and the baselines of that draw (a variant
        may render the same rows differently)."""
        from adapters.data import prepare_data

        config = self.cell_recipe(fraction, seed, system).data
        key = (fraction, seed, _hash(config.model_dump(mode="json")))
        if self._memo is None or self._memo[0] != key:
            self._memo = (key, prepare_data(config, task=self.recipe.task))
        return self._memo[1]

    def lookup(self, system: str, fraction: float, seed: int) -> tuple[Any, Path, str, dict[str, Any] | None]:
        """The cell's recipe, directory and hash, and the cached cell when its hash matches (else any
        stale ``cell.json`` is removed, so an interrupted recompute never looks finished)."""
        recipe = self.cell_recipe(fraction, seed, system)
        directory, digest = self.cell_dir(system, fraction, seed), self.digest(system, recipe)
        cached = _cached(directory, digest)
        if cached is None:
            (directory / "cell.json").unlink(missing_ok=True)
        else:
            cached["system"] = system  # a variant's cell may have been an adapter's (same recipe, same hash)
        return recipe, directory, digest, cached

    def write_scores(self, directory: Path, data: Any, scored: dict[str, np.ndarray]) -> None:
        """A system's probabilities on the fixed splits: ``validation.csv`` and ``predictions.csv``."""
        for split, file in (("validation", "validation.csv"), ("test", "predictions.csv")):
            frame = _probabilities_frame(data.frames[split], self.label_names, scored[split])
            _write_atomic(directory / file, frame)

    def cell_dir(self, system: str, fraction: float, seed: int) -> Path:
        return cell_path(self.output_dir, system, fraction, seed)

    def digest(self, system: str, recipe: Any) -> str:
        """What a cell depends on: an adapter the whole recipe, a baseline the data and eval sections."""
        raw = recipe.to_dict()
        for key in ("name", "description", "card"):
            raw.pop(key, None)
        raw["training"].pop("output_dir", None)
        # Threads change the speed, not the cell: a curve resumed on another machine (or with
        # training.num_threads=1 beside another job) reuses what is done.
        raw["training"]["num_threads"] = None
        for (section, key), before in ADDED_SINCE_V1.items():  # the same cell as before they existed
            if key in raw.get(section, {}) and raw[section][key] is before:
                raw[section].pop(key)
        # A variant is the adapter trained from another recipe: a variant whose recipe is the adapter's is
        # the same cell (so a finished curve's adapter cells serve as a variant's, e.g. the recipe before
        # a change).
        kind = "adapter" if system.startswith((VARIANT, MEMBER)) else system
        payload = {"v": CELL_VERSION, "system": kind, "recipe": raw, "data": self.fingerprint}
        if not is_trained(system):
            payload["recipe"] = {key: raw[key] for key in ("task", "data", "eval")}
            payload["baseline_version"] = BASELINE_VERSION
        return _hash(payload)

    def score(self, probabilities: np.ndarray, split: str, threshold: float, names: Any = None) -> dict:
        from adapters.metrics import compute_metrics

        options = {**self.options, "threshold": threshold}
        return compute_metrics(names or self.metrics, probabilities, self.labels[split], **options)

    def threshold(self, validation: np.ndarray) -> float:
        """The recipe's ``eval.threshold`` rule applied to a system's own validation scores (binary)."""
        from adapters.metrics.calibration import choose_threshold

        if validation.shape[1] != 2:
            return 0.5
        positive, labels = self.options["positive_label"], self.labels["validation"]
        rule, cost = self.recipe.eval.threshold, self.options["cost_matrix"]
        return float(choose_threshold(rule, validation[:, positive], labels == positive, cost, positive))

    def record(
        self, directory: Path, head: dict, scored: dict, threshold: float, seconds: float, energy: Any
    ) -> dict[str, Any]:
        """Score a finished cell on test and validation and write its ``cell.json`` (last, atomically)."""
        cell = {
            **head,
            "threshold": threshold,
            "metrics": self.score(scored["test"], "test", threshold),
            "validation": self.score(scored["validation"], "validation", threshold),
            "wall_seconds": round(seconds, 3),
            "energy_kwh": energy,
        }
        _write_atomic(directory / "cell.json", json.dumps(cell, indent=2))
        self.computed += 1
        return cell

    def adapter(self, fraction: float, seed: int, system: str = "adapter") -> dict[str, Any]:
        """Train the recipe (or a variant of it) on one draw via :func:`adapters.api.train`; keep its
        test predictions and metrics, add validation probabilities (for ``--stack``) from the reloaded
        adapter, then drop the weights and logs unless ``keep_adapters``."""
        from adapters import api

        recipe, directory, digest, cached = self.lookup(system, fraction, seed)
        if cached is not None:
            return cached
        started = time.perf_counter()
        result = api.train(recipe, output_dir=directory, overwrite=True, progress=False)
        data = self.prepared(fraction, seed, system)
        validation = data.frames["validation"]
        val_probabilities = api.load(directory).predict_proba(validation["text"].tolist())
        seconds = time.perf_counter() - started
        text = _probabilities_frame(validation, self.label_names, val_probabilities)
        _write_atomic(directory / "validation.csv", text)
        scored = {
            "validation": val_probabilities,
            "test": _read_probabilities(
                directory / "predictions.csv", self.label_names, self.row_ids["test"]
            ),
        }
        saved = json.loads((directory / "metrics.json").read_text(encoding="utf-8"))  # with the run's cost
        energy = ((saved.get("cost") or {}).get("energy") or {}).get("energy_kwh")
        if not self.keep_adapters:
            for child in directory.iterdir():
                if child.name not in ADAPTER_KEEP:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        threshold = float(result.metrics.get("threshold", {}).get("value", 0.5))
        head = {"system": system, "fraction": fraction, "seed": seed, "hash": digest}
        head["n_train"] = len(data.frames["train"])
        return self.record(directory, head, scored, threshold, seconds, energy)

    def full_finetune(self, fraction: float, seed: int) -> dict[str, Any]:
        """The same recipe, draw, loop and calibration with every base weight trained and no PEFT; its
        ``metrics.json`` (test metrics and cost) is what the adapter's cost is compared with."""
        from adapters.training import run_training

        recipe, directory, digest, cached = self.lookup(FULL_FINETUNE, fraction, seed)
        if cached is not None:
            return cached
        data = self.prepared(fraction, seed)
        started = time.perf_counter()
        outcome = run_training(recipe, data, logging_dir=None, progress=False, full_finetune=True)
        seconds = time.perf_counter() - started
        scored = {"validation": outcome.validation_probabilities, "test": outcome.test_probabilities}
        self.write_scores(directory, data, scored)
        saved = {**outcome.metrics, "cost": outcome.cost}
        _write_atomic(directory / "metrics.json", json.dumps(saved, indent=2, default=float))
        head = {"system": FULL_FINETUNE, "fraction": fraction, "seed": seed, "hash": digest}
        head["n_train"] = len(data.frames["train"])
        threshold = float(outcome.metrics.get("threshold", {}).get("value", 0.5))
        energy = (outcome.cost.get("energy") or {}).get("energy_kwh")
        del outcome  # the full model's weights and optimizer state go before the next cell
        return self.record(directory, head, scored, threshold, seconds, energy)

    def baseline(self, name: str, fraction: float, seed: int) -> dict[str, Any]:
        """Fit baseline ``name`` on the very rows the adapter of this draw trained on."""
        from adapters.baselines import prepared_probabilities

        recipe, directory, digest, cached = self.lookup(name, fraction, seed)
        if cached is not None:
            return cached
        data = self.prepared(fraction, seed)
        started = time.perf_counter()
        scored = prepared_probabilities(name, recipe.data, data)
        seconds = time.perf_counter() - started
        self.write_scores(directory, data, scored)
        head = {"system": name, "fraction": fraction, "seed": seed, "hash": digest}
        head["n_train"] = len(data.frames["train"])
        return self.record(directory, head, scored, self.threshold(scored["validation"]), seconds, None)

    def best_baseline(self, cells: list[dict[str, Any]], names: Sequence[str]) -> str:
        """The baseline whose mean validation score among ``cells`` (one fraction's) is best."""
        scores = {
            n: np.mean([c["validation"][self.primary] for c in cells if c["system"] == n]) for n in names
        }
        return max(names, key=lambda name: self.sign * scores[name])

    def saved_scores(self, system: str, fraction: float, seed: int) -> dict[str, np.ndarray]:
        """A finished cell's probabilities on the fixed validation and test rows, read back from its files."""
        directory = self.cell_dir(system, fraction, seed)
        return {
            split: _read_probabilities(directory / file, self.label_names, self.row_ids[split])
            for split, file in (("validation", "validation.csv"), ("test", "predictions.csv"))
        }

    def stack(self, adapter: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
        """p = w·p_adapter + (1−w)·p_baseline with w on a 0.05 grid chosen by the primary metric on
        validation; the cut-off is then re-fitted on the blended validation scores."""
        fraction, seed, name = adapter["fraction"], adapter["seed"], baseline["system"]
        directory = self.cell_dir("stack", fraction, seed)
        digest = _hash({"v": CELL_VERSION, "adapter": adapter["hash"], "baseline": baseline["hash"]})
        cached = _cached(directory, digest)
        if cached is not None:
            return cached
        started = time.perf_counter()
        ours, theirs = self.saved_scores("adapter", fraction, seed), self.saved_scores(name, fraction, seed)

        def blend(weight: float, split: str) -> np.ndarray:
            return weight * ours[split] + (1 - weight) * theirs[split]

        fixed = self.options["threshold"]
        values = [
            self.score(blend(w, "validation"), "validation", fixed, [self.primary]) for w in STACK_WEIGHTS
        ]
        weight = float(STACK_WEIGHTS[int(np.argmax([self.sign * v[self.primary] for v in values]))])
        scored = {split: blend(weight, split) for split in ("validation", "test")}
        seconds = adapter["wall_seconds"] + baseline["wall_seconds"] + time.perf_counter() - started
        head = {"system": "stack", "fraction": fraction, "seed": seed, "hash": digest}
        head.update(n_train=adapter["n_train"], weight=weight, baseline=name)
        directory.mkdir(parents=True, exist_ok=True)
        threshold = self.threshold(scored["validation"])
        return self.record(directory, head, scored, threshold, seconds, adapter["energy_kwh"])

    def ensemble(self, members: list[dict[str, Any]]) -> dict[str, Any]:
        """The mean of the probabilities of the adapter and its members trained on one draw (a seed
        ensemble); the cut-off is re-fitted on the averaged validation scores. Its time and energy are the
        members' sum: what the ensemble cost to train."""
        fraction, seed = members[0]["fraction"], members[0]["seed"]
        directory = self.cell_dir(ENSEMBLE, fraction, seed)
        digest = _hash({"v": CELL_VERSION, "members": [cell["hash"] for cell in members]})
        cached = _cached(directory, digest)
        if cached is not None:
            return cached
        parts = [self.saved_scores(cell["system"], fraction, seed) for cell in members]
        scored = {split: np.mean([part[split] for part in parts], axis=0) for split in ("validation", "test")}
        energies = [cell["energy_kwh"] for cell in members]
        energy = None if None in energies else float(sum(energies))
        head = {"system": ENSEMBLE, "fraction": fraction, "seed": seed, "hash": digest}
        head.update(n_train=members[0]["n_train"], members=len(members))
        seconds = float(sum(cell["wall_seconds"] for cell in members))
        directory.mkdir(parents=True, exist_ok=True)
        self.write_scores(directory, self.prepared(fraction, seed), scored)
        return self.record(directory, head, scored, self.threshold(scored["validation"]), seconds, energy)

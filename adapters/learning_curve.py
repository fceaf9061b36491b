"""Learning curves: how much of the adapter's quality survives with a fraction of the labels, and whether it
beats the classical models a team already has on the same few rows.

The grid is (system, fraction, seed). Every cell trains on a stratified sub-sample of the training split
(``data.train_fraction``, drawn by ``data.train_fraction_seed``) and is scored on the *same* validation and
test rows, fixed by ``data.split_seed``: a draw of 80 rows moves ROC-AUC by about ±0.05, so systems are
compared on the same draws (paired differences, see :mod:`adapters.curve_report`), and small fractions get
more draws (``draws_small``) than large ones.

Cells are cached: each finished cell writes ``cell.json`` last (atomically) with a hash of everything it
depends on: the recipe (adapter) or its data and eval sections (baselines), and the data file's content.
A rerun loads a cell whose hash matches and recomputes one whose recipe or data changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adapters.errors import AdaptersUserError

__all__ = ["CurveResult", "cell_path", "curve", "draw_seeds", "parse_fractions", "parse_seeds", "run_curve"]

CELL_VERSION = 1  # bump when a cell's contents change meaning: every cached cell is then recomputed
FULL_FINETUNE = "full_finetune"
SMALL_FRACTION = 0.1  # at or below it, draws vary most: use draws_small seeds
ADAPTER_KEEP = ("predictions.csv", "validation.csv", "metrics.json", "recipe.yaml", "cell.json")
TRAINED = ("adapter", FULL_FINETUNE)  # systems that train the recipe's base model (the rest: baselines)
STACK_WEIGHTS = np.round(np.linspace(0, 1, 21), 2)  # adapter's weight in the blend: 0, 0.05, …, 1


@dataclass
class CurveResult:
    """Where the curve went, and one row per cell (what ``curve.csv`` holds)."""

    output_dir: Path
    rows: pd.DataFrame
    computed: int  # cells computed by this call (the rest came from the cache)


def parse_fractions(value: str | Iterable[float]) -> list[float]:
    """``"0.05,0.1,1"`` or numbers → sorted distinct fractions, each in (0, 1]."""
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        fractions = sorted({float(item) for item in items if str(item).strip()})
    except ValueError:
        raise AdaptersUserError(f"not comma-separated numbers: {value!r}", where="--fractions") from None
    bad = [f for f in fractions if not 0 < f <= 1]
    if not fractions or bad:
        raise AdaptersUserError(
            f"each fraction must lie in (0, 1], got {bad[0] if bad else 'none'}", where="--fractions"
        )
    return fractions


def parse_seeds(value: int | str | Sequence[int]) -> list[int]:
    """A count (``3`` → seeds 0, 1, 2) or a list of seeds (``"1,2,5"``)."""
    try:
        if isinstance(value, str):
            parts = [int(part) for part in value.split(",") if part.strip()]
            value = parts[0] if len(parts) == 1 and "," not in value else parts
        seeds = list(range(int(value))) if isinstance(value, int) else [int(seed) for seed in value]
    except ValueError:
        raise AdaptersUserError(f"expected a count or comma-separated seeds: {value!r}", "--seeds") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise AdaptersUserError("need at least one seed, none negative or repeated", where="--seeds")
    return seeds


def draw_seeds(fraction: float, seeds: Sequence[int], draws_small: int) -> list[int]:
    """The seeds of one fraction: ``seeds``, extended by unused integers to ``draws_small`` draws at
    fractions ≤ 10 %, where one draw's noise is larger than the differences sought."""
    chosen = list(seeds)
    candidate = 0
    while fraction <= SMALL_FRACTION and len(chosen) < draws_small:
        if candidate not in chosen:
            chosen.append(candidate)
        candidate += 1
    return chosen


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


class _Grid:
    """One curve run: the resolved recipe, the fixed validation/test labels, and how each cell is made."""

    def __init__(self, recipe: Any, output_dir: Path, keep_adapters: bool, first: Any) -> None:
        from adapters.training import metric_kwargs

        self.recipe, self.output_dir, self.keep_adapters = recipe, output_dir, keep_adapters
        self.fingerprint = _fingerprint(recipe.data.source)
        self.computed = 0
        self.label_names: list[str] = first.label_names
        self.labels = {split: first.frames[split]["label"].to_numpy() for split in ("validation", "test")}
        self.row_ids = {split: first.frames[split]["row_id"].tolist() for split in ("validation", "test")}
        self.options = metric_kwargs(recipe, self.label_names)  # fixed threshold (or 0.5 under a rule)
        self.primary = "log_loss" if recipe.eval.primary_metric == "loss" else recipe.eval.primary_metric
        self.metrics = list(dict.fromkeys([*recipe.eval.metrics, self.primary]))
        self.sign = 1 if recipe.eval.greater_is_better else -1
        self._memo: tuple[tuple[float, int], Any] | None = None

    def cell_recipe(self, fraction: float, seed: int) -> Any:
        data = self.recipe.data.model_copy(update={"train_fraction": fraction, "train_fraction_seed": seed})
        training = self.recipe.training.model_copy(update={"seed": seed})
        return self.recipe.model_copy(update={"data": data, "training": training})

    def prepared(self, fraction: float, seed: int) -> Any:
        """The draw's prepared data, read once for the adapter and the baselines of that draw."""
        from adapters.data import prepare_data

        if self._memo is None or self._memo[0] != (fraction, seed):
            data = prepare_data(self.cell_recipe(fraction, seed).data, task=self.recipe.task)
            self._memo = ((fraction, seed), data)
        return self._memo[1]

    def cell_dir(self, system: str, fraction: float, seed: int) -> Path:
        return cell_path(self.output_dir, system, fraction, seed)

    def digest(self, system: str, recipe: Any) -> str:
        """What a cell depends on: an adapter the whole recipe, a baseline the data and eval sections."""
        raw = recipe.to_dict()
        for key in ("name", "description", "card"):
            raw.pop(key, None)
        raw["training"].pop("output_dir", None)
        if system not in TRAINED:
            raw = {key: raw[key] for key in ("task", "data", "eval")}
        return _hash({"v": CELL_VERSION, "system": system, "recipe": raw, "data": self.fingerprint})

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

    def adapter(self, fraction: float, seed: int) -> dict[str, Any]:
        """Train the recipe on one draw via :func:`adapters.api.train`; keep its test predictions and
        metrics, add validation probabilities (for ``--stack``) from the reloaded adapter, then drop the
        weights and logs unless ``keep_adapters``."""
        from adapters import api

        recipe = self.cell_recipe(fraction, seed)
        directory, digest = self.cell_dir("adapter", fraction, seed), self.digest("adapter", recipe)
        cached = _cached(directory, digest)
        if cached is not None:
            return cached
        started = time.perf_counter()
        result = api.train(recipe, output_dir=directory, overwrite=True, progress=False)
        data = self.prepared(fraction, seed)
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
        head = {"system": "adapter", "fraction": fraction, "seed": seed, "hash": digest}
        head["n_train"] = len(data.frames["train"])
        return self.record(directory, head, scored, threshold, seconds, energy)

    def full_finetune(self, fraction: float, seed: int) -> dict[str, Any]:
        """The same recipe, draw, loop and calibration with every base weight trained and no PEFT; its
        ``metrics.json`` (test metrics and cost) is what the adapter's cost is compared with."""
        from adapters.training import run_training

        recipe = self.cell_recipe(fraction, seed)
        directory = self.cell_dir(FULL_FINETUNE, fraction, seed)
        digest = self.digest(FULL_FINETUNE, recipe)
        cached = _cached(directory, digest)
        if cached is not None:
            return cached
        (directory / "cell.json").unlink(missing_ok=True)
        data = self.prepared(fraction, seed)
        started = time.perf_counter()
        outcome = run_training(recipe, data, logging_dir=None, progress=False, full_finetune=True)
        seconds = time.perf_counter() - started
        scored = {"validation": outcome.validation_probabilities, "test": outcome.test_probabilities}
        for split, file in (("validation", "validation.csv"), ("test", "predictions.csv")):
            _write_atomic(
                directory / file, _probabilities_frame(data.frames[split], self.label_names, scored[split])
            )
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

        recipe = self.cell_recipe(fraction, seed)
        directory, digest = self.cell_dir(name, fraction, seed), self.digest(name, recipe)
        cached = _cached(directory, digest)
        if cached is not None:
            return cached
        (directory / "cell.json").unlink(missing_ok=True)
        data = self.prepared(fraction, seed)
        started = time.perf_counter()
        scored = prepared_probabilities(name, recipe.data, data)
        seconds = time.perf_counter() - started
        for split, file in (("validation", "validation.csv"), ("test", "predictions.csv")):
            _write_atomic(
                directory / file, _probabilities_frame(data.frames[split], self.label_names, scored[split])
            )
        head = {"system": name, "fraction": fraction, "seed": seed, "hash": digest}
        head["n_train"] = len(data.frames["train"])
        return self.record(directory, head, scored, self.threshold(scored["validation"]), seconds, None)

    def best_baseline(self, cells: list[dict[str, Any]], names: Sequence[str]) -> str:
        """The baseline whose mean validation score among ``cells`` (one fraction's) is best."""
        scores = {
            n: np.mean([c["validation"][self.primary] for c in cells if c["system"] == n]) for n in names
        }
        return max(names, key=lambda name: self.sign * scores[name])

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
        parts = {
            (system, split): _read_probabilities(
                self.cell_dir(system, fraction, seed) / file, self.label_names, self.row_ids[split]
            )
            for system in ("adapter", name)
            for split, file in (("validation", "validation.csv"), ("test", "predictions.csv"))
        }

        def blend(weight: float, split: str) -> np.ndarray:
            return weight * parts[("adapter", split)] + (1 - weight) * parts[(name, split)]

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


def run_curve(
    recipe: Any,
    output_dir: Path,
    fractions: Sequence[float],
    seeds: Sequence[int],
    draws_small: int = 10,
    baselines: bool = False,
    stack: bool = False,
    keep_adapters: bool = False,
    progress: bool = True,
    full_finetune: bool = False,
) -> CurveResult:
    """Run (or load from the cache) every cell of the grid for a resolved classification ``recipe`` and
    write ``curve.csv``, ``curve.png`` and ``curve.md`` into ``output_dir``. ``stack`` implies baselines;
    ``full_finetune`` adds the base model trained without PEFT on every draw."""
    from tqdm.auto import tqdm

    from adapters.baselines import baselines_for
    from adapters.curve_report import write_reports
    from adapters.data import prepare_data

    names = baselines_for(recipe.data) if baselines or stack else []
    trained = ["adapter", *([FULL_FINETUNE] if full_finetune else [])]
    plan = [(f, s) for f in fractions for s in draw_seeds(f, seeds, draws_small)]
    # The smallest draw first: a fraction too small to stratify is refused before any training.
    first = prepare_data(recipe.data.model_copy(update={"train_fraction": min(fractions)}), task=recipe.task)
    grid = _Grid(recipe, output_dir, keep_adapters, first)
    cells: list[dict[str, Any]] = []
    with tqdm(
        total=len(plan) * (len(trained) + len(names) + stack), desc="Curve", unit="cell", disable=not progress
    ) as bar:
        for fraction, seed in plan:
            for system in (*trained, *names):
                bar.set_postfix_str(f"{system} f={fraction:g} seed={seed}")
                make = {"adapter": grid.adapter, FULL_FINETUNE: grid.full_finetune}.get(system)
                cells.append(make(fraction, seed) if make else grid.baseline(system, fraction, seed))
                bar.update()
        for fraction in fractions if stack else []:
            here = [c for c in cells if c["fraction"] == fraction]
            best = grid.best_baseline(here, names)
            partners = {c["seed"]: c for c in here if c["system"] == best}
            for adapter in (c for c in here if c["system"] == "adapter"):
                cells.append(grid.stack(adapter, partners[adapter["seed"]]))
                bar.update()
    context = {
        "recipe": recipe.name,
        "primary": grid.primary,
        "greater_is_better": recipe.eval.greater_is_better,
        "test_rows": len(grid.labels["test"]),
        "train_rows": first.info["train_rows_before_fraction"],
    }
    return CurveResult(output_dir, write_reports(output_dir, cells, context), grid.computed)


def curve(
    recipe: Any,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    *,
    fractions: str | Iterable[float] = (0.05, 0.1, 0.25, 0.5, 1.0),
    seeds: int | str | Sequence[int] = 3,
    draws_small: int = 10,
    baselines: bool = False,
    stack: bool = False,
    full_finetune: bool = False,
    output_dir: str | Path | None = None,
    keep_adapters: bool = False,
    progress: bool = True,
) -> CurveResult:
    """Check the settings before any work, then :func:`run_curve` (see the module docstring)."""
    from adapters.api import _resolved

    fraction_list, seed_list = parse_fractions(fractions), parse_seeds(seeds)
    if draws_small < 1:
        raise AdaptersUserError(
            f"must be a positive number of draws, got {draws_small}", where="--draws-small"
        )
    resolved = _resolved(recipe, overrides, {}, None)
    if full_finetune and (resolved.training.privacy is not None or resolved.model.quantization != "none"):
        raise AdaptersUserError(
            "compares with the base model fully trained in a float dtype, without differential privacy: "
            "run it on a recipe without training.privacy and model.quantization",
            where="--full-finetune",
        )
    if resolved.task != "classification":
        raise AdaptersUserError(f"a learning curve needs task: classification, not {resolved.task}", "task")
    if resolved.data.source == "<DataFrame>":
        raise AdaptersUserError("a learning curve reads data.source; a DataFrame cannot be re-drawn", "data")
    target = Path(output_dir) if output_dir is not None else Path(f"outputs/curve-{resolved.name}")
    return run_curve(
        resolved,
        target,
        fraction_list,
        seed_list,
        draws_small,
        baselines,
        stack,
        keep_adapters,
        progress,
        full_finetune,
    )

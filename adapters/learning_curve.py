"""Learning curves: how much of the adapter's quality survives with a fraction of the labels, and whether it
beats the classical models a team already has on the same few rows.

The grid is (system, fraction, seed). Every cell trains on a stratified sub-sample of the training split
(``data.train_fraction``, drawn by ``data.train_fraction_seed``) and is scored on the *same* validation and
test rows, fixed by ``data.split_seed``: a draw of 80 rows moves ROC-AUC by about ±0.05, so systems are
compared on the same draws (paired differences, see :mod:`adapters.curve_report`), and small fractions get
more draws (``draws_small``) than large ones.

Cells are cached (:mod:`adapters.curve_cells`): an interrupted curve continues where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from adapters.curve_cells import FULL_FINETUNE, MEMBER, VARIANT, CellMaker, is_trained
from adapters.errors import AdaptersUserError

logger = logging.getLogger(__name__)

__all__ = [
    "CurveResult",
    "curve",
    "draw_seeds",
    "parse_fractions",
    "parse_seeds",
    "run_curve",
]

SMALL_FRACTION = 0.1  # at or below it, draws vary most: use draws_small seeds
# A variant may change how the adapter is made, not what it is scored on or which rows it learns from.
FIXED_BY_THE_CURVE = (
    "data.source",
    "data.split_seed",
    "data.test_size",
    "data.validation_size",
    "data.train_fraction",
    "training.seed",
    "task",
)


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
    variants: Mapping[str, Any] | None = None,
    ensemble: int = 1,
) -> CurveResult:
    """Run (or load from the cache) every cell of the grid for a resolved classification ``recipe`` and
    write ``curve.csv``, ``curve.png`` and ``curve.md`` into ``output_dir``. ``stack`` implies baselines;
    ``full_finetune`` adds the base model trained without PEFT on every draw, ``variants`` (name →
    resolved recipe) the adapter made another way, ``ensemble`` > 1 the average of that many adapters
    trained on each draw with other training seeds."""
    from tqdm.auto import tqdm

    from adapters.baselines import baselines_for
    from adapters.curve_report import write_reports
    from adapters.data import prepare_data

    names = baselines_for(recipe.data) if baselines or stack else []
    variants = dict(variants or {})
    members = [MEMBER + str(index) for index in range(1, ensemble)]
    trained = ["adapter", *members, *(VARIANT + name for name in variants)]
    trained += [FULL_FINETUNE] if full_finetune else []
    plan = [(f, s) for f in fractions for s in draw_seeds(f, seeds, draws_small)]
    # The smallest draw first: a fraction too small to stratify is refused before any training.
    first = prepare_data(recipe.data.model_copy(update={"train_fraction": min(fractions)}), task=recipe.task)
    for fraction in fractions:  # a count and a list of seeds read alike ("2" vs "2,"): say which draws run
        chosen = [seed for f, seed in plan if f == fraction]
        logger.info("fraction %g: seeds %s", fraction, ", ".join(map(str, chosen)))
    grid = CellMaker(recipe, output_dir, keep_adapters, first, variants)
    cells: list[dict[str, Any]] = []
    total = len(plan) * (len(trained) + len(names) + stack + bool(members))
    with tqdm(total=total, desc="Curve", unit="cell", disable=not progress) as bar:
        for fraction, seed in plan:
            draw: list[dict[str, Any]] = []
            for system in (*trained, *names):
                bar.set_postfix_str(f"{system} f={fraction:g} seed={seed}")
                if system == FULL_FINETUNE:
                    draw.append(grid.full_finetune(fraction, seed))
                elif is_trained(system):
                    draw.append(grid.adapter(fraction, seed, system))
                else:
                    draw.append(grid.baseline(system, fraction, seed))
                bar.update()
            if members:
                draw.append(grid.ensemble([c for c in draw if c["system"] in ("adapter", *members)]))
                bar.update()
            cells += draw
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
    variants: Mapping[str, Iterable[str]] | None = None,
    ensemble: int = 1,
    output_dir: str | Path | None = None,
    keep_adapters: bool = False,
    progress: bool = True,
) -> CurveResult:
    """Check the settings before any work, then :func:`run_curve` (see the module docstring).

    ``variants`` maps a name to recipe overrides applied on top of ``overrides``, e.g.
    ``{"all_linear": ["method.target_modules=[query,key,value,dense]"]}``: each is trained on the same
    draws as the adapter and compared with it draw by draw. ``ensemble=3`` also trains the recipe twice
    more on each draw (training seeds seed + 1000 and seed + 2000: other LoRA initialisations, batch
    orders and dropout) and scores the average of the three adapters' probabilities (system
    ``ensemble``), compared with the single adapter draw by draw.
    """
    from adapters.api import _resolved

    fraction_list, seed_list = parse_fractions(fractions), parse_seeds(seeds)
    if draws_small < 1:
        raise AdaptersUserError(
            f"must be a positive number of draws, got {draws_small}", where="--draws-small"
        )
    if ensemble < 1:
        raise AdaptersUserError(f"must be a number of adapters >= 1, got {ensemble}", where="--ensemble")
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
    resolved_variants = {
        name: _variant(resolved, name, changes) for name, changes in (variants or {}).items()
    }
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
        resolved_variants,
        ensemble,
    )


def _variant(resolved: Any, name: str, changes: Iterable[str]) -> Any:
    """The recipe with a variant's overrides; refused if it would move the split or the draws."""
    import re

    from adapters.api import _resolved

    changes = list(changes)
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise AdaptersUserError(f"variant names are lower-case letters, digits and _: {name!r}", "--variant")
    if not changes:
        raise AdaptersUserError(
            f"variant {name!r} changes nothing: give section.key=value overrides", "--variant"
        )
    for change in changes:
        key = change.split("=", 1)[0].strip()
        if any(key == fixed or key.startswith(fixed + ".") for fixed in FIXED_BY_THE_CURVE):
            raise AdaptersUserError(
                f"variant {name!r} sets {key}, which the curve fixes (the same rows and draws for all)",
                where="--variant",
            )
    return _resolved(resolved, changes, {}, None)

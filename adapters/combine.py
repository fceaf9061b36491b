"""``adapters combine``: LoRA adapters of one base model made into one, scored on each source's data.

The LoRA matrices are combined by PEFT's ``add_weighted_adapter`` (``linear``, ``ties``, ``dare_ties``,
``cat``). It leaves out what ``modules_to_save`` holds (the task head, BERT's pooler when a recipe saves
it), and refuses outright when several sources each have a copy of one such module. So those copies are
taken out of PEFT's wrappers first, and the combined adapter's copy is their **weighted average with the
same weights, normalised to sum 1**: weights (1, 0) give source A's head, (0.5, 0.5) the mean of the two.
Rows of two heads are averaged row by row, so the label sets must be the same, in the same order.

The result is a complete artifact directory (``adapters.load`` and plain PEFT load it), assembled in a
staging directory, checked by a save → reload → predict parity run, evaluated on the test split of every
source (the recipe's split, or a labelled file per source), and only then moved into place.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from adapters.artifact import check_output_location, refuse_existing, staged_output, write_json
from adapters.errors import AdaptersUserError
from adapters.hub import quiet_loading
from adapters.multi import AdapterSource, check_compatible, named_directories, read_sources

__all__ = ["METHODS", "CombineResult", "combine"]

METHODS = ("linear", "ties", "dare_ties", "cat")
DENSITY_METHODS = ("ties", "dare_ties")  # those that trim (TIES) or randomly drop (DARE) entries
DEFAULT_DENSITY = 0.5
COMBINED = "default"  # PeftModel.save_pretrained puts any other adapter name in a subdirectory
HEAD_RULE = "weighted average of the sources' modules_to_save copies (weights normalised to sum 1)"


@dataclass
class CombineResult:
    """Where the combined artifact went, and its metrics beside each source's on every test split."""

    output_dir: Path
    evaluation: dict[str, dict[str, Any]]
    table: str


def _check_combinable(sources: Sequence[AdapterSource], method: str) -> None:
    """What ``add_weighted_adapter`` and an averaged head need beyond sharing one model."""
    first = sources[0]
    for source in sources:
        where, adapter = str(source.directory), source.adapter
        if adapter.get("peft_type") != "LORA":
            raise AdaptersUserError(
                f"adapter {source.name!r} is {adapter.get('peft_type')}; combining needs LoRA adapters "
                "(PEFT's add_weighted_adapter)",
                where=where,
            )
        for flag, what in (("use_dora", "DoRA magnitudes"), ("use_rslora", "rsLoRA scaling")):
            if adapter.get(flag):
                raise AdaptersUserError(
                    f"adapter {source.name!r} uses {flag}: add_weighted_adapter does not carry {what} over",
                    where=where,
                )
        if source.label_names != first.label_names:
            raise AdaptersUserError(
                f"adapter {source.name!r} has labels {source.label_names}, {first.name!r} "
                f"{first.label_names}; heads are averaged row by row, so the labels must be the same",
                where=where,
            )
        if set(adapter.get("modules_to_save") or []) != set(first.adapter.get("modules_to_save") or []):
            raise AdaptersUserError(
                f"adapter {source.name!r} saves modules {sorted(set(adapter.get('modules_to_save') or []))}, "
                f"{first.name!r} {sorted(set(first.adapter.get('modules_to_save') or []))}; their copies are "
                "averaged, so they must be the same",
                where=where,
            )
    if method != "cat":
        ranks = {
            source.name: max([source.adapter["r"], *source.adapter.get("rank_pattern", {}).values()])
            for source in sources
        }
        if len(set(ranks.values())) > 1:
            listed = ", ".join(f"r={rank} for {name}" for name, rank in ranks.items())
            raise AdaptersUserError(
                f"{method} needs adapters of one rank ({listed}); --method cat takes any ranks",
                where="--method",
            )


def _weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    weights = [float(weight) for weight in weights]
    if len(weights) != count:
        raise AdaptersUserError(f"{len(weights)} weights for {count} adapters", where="--weights")
    if not all(math.isfinite(weight) for weight in weights) or sum(weights) <= 0:
        raise AdaptersUserError(
            f"weights {weights} must be finite and sum to more than 0 (the head is their weighted average)",
            where="--weights",
        )
    return weights


def _density(method: str, density: float | None) -> float | None:
    if method not in DENSITY_METHODS:
        if density is not None:
            raise AdaptersUserError(f"--density applies to {' and '.join(DENSITY_METHODS)}, not {method}")
        return None
    density = DEFAULT_DENSITY if density is None else float(density)
    if not 0 < density <= 1:
        raise AdaptersUserError(f"density {density} must be in (0, 1]", where="--density")
    return density


def _refuse_dataframe_source(source: AdapterSource) -> None:
    if source.recipe.data.source == "<DataFrame>":
        raise AdaptersUserError(
            f"adapter {source.name!r} was trained from a DataFrame, so its test split is not on disk; "
            f"pass --data {source.name}=FILE (a labelled file)",
            where=str(source.directory),
        )


def _test_split(source: AdapterSource, scratch: Path) -> Path:
    """The raw rows of the source recipe's test split, as a labelled file each adapter renders itself."""
    from adapters.data import prepare_data, read_source

    _refuse_dataframe_source(source)
    data = source.recipe.data
    frame = pd.concat(read_source(data.source, data.format).values(), ignore_index=True)
    test_ids = prepare_data(data, task=source.recipe.task).frames["test"]["row_id"]
    if data.id_column:  # row ids as prepare_data makes them: the id column, a row_id column, or positions
        keys = frame[data.id_column].astype(str)
    elif "row_id" in frame.columns:
        keys = frame["row_id"].astype(str)
    else:
        keys = pd.Series([str(position) for position in range(len(frame))])
    positions = pd.Series(range(len(frame)), index=keys.to_numpy())
    path = scratch / f"{source.name}-test.parquet"
    frame.iloc[positions.loc[test_ids.to_numpy()].to_numpy()].to_parquet(path, index=False)
    return path


def _average_heads(model: Any, names: list[str], weights: list[float]) -> list[tuple[Any, dict[str, Any]]]:
    """Each modules_to_save wrapper with the weighted average of the sources' copies, which it then drops
    (add_weighted_adapter refuses wrappers that hold several of the adapters it combines)."""
    import torch
    from peft.utils.other import ModulesToSaveWrapper

    total = sum(weights)
    averaged = []
    for wrapper in model.modules():
        if not isinstance(wrapper, ModulesToSaveWrapper) or not set(names) & set(wrapper.modules_to_save):
            continue
        states = [wrapper.modules_to_save[name].state_dict() for name in names]
        with torch.no_grad():  # in float64, then back to the head's dtype
            mean = {
                key: sum(w / total * s[key].double() for w, s in zip(weights, states, strict=True))
                for key in states[0]
            }
            mean = {key: value.to(states[0][key].dtype) for key, value in mean.items()}
        averaged.append((wrapper, mean))
        for name in names:
            wrapper.delete_adapter(name, new_active_adapters=None)
    return averaged


def _write_combined(
    staging: Path,
    sources: Sequence[AdapterSource],
    method: str,
    weights: list[float],
    density: float | None,
    seed: int,
    parity_rows: pd.DataFrame,
) -> int:
    """Combine into ``staging`` (adapter, tokenizer, config.json, recipe.yaml); return the new rank."""
    import torch

    from adapters.artifact import check_parity
    from adapters.data import render_text
    from adapters.reload import load_adapter_model

    first = sources[0]
    model, tokenizer = load_adapter_model(first.directory, first.recipe.model, "cpu")
    names = [f"source_{index}" for index in range(len(sources))]
    with quiet_loading():
        for name, source in zip(names, sources, strict=True):
            model.load_adapter(str(source.directory), adapter_name=name, torch_device="cpu")
    model.set_adapter(names[0], inference_mode=True)
    model.delete_adapter("default")  # loaded again as source_0: the combination takes the name "default"
    heads = _average_heads(model, names, weights)
    try:
        with torch.random.fork_rng(devices=[]):  # DARE drops entries at random: seeded, reproducible
            torch.manual_seed(seed)
            model.add_weighted_adapter(names, weights, COMBINED, combination_type=method, density=density)
    except ValueError as exc:
        raise AdaptersUserError(f"PEFT cannot combine these adapters: {exc}", where="--method") from None
    for wrapper, state in heads:
        wrapper.modules_to_save[COMBINED].load_state_dict(state)
    model.set_adapter(COMBINED, inference_mode=True)
    for name in names:
        model.delete_adapter(name)
    model.eval()
    model.save_pretrained(
        staging, selected_adapters=[COMBINED], safe_serialization=True, save_embedding_layers=False
    )
    tokenizer.save_pretrained(staging)
    # Labels and decision settings of the first adapter; not its calibration, which was fitted to that
    # adapter's scores alone (the combined adapter's scores are uncalibrated).
    settings = json.loads((first.directory / "config.json").read_text(encoding="utf-8"))
    settings.pop("calibration", None)
    write_json(staging / "config.json", settings)
    data = first.recipe.data
    texts = render_text(parity_rows.head(8), data.template, data.text_columns, where="parity rows")
    check_parity(model, tokenizer, staging, texts, first.recipe.model, data.max_length)
    return int(model.peft_config[COMBINED].r)


def _format(metrics: dict[str, Any], name: str) -> str:
    value = metrics.get(name)
    return "n/a" if value is None or value != value else f"{value:.4f}"


def _table(evaluation: dict[str, dict[str, Any]], columns: list[str], metrics: list[str]) -> str:
    """Markdown: one row per source's test split, (primary metric, accuracy) per adapter."""
    header = ["test split of", *(f"{column} {metric}" for column in columns for metric in metrics)]
    lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    for split, scored in evaluation.items():
        by_column = {**scored["sources"], "combined": scored["combined"]}
        cells = [_format(by_column[column], metric) for column in columns for metric in metrics]
        lines.append(f"| {split} | {' | '.join(cells)} |")
    return "\n".join(lines)


def combine(
    adapters: Mapping[str, str | Path] | Sequence[str | Path],
    output_dir: str | Path,
    method: str = "linear",
    weights: Sequence[float] | None = None,
    density: float | None = None,
    data: Mapping[str, str | Path] | None = None,
    overwrite: bool = False,
    seed: int = 0,
) -> CombineResult:
    """Combine LoRA artifacts of one base model into a new artifact at ``output_dir``; evaluate it.

    ``adapters`` as for :class:`~adapters.multi.MultiAdapter` (paths or repo ids, a list or a dict of
    names); ``weights`` one per adapter (default equal); ``density`` for ties / dare_ties (default 0.5);
    ``data`` ``{name: labelled file}`` replaces a source's recipe test split (required for sources trained
    from a DataFrame). Every check runs before any model is loaded.
    """
    from adapters.api import evaluate
    from adapters.data import read_source

    if method not in METHODS:
        raise AdaptersUserError(f"unknown method {method!r}; choose {', '.join(METHODS)}", where="--method")
    named = named_directories(adapters)
    sources = read_sources(named)
    check_compatible(sources)
    _check_combinable(sources, method)
    weights, density = _weights(weights, len(sources)), _density(method, density)
    data = {str(name): Path(path) for name, path in (data or {}).items()}
    for name, path in data.items():
        if name not in named:
            raise AdaptersUserError(
                f"no adapter named {name!r}; adapters: {', '.join(named)}", where="--data"
            )
        if not path.is_file():
            raise AdaptersUserError("data file not found", where=str(path))
    for source in sources:
        if source.name not in data:
            _refuse_dataframe_source(source)
    output = Path(output_dir)
    refuse_existing(output, overwrite)
    check_output_location(output, None, [*(source.directory for source in sources), *data.values()])
    first = sources[0]
    with staged_output(output, overwrite) as staging:
        with tempfile.TemporaryDirectory(prefix="adapters-combine-") as scratch:
            splits = {s.name: data.get(s.name) or _test_split(s, Path(scratch)) for s in sources}
            parity_rows = pd.concat(read_source(str(splits[first.name])).values(), ignore_index=True)
            rank = _write_combined(staging, sources, method, weights, density, seed, parity_rows)
            note = ", ".join(f"{s.name} x{w:g}" for s, w in zip(sources, weights, strict=True))
            recipe_text = (first.directory / "recipe.yaml").read_text(encoding="utf-8")
            (staging / "recipe.yaml").write_text(
                f"# Combined adapter (adapters combine): {method} of {note}; see combine.json.\n"
                f"# Below: {first.name}'s recipe, which renders rows and names labels and metrics.\n"
                + recipe_text,
                encoding="utf-8",
            )
            evaluation = {
                split: {
                    "data": str(data[split]) if split in data else "recipe test split",
                    "sources": {s.name: evaluate(s.directory, file) for s in sources},
                    "combined": evaluate(staging, file),
                }
                for split, file in splits.items()
            }
        metrics = [first.recipe.eval.primary_metric]
        if "accuracy" in evaluation[first.name]["combined"] and "accuracy" not in metrics:
            metrics.append("accuracy")
        table = _table(evaluation, [*(s.name for s in sources), "combined"], metrics)
        density_note = f", density {density:g}" if density is not None else ""
        summary = (
            f"# Combined adapter: {output.name}\n\n"
            f"`{method}` of {note}{density_note} with PEFT's add_weighted_adapter (rank {rank}). "
            f"Task head and other modules_to_save: {HEAD_RULE}. Labels, threshold and rendering: "
            f"{first.name}'s.\n\n{table}\n"
        )
        record = {
            "sources": [
                {"name": s.name, "adapter": str(named[s.name]), "directory": str(s.directory), "weight": w}
                for s, w in zip(sources, weights, strict=True)
            ],
            "method": method,
            "weights": weights,
            "density": density,
            "seed": seed,
            "rank": rank,
            "head": HEAD_RULE,
            "settings_from": first.name,
            "evaluation": evaluation,
        }
        write_json(staging / "combine.json", record)
        (staging / "combine.md").write_text(summary, encoding="utf-8")
        (staging / "README.md").write_text(summary, encoding="utf-8")  # PEFT's generic card, replaced
    return CombineResult(output, evaluation, table)

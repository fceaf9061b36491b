"""Recipe files: where named recipes live, dotted overrides, and loading a recipe into its schema.

Split from :mod:`adapters.recipe.schema` so the schema (what a recipe may say) reads apart from how a
recipe is found and assembled (built-in names, paths beside the recipe, ``section.key=value`` overrides).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from adapters.errors import AdaptersUserError
from adapters.recipe.schema import Recipe

__all__ = ["load_recipe", "list_recipes", "recipe_dirs", "parse_overrides"]


def recipe_dirs() -> list[Path]:
    """Where named recipes live: inside an installed wheel, or ``recipes/`` of a source checkout."""
    package_dir = Path(__file__).resolve().parents[1]
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

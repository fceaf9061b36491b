"""Lineage: where an adapter's knowledge came from, written as ``lineage.json`` beside it.

A documented transfer chain is what lets a model-risk reviewer trust an adapter: which base model (the
Hub commit, or the sha256 of local weights), which data (sha256 of the files and of the rows as the model
saw them), which recipe and software, on what hardware, and, for ``model.init_adapter``, the whole lineage
of the adapter it started from (``parents``), so chains of any length are recorded and can be printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["LINEAGE_FILE", "build_lineage", "read_lineage", "format_lineage", "sha256_file", "frame_sha256"]

LINEAGE_FILE = "lineage.json"
SCHEMA = "peft-recipes/lineage/1"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_SOFTWARE = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "datasets",
    "evaluate",
    "bitsandbytes",
    "codecarbon",
)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _files_sha256(folder: Path, suffixes: tuple[str, ...] | None = None) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".") and (suffixes is None or path.suffix in suffixes)
    }


def frame_sha256(frames: dict[str, Any]) -> str:
    """sha256 of the rows as the model saw them: split, row id, rendered text and label, in order."""
    digest = hashlib.sha256()
    for name in sorted(frames):
        frame = frames[name]
        digest.update(name.encode())
        for columns in zip(frame["row_id"], frame["text"], frame["label"], strict=True):
            digest.update(json.dumps([str(value) for value in columns]).encode())
    return digest.hexdigest()


def _data_files(source: str) -> dict[str, str]:
    """sha256 of the data files: a file, a directory's files, or a built-in set's shipped files."""
    path = Path(source)
    if path.is_file():
        return {path.name: sha256_file(path)}
    if path.is_dir():
        return _files_sha256(path)
    from importlib import resources

    shipped = Path(str(resources.files("adapters.data") / "_builtin_data" / source))
    return _files_sha256(shipped) if shipped.is_dir() else {}


def _base_model(provenance: dict[str, Any], commit: str | None) -> dict[str, Any]:
    load_path = Path(provenance.get("load_path", ""))
    entry = {
        "id": provenance.get("hub_id") or provenance.get("local_path"),
        "revision": provenance.get("revision"),
        "commit": commit,
        "embedded_in": provenance.get("embedded_in"),
        "license": provenance.get("license"),
        "quantization": provenance.get("quantization"),
    }
    if load_path.is_dir():  # no Hub commit to cite: the weights themselves identify the model
        entry["weights_sha256"] = _files_sha256(load_path, _WEIGHT_SUFFIXES)
    return entry


def _git(start: Path) -> dict[str, Any] | None:
    """The commit (and whether the tree had uncommitted changes) of the git repository around ``start``."""
    try:

        def run(*args: str) -> str:
            done = subprocess.run(
                ["git", "-C", str(start), *args], capture_output=True, text=True, timeout=10, check=True
            )
            return done.stdout.strip()

        return {"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return None


def _software() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("peft-recipes", *_SOFTWARE):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _hardware(cost: dict[str, Any]) -> dict[str, Any]:
    import torch

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    hardware = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_bytes": memory,
        "device": cost.get("device"),
        "num_processes": cost.get("num_processes"),
        "mixed_precision": cost.get("mixed_precision"),
    }
    if torch.cuda.is_available():
        hardware["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return hardware


def read_lineage(directory: str | Path) -> dict[str, Any] | None:
    path = Path(directory) / LINEAGE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _parent(directory: Path, name: str) -> dict[str, Any]:
    """The starting adapter's lineage, or what its adapter config says when it has none."""
    found = read_lineage(directory)
    if found is not None:
        return found
    config = json.loads((directory / "adapter_config.json").read_text(encoding="utf-8"))
    return {
        "schema": SCHEMA,
        "adapter": {"name": name, "method": str(config.get("peft_type", "?")).lower()},
        "base_model": {"id": config.get("base_model_name_or_path"), "revision": config.get("revision")},
        "note": "no lineage.json: trained elsewhere; only its adapter config is known",
        "parents": [],
    }


def build_lineage(
    recipe: Any,
    data: Any,
    outcome: Any,
    wall_seconds: float,
    recipe_path: Path | None = None,
    data_frame_given: bool = False,
) -> dict[str, Any]:
    """Everything ``lineage.json`` records for one run (see the module docstring)."""
    provenance = outcome.built.provenance
    base_config = outcome.built.model.get_base_model().config
    parents = []
    init = provenance.get("init_adapter")
    if init is not None:
        parents.append(_parent(Path(init["directory"]), init["name"]))
    package_root = Path(__file__).resolve().parent.parent
    return {
        "schema": SCHEMA,
        "adapter": {
            "name": recipe.name,
            "method": recipe.method.type,
            "task": recipe.task,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "base_model": _base_model(provenance, getattr(base_config, "_commit_hash", None)),
        "data": {
            "source": "<DataFrame>" if data_frame_given else recipe.data.source,
            "files_sha256": {} if data_frame_given else _data_files(recipe.data.source),
            "rows_sha256": frame_sha256(data.frames),
            "rows": data.info.get("rows"),
            "train_rows_before_fraction": data.info.get("train_rows_before_fraction"),
            "split_seed": recipe.data.split_seed,
            "train_fraction": recipe.data.train_fraction,
        },
        "recipe": recipe.to_dict(),
        "software": _software(),
        "git": _git(recipe_path.parent if recipe_path is not None else Path.cwd()),
        "adapters_git": _git(package_root) if (package_root / ".git").exists() else None,
        "hardware": _hardware(outcome.cost),
        "wall_seconds": round(wall_seconds, 2),
        "train_seconds": round(outcome.seconds, 2),
        "energy": outcome.cost.get("energy"),
        "privacy": getattr(outcome, "privacy", None),  # DP-SGD: epsilon spent, delta, noise (or None)
        "init_adapter": init,
        "parents": parents,
    }


def _line(entry: dict[str, Any]) -> str:
    adapter, base, data = entry.get("adapter", {}), entry.get("base_model", {}), entry.get("data") or {}
    parts = [f"{adapter.get('name', '?')}: {adapter.get('method', '?')} on {base.get('id', '?')}"]
    if base.get("commit"):
        parts.append(f"@{str(base['commit'])[:10]}")
    if data:
        rows = data.get("rows") or {}
        sizes = "/".join(str(rows.get(split, "?")) for split in ("train", "validation", "test"))
        parts.append(f"data {data.get('source')} (rows {sizes}, sha256 {str(data.get('rows_sha256'))[:12]})")
    if adapter.get("created"):
        parts.append(adapter["created"])
    if entry.get("note"):
        parts.append(f"[{entry['note']}]")
    return "  ".join(parts)


def format_lineage(lineage: dict[str, Any]) -> str:
    """The chain as a tree: this adapter first, each parent under the adapter that started from it."""
    lines = [_line(lineage)]

    def walk(parents: list[dict[str, Any]], indent: str) -> None:
        for index, parent in enumerate(parents):
            last = index == len(parents) - 1
            lines.append(f"{indent}{'└── ' if last else '├── '}started from {_line(parent)}")
            walk(parent.get("parents") or [], indent + ("    " if last else "│   "))

    walk(lineage.get("parents") or [], "")
    return "\n".join(lines)

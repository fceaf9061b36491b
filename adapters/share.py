"""Sharing an artifact on the Hugging Face Hub: ``adapters push DIR REPO_ID``.

One function (:func:`files_to_upload`) decides what leaves the machine; the dry run copies exactly those
files into a preview folder, and the real push uploads a staged copy of exactly those files, so what the
dry run shows is what the Hub receives. Left out by default:

* ``predictions.csv``: the test rows' ids and true labels, i.e. the user's (often a bank's) data;
* ``logs/``: TensorBoard event files, which also hold the recipe's hyper-parameters and local paths;
* hidden files and folders, and linked folders (which may point anywhere on the disk). Linked files
  are uploaded with their content: a snapshot in the Hub cache is made of them.

The token comes from ``huggingface_hub`` (``HF_TOKEN`` or ``hf auth login``) and goes only into the
``Authorization`` header of its requests: nothing here prints, logs or writes it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from adapters.errors import AdaptersUserError
from adapters.hub import HUB_UNREACHABLE, hub_unreachable, root_cause

__all__ = ["PushResult", "REQUIRED_FILES", "files_to_upload", "push", "preview_path"]

REQUIRED_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md", "recipe.yaml")

# Top-level names kept off the Hub unless asked for, with the reason shown in the listing.
PREDICTIONS = "predictions.csv"
_PRIVATE = {
    PREDICTIONS: "test-row ids and true labels of your data; --include-predictions uploads it",
    "logs": "TensorBoard event files",
}

NO_TOKEN = "no Hugging Face token: run `hf auth login` or set HF_TOKEN (a token with write access)"


@dataclass
class PushResult:
    """What was (or, for a dry run, would be) uploaded, and where it went."""

    files: list[tuple[str, int]]  # repo path (POSIX) and size in bytes, sorted by path
    left_out: dict[str, str] = field(default_factory=dict)  # path → why it stays local
    preview_dir: Path | None = None  # the dry run's folder
    commit_url: str | None = None  # the real push's commit
    notes: list[str] = field(default_factory=list)  # things whoever downloads it should know

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def check_artifact(directory: str | Path) -> Path:
    """The directory, if it is a complete artifact (adapter, weights, model card, recipe)."""
    path = Path(directory)
    if not path.is_dir():
        raise AdaptersUserError("no such adapter directory", where=str(directory))
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise AdaptersUserError(
            f"not an adapter directory (missing {', '.join(missing)}); push a folder `adapters train` wrote",
            where=str(directory),
        )
    return path


def files_to_upload(
    directory: str | Path, include_predictions: bool = False
) -> tuple[list[Path], dict[str, str]]:
    """The files of ``directory`` that go to the Hub (relative paths, sorted) and what stays, with why.

    Everything is uploaded except what is listed in the module docstring: an allow-list would silently
    drop files a newer version of the artifact needs, while the exclusions are the files known to
    carry the user's data or local state.
    """
    root = check_artifact(directory)
    private = dict(_PRIVATE)
    if include_predictions:
        del private[PREDICTIONS]
    chosen: list[Path] = []
    left_out: dict[str, str] = {}
    for current, folders, names in os.walk(root):  # does not descend into linked folders
        base = Path(current).relative_to(root)
        for name in sorted(folders):
            relative = base / name
            if name.startswith("."):
                left_out[f"{relative.as_posix()}/"] = "hidden"
                folders.remove(name)
            elif base == Path() and name in private:
                left_out[f"{name}/"] = private[name]
                folders.remove(name)
            elif (root / relative).is_symlink():
                left_out[f"{relative.as_posix()}/"] = "linked folder"
        for name in names:
            relative = base / name
            if name.startswith("."):
                left_out[relative.as_posix()] = "hidden"
            elif base == Path() and name in private:
                left_out[name] = private[name]
            elif not (root / relative).is_file():  # a broken link, a socket, ...
                left_out[relative.as_posix()] = "not a file"
            else:
                chosen.append(relative)
    return sorted(chosen, key=lambda path: path.as_posix()), dict(sorted(left_out.items()))


def preview_path(directory: str | Path) -> Path:
    """The default dry-run folder: ``<DIR>.push-preview`` beside the artifact."""
    directory = Path(directory)
    return directory.parent / f"{directory.name}.push-preview"


def _copy_files(root: Path, files: list[Path], target: Path, link: bool) -> None:
    """Copy ``files`` from ``root`` into ``target``; hard links (when ``link``) spare the disk a copy."""
    for relative in files:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if link:
            try:
                os.link(root / relative, destination)
                continue
            except OSError:  # another file system, or one without hard links
                pass
        shutil.copy2(root / relative, destination)


def _write_preview(root: Path, files: list[Path], target: Path) -> None:
    """Write the preview folder atomically: a hidden sibling first, renamed into place when complete."""
    root_resolved, target_resolved = root.resolve(), target.resolve()
    if target_resolved == root_resolved or root_resolved in target_resolved.parents:
        raise AdaptersUserError("the dry-run folder must be outside the adapter directory", where=str(target))
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AdaptersUserError(
            "dry-run folder exists and is not empty; remove it or pass another --dry-run-dir",
            where=str(target),
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial"))
    try:
        _copy_files(root, files, staging, link=False)  # editing the preview must not edit the artifact
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _notes(root: Path) -> list[str]:
    """Warnings for whoever downloads the adapter: a base model that only exists on this machine."""
    import json

    try:
        config = json.loads((root / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    base = str(config.get("base_model_name_or_path") or "")
    if base and (base.startswith(("/", "~", ".")) or Path(base).is_dir()):
        return [f"the base model is a local path ({base}): whoever downloads this adapter needs it there too"]
    return []


def _hub_error(exc: BaseException, repo_id: str) -> AdaptersUserError | None:
    """The one-line error for a failed Hub call, or None if it is not a Hub problem (a bug)."""
    from huggingface_hub.errors import HfHubHTTPError

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, HfHubHTTPError) and status in (401, 403):
        return AdaptersUserError(
            f"the Hub refused the token (HTTP {status}): it is invalid or cannot write to this namespace; "
            "run `hf auth login` with a write token or set HF_TOKEN",
            where=repo_id,
        )
    unreachable = hub_unreachable(exc)
    try:
        import httpx2  # huggingface_hub >= 2: DNS and TLS failures are not ConnectionErrors

        unreachable = unreachable or isinstance(exc, httpx2.TransportError)
    except ImportError:
        pass
    if unreachable:
        return AdaptersUserError(HUB_UNREACHABLE, where=repo_id)
    if isinstance(exc, ValueError) and "README.md" in str(exc):  # the Hub's check of the card's metadata
        return AdaptersUserError(f"the Hub rejected the model card ({root_cause(exc)})", where=repo_id)
    if isinstance(exc, HfHubHTTPError):
        message = f"the Hub refused the upload (HTTP {status}: {root_cause(exc)})"
        return AdaptersUserError(message, where=repo_id)
    return None


def push(
    directory: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    dry_run: bool = False,
    dry_run_dir: str | Path | None = None,
    include_predictions: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
) -> PushResult:
    """Upload an artifact directory to the Hub model repo ``repo_id`` (created if missing).

    ``dry_run`` writes the files that would be uploaded to ``dry_run_dir`` (default
    ``<DIR>.push-preview``) and touches no network. ``token`` defaults to the logged-in one; ``endpoint``
    to ``HF_ENDPOINT`` / huggingface.co. ``private`` applies when the repo is created, not to an existing one.
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise AdaptersUserError(f"not a Hub repo id ({root_cause(exc)})", where=repo_id) from None
    root = check_artifact(directory)
    files, left_out = files_to_upload(root, include_predictions)
    result = PushResult(
        files=[(path.as_posix(), (root / path).stat().st_size) for path in files],
        left_out=left_out,
        notes=_notes(root),
    )
    if dry_run:
        result.preview_dir = Path(dry_run_dir) if dry_run_dir is not None else preview_path(root)
        _write_preview(root, files, result.preview_dir)
        return result

    from huggingface_hub import HfApi, get_token

    token = token or get_token()
    if not token:
        raise AdaptersUserError(NO_TOKEN, where=repo_id)
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="adapters-push-") as staged:
        _copy_files(root, files, Path(staged), link=True)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=staged,
                repo_type="model",
                commit_message=f"Upload adapter {root.name} with peft-recipes",
            )
        except Exception as exc:
            error = _hub_error(exc, repo_id)
            if error is None:
                raise
            raise error from None
    result.commit_url = str(commit.commit_url)
    return result

"""Where the Hugging Face libraries meet the user: Hub names vs local paths, offline failures, chatter.

``datasets`` and ``transformers`` report an unreachable Hub in several shapes (``OSError`` wrapping
``LocalEntryNotFoundError``, ``ConnectionError`` wrapping ``OfflineModeIsEnabled``, ...); one check here
turns all of them into the same one-line message. They also write progress bars, load reports and
warnings to stderr while reading a CSV or loading a model, which would bury that one line, so loading
runs inside :func:`quiet_loading`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adapters.errors import AdaptersUserError

__all__ = [
    "HUB_UNREACHABLE",
    "looks_like_hub_id",
    "hub_unreachable",
    "root_cause",
    "quiet_loading",
    "artifact_dir",
]

HUB_UNREACHABLE = "cannot reach the Hugging Face Hub: pass a local path or connect"


def looks_like_hub_id(name: str) -> bool:
    """``org/name`` or ``name``: no more than one slash, not absolute, not relative, not ``~``."""
    return (
        bool(name.strip())
        and name.count("/") <= 1
        and "\\" not in name
        and not name.startswith((".", "/", "~"))
        and not Path(name).exists()
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def hub_unreachable(exc: BaseException) -> bool:
    """True if ``exc`` (or what caused it) says the Hub could not be reached or offline mode is on."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    network: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, LocalEntryNotFoundError)
    try:
        import requests

        network += (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
    except ImportError:  # huggingface_hub >= 1 talks httpx; requests is optional
        pass
    return any(isinstance(link, network) for link in _chain(exc))


def root_cause(exc: BaseException, skip: tuple[type[BaseException], ...] = ()) -> str:
    """One line from the first exception in the chain that is not a generic wrapper in ``skip``.

    Multi-line library messages put the gist first and the reason last ("Couldn't cast ... because
    column names don't match"), so those two lines are kept.
    """
    for link in _chain(exc):
        if isinstance(link, skip):
            continue
        lines = [line.strip() for line in str(link).splitlines() if line.strip()]
        if not lines:
            return type(link).__name__
        return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    return type(exc).__name__


@contextmanager
def quiet_loading() -> Iterator[None]:
    """No progress bars, load reports or warnings from datasets/transformers while reading and loading.

    Hub download bars are left as they were: a long download should still show progress.
    """
    import datasets
    import huggingface_hub.utils as hub_utils
    from transformers.utils import logging as transformers_logging

    loggers = [logging.getLogger(name) for name in ("datasets", "transformers")]
    levels = [logger.level for logger in loggers]
    datasets_bars_on = not datasets.utils.are_progress_bars_disabled()
    transformers_bars_on = transformers_logging.is_progress_bar_enabled()
    hub_bars_on = not hub_utils.are_progress_bars_disabled()
    with warnings.catch_warnings():  # the toggles warn when an environment variable overrides them
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)  # their failures reach the user as our one-line errors
        datasets.utils.disable_progress_bars()
        transformers_logging.disable_progress_bar()  # this one switches the Hub's bars off too
        if hub_bars_on:
            hub_utils.enable_progress_bars()
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
            if datasets_bars_on:
                datasets.utils.enable_progress_bars()
            if transformers_bars_on:
                transformers_logging.enable_progress_bar()
            if not hub_bars_on:
                hub_utils.disable_progress_bars()


def artifact_dir(name_or_path: str | Path, revision: str | None = None) -> Path:
    """A local artifact directory for a path or a Hub repo id (downloaded, or read from the cache).

    ``huggingface_hub`` honours ``HF_HUB_OFFLINE`` and ``HF_HOME``: offline, a repo id resolves from the
    local cache only, and a repo that is not cached gives the usual one-line "cannot reach" error.
    """
    path = Path(name_or_path)
    if path.exists():
        return path
    name = str(name_or_path)
    if not looks_like_hub_id(name):
        raise AdaptersUserError("no such adapter directory", where=name)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        return Path(snapshot_download(repo_id=name, revision=revision))
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise AdaptersUserError(f"no such adapter on the Hub ({root_cause(exc)})", where=name) from None
    except Exception as exc:
        if hub_unreachable(exc):
            raise AdaptersUserError(HUB_UNREACHABLE, where=name) from None
        raise

"""The helpers behind one-line errors: Hub vs local names, unreachable-Hub detection, quiet loading."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from adapters.errors import AdaptersUserError
from adapters.hub import hub_unreachable, looks_like_hub_id, quiet_loading, root_cause


@pytest.mark.parametrize(
    ("name", "hub"),
    [
        ("bert-base-uncased", True),
        ("org/model", True),
        ("/abs/path/model", False),
        ("./model", False),
        ("../model", False),
        ("~/model", False),
        ("a/b/c", False),
        ("", False),
    ],
)
def test_looks_like_hub_id(name: str, hub: bool) -> None:
    assert looks_like_hub_id(name) is hub


def test_an_existing_path_is_not_a_hub_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    assert not looks_like_hub_id("model")


def _raised(outer: type[BaseException], inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as cause:
            raise outer("We couldn't connect to 'https://huggingface.co'\nmore text") from cause
    except BaseException as exc:
        return exc


def test_hub_unreachable_looks_through_the_chain() -> None:
    from huggingface_hub.errors import LocalEntryNotFoundError

    assert hub_unreachable(_raised(OSError, LocalEntryNotFoundError("outgoing traffic has been disabled")))
    assert hub_unreachable(_raised(OSError, ConnectionError("no route")))
    assert hub_unreachable(TimeoutError())
    assert not hub_unreachable(_raised(OSError, ValueError("Repo id must be in the form")))


def test_root_cause_skips_wrappers_and_keeps_one_line() -> None:
    class Wrapper(Exception):
        pass

    exc = _raised(Wrapper, ValueError("Couldn't cast\nschema\nbecause column names don't match"))
    assert root_cause(exc, skip=(Wrapper,)) == "Couldn't cast ... because column names don't match"
    assert root_cause(ValueError("")) == "ValueError"


def test_quiet_loading_restores_what_it_changed() -> None:
    import datasets
    from transformers.utils import logging as transformers_logging

    logger = logging.getLogger("transformers")
    level, bars = logger.level, datasets.utils.are_progress_bars_disabled()
    with quiet_loading():
        assert logger.level == logging.CRITICAL
        assert datasets.utils.are_progress_bars_disabled()
        assert not transformers_logging.is_progress_bar_enabled()
    assert logger.level == level and datasets.utils.are_progress_bars_disabled() == bars


def test_user_errors_stay_one_line() -> None:
    error = AdaptersUserError("column 'a\nb' not found", where="data.csv\r, row 2")
    assert len(str(error).splitlines()) == 1
    assert str(error) == "data.csv\\r, row 2: column 'a\\nb' not found"

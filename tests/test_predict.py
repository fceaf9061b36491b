"""`adapters predict` streams a file in batches: scores as in memory, one-line errors, no partial output."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import adapters
from adapters.cli import main
from tests.conftest import make_frame, tiny_recipe


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    output = tmp_path_factory.mktemp("predict") / "tiny"
    return adapters.train(
        tiny_recipe(tiny_model_dir), data=make_frame(80), output_dir=output, progress=False
    ).output_dir


def _predict(artifact: Path, source: Path, output: Path, batch_rows: int) -> int:
    arguments = ["predict", str(artifact), "--input", str(source), "--output", str(output)]
    return main([*arguments, "--batch-rows", str(batch_rows), "--no-progress"])


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_streamed_equals_in_memory(
    artifact: Path, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture
) -> None:
    frame = make_frame(53, seed=7)
    frame.loc[3, "note"] = "salary\nsavings, house"  # a quoted field with a newline and a comma
    source = tmp_path / f"rows{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False, lineterminator="\r\n")
    else:
        frame.to_json(source, orient="records", lines=True)
    output = tmp_path / "scored.csv"
    assert _predict(artifact, source, output, 7) == 0
    printed = capsys.readouterr().out
    assert "wrote 53 rows" in printed and "rows/s)" in printed
    streamed = pd.read_csv(output)
    expected = adapters.predict(artifact, frame)
    assert list(streamed["applicant"]) == list(frame["applicant"])
    assert streamed["prob_bad"].to_numpy() == pytest.approx(expected["prob_bad"].to_numpy(), abs=1e-6)
    assert list(streamed["prediction"]) == list(expected["prediction"])


def test_a_bad_line_midway_leaves_no_output(
    artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    lines = make_frame(40).to_csv(index=False).splitlines()
    lines[30] = lines[30] + ",extra,fields"
    source = tmp_path / "broken.csv"
    source.write_text("\n".join(lines) + "\n")
    output = tmp_path / "scored.csv"
    assert _predict(artifact, source, output, 8) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and str(source) in error and len(error.splitlines()) == 1
    assert not output.exists() and not list(tmp_path.glob(".scored.csv*"))


def test_batch_rows_must_be_positive(artifact: Path, tmp_path: Path) -> None:
    assert (
        main(
            [
                "predict",
                str(artifact),
                "--input",
                "x.csv",
                "--output",
                str(tmp_path / "o.csv"),
                "--batch-rows",
                "0",
            ]
        )
        == 2
    )


def test_the_classifier_predicts_with_the_first_token_layer(artifact: Path, monkeypatch) -> None:
    """``Classifier.logits`` runs the last layer for the first token only (its forward sees each row once,
    with one query position) and gives the probabilities of the full layer; the model is whole afterwards."""
    import adapters.first_token as first_token

    classifier = adapters.load(artifact)
    texts = ["a short text", "a somewhat longer text with more words in it", "mid length text here"]
    rows_seen = []
    original = first_token._first_token_forward

    def counted(layer, hidden_states, *args, **kwargs):
        rows_seen.append(hidden_states.shape[0])
        return original(layer, hidden_states, *args, **kwargs)

    monkeypatch.setattr(first_token, "_first_token_forward", counted)
    swapped = classifier.predict_proba(texts)
    layer = first_token.last_layer_if_first_token_read(classifier.model)
    assert sum(rows_seen) == len(texts) and "forward" not in vars(layer)
    monkeypatch.setattr(first_token, "last_layer_if_first_token_read", lambda model: None)
    full = classifier.predict_proba(texts)
    assert sum(rows_seen) == len(texts) and abs(swapped - full).max() < 1e-5

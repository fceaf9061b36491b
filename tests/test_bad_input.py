"""Bad input, as a table: every case exits 2 with one line naming the file and row/column or recipe key.

Each case builds its files under ``tmp_path`` (a recipe for the tiny model, a data file in ``data/``),
runs ``adapters train`` in-process and checks the contract of a user error: exit code 2, exactly one
``error: ...`` line on stderr naming what is at fault, no traceback, and the directory tree (inputs and
the place the output would go) byte-for-byte as it was. Two cases also go through a real subprocess;
random recipes and random CSV bytes are in ``test_bad_input_properties.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from adapters.cli import main
from adapters.errors import AdaptersUserError
from tests.conftest import make_frame, tiny_recipe

HUB = "cannot reach the Hugging Face Hub: pass a local path or connect"

FileSpec = bytes | str | pd.DataFrame | Callable[[pd.DataFrame], pd.DataFrame]


# ---------------------------------------------------------------------------------------------- set-up
@dataclass
class Env:
    """One case's world: ``tmp`` holds ``recipe.yaml``, ``data/`` and (if it goes wrong) ``out``."""

    tmp: Path
    model: Path
    no_head_model: Path
    headed_model: Path

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def fields(self) -> dict[str, str]:
        return {
            "tmp": str(self.tmp),
            "data": str(self.data),
            "out": str(self.out),
            "model": str(self.model),
            "no_head_model": str(self.no_head_model),
            "headed_model": str(self.headed_model),
        }

    def format(self, value: Any) -> Any:
        """Fill ``{tmp}``, ``{data}``, ``{out}``, ``{model}``... into strings, recursively."""
        if isinstance(value, str):
            for key, path in self.fields().items():  # not str.format: templates have braces too
                value = value.replace("{" + key + "}", path)
            return value
        if isinstance(value, dict):
            return {key: self.format(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.format(item) for item in value]
        return value


def write_file(path: Path, spec: FileSpec) -> None:
    """bytes/str as is; a frame (or a function of the toy frame) as csv, jsonl or parquet by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if callable(spec) and not isinstance(spec, pd.DataFrame):
        spec = spec(make_frame(80))
    if isinstance(spec, bytes):
        path.write_bytes(spec)
    elif isinstance(spec, str):
        path.write_text(spec, encoding="utf-8")
    elif path.suffix == ".jsonl":
        spec.to_json(path, orient="records", lines=True)
    elif path.suffix == ".parquet":
        spec.to_parquet(path)
    else:
        spec.to_csv(path, index=False)


def snapshot(root: Path) -> dict[str, str | None]:
    """Every path under ``root`` with its sha256 (None for directories)."""
    tree: dict[str, str | None] = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        tree[relative] = None if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return tree


@dataclass
class Case:
    """A bad input: files to write, recipe sections (merged into the tiny recipe), extra CLI args."""

    expect: tuple[str | tuple[str, ...], ...]
    files: dict[str, FileSpec] | None = None
    source: str = "{data}/loans.csv"
    sections: dict[str, Any] | None = None
    recipe_text: str | None = None
    args: tuple[str, ...] = ()
    recipe_arg: str = "{tmp}/recipe.yaml"


def setup_case(case: Case, env: Env) -> list[str]:
    """Write the case's files and recipe; return the CLI arguments."""
    files = {"loans.csv": make_frame(80)} if case.files is None else case.files
    for name, spec in files.items():
        write_file(env.data / name, spec)
    recipe_path = env.tmp / "recipe.yaml"
    if case.recipe_text is not None:
        recipe_path.write_text(env.format(case.recipe_text), encoding="utf-8")
    else:
        sections = env.format(case.sections or {})
        recipe = tiny_recipe(
            env.model,
            data={"source": env.format(case.source)},
            training={"max_steps": 2, "eval_every": 1, "output_dir": str(env.out)},
        )
        for section, values in sections.items():
            if isinstance(values, dict) and isinstance(recipe.get(section), dict):
                recipe[section] = {**recipe[section], **values}
            else:
                recipe[section] = values
        recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return ["train", env.format(case.recipe_arg), *env.format(list(case.args)), "--no-progress"]


@pytest.fixture(scope="session")
def no_head_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A tiny ViT: a model type with no sequence-classification class, with a text tokenizer beside it."""
    from transformers import ViTConfig, ViTModel

    directory = tmp_path_factory.mktemp("tiny-vit")
    config = ViTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, image_size=32
    )
    ViTModel(config).save_pretrained(directory)
    for path in tiny_model_dir.iterdir():
        if "token" in path.name or path.name == "vocab.txt":
            shutil.copy(path, directory / path.name)
    return directory


@pytest.fixture(scope="session")
def headed_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The tiny BERT already fine-tuned for classification: its head is in the checkpoint."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    directory = tmp_path_factory.mktemp("tiny-bert-headed")
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2).save_pretrained(
        directory
    )
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(directory)
    return directory


@pytest.fixture
def env(tmp_path: Path, tiny_model_dir: Path, no_head_model_dir: Path, headed_model_dir: Path) -> Env:
    return Env(tmp_path, tiny_model_dir, no_head_model_dir, headed_model_dir)


# ----------------------------------------------------------------------------------------- data helpers
def cell(row: int, column: str, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The toy frame with one cell changed (``row`` is 0-based; messages count rows from 1)."""

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({column: object})
        frame.loc[row, column] = value
        return frame

    return change


def with_splits(validation_extra: str | None = None, test_extra: str | None = None) -> pd.DataFrame:
    """The toy frame with a ``split`` column; an extra label can be put into one validation/test row."""
    frame = make_frame(80)
    frame["split"] = ["train"] * 48 + ["validation"] * 16 + ["test"] * 16
    if validation_extra is not None:
        frame.loc[50, "outcome"] = validation_extra
    if test_extra is not None:
        frame.loc[70, "outcome"] = test_extra
    return frame


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")


def latin1_row() -> bytes:
    """A CSV whose 41st row (line 42) holds a Latin-1 byte, as an old export would."""
    lines = csv_bytes(make_frame(80)).split(b"\n")
    lines[41] = lines[41].replace(b"A040", b"A040 caf\xe9", 1)
    return b"\n".join(lines)


def malformed_jsonl() -> bytes:
    lines = [json.dumps(record) for record in make_frame(20).to_dict("records")]
    lines[6] = lines[6][:-5]  # line 7 cut short
    return ("\n".join(lines) + "\n").encode()


def duplicate_ids(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[11, "applicant"] = frame.loc[5, "applicant"]  # rows 6 and 12 share A005
    return frame


def one_class(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(outcome="good")


def null_label_jsonl() -> str:
    records = make_frame(40).to_dict("records")
    records[6]["outcome"] = None
    return "".join(json.dumps(record) + "\n" for record in records)


NO_LABEL_NAMES = {"label_names": None, "positive_label": None}

# ---------------------------------------------------------------------------------------------- the table
ERROR_CASES = [
    # recipe
    pytest.param(Case(("nope.yaml", "no such recipe"), recipe_arg="{tmp}/nope.yaml"), id="recipe-missing"),
    pytest.param(
        Case(
            ("recipe.yaml:4", "invalid YAML", "mapping values"),
            recipe_text="name: x\ntraining:\n  epochs: 1\n   max_steps: 2\neval: {}\n",
        ),
        id="recipe-yaml-syntax",
    ),
    pytest.param(Case(("recipe.yaml", "mapping"), recipe_text="- model\n- data\n"), id="recipe-not-mapping"),
    pytest.param(Case(("recipe.yaml", "'trainer'"), sections={"trainer": {"epochs": 1}}), id="unknown-key"),
    pytest.param(
        Case(("recipe.yaml", "training.epochz", "epochs"), sections={"training": {"epochz": 1}}),
        id="unknown-nested-key",
    ),
    pytest.param(
        Case(("recipe.yaml", "training.epochs", "three"), sections={"training": {"epochs": "three"}}),
        id="wrong-type",
    ),
    pytest.param(
        Case(("recipe.yaml", "training.learning_rate"), sections={"training": {"learning_rate": -1e-3}}),
        id="negative-lr",
    ),
    pytest.param(
        Case(("training.per_device_batch_size",), sections={"training": {"per_device_batch_size": 0}}),
        id="zero-batch-size",
    ),
    pytest.param(
        Case(("recipe.yaml", "method.type", "lorax"), sections={"method": {"type": "lorax"}}),
        id="unknown-peft-type",
    ),
    pytest.param(
        Case(("recipe.yaml", "method.r", "ia3"), sections={"method": {"type": "ia3", "r": 4}}),
        id="peft-kwarg-not-in-config",
    ),
    pytest.param(
        Case(("method.task_type",), sections={"method": {"task_type": "SEQ_CLS"}}), id="peft-managed-key"
    ),
    pytest.param(
        Case(("recipe.yaml", "method.r", "integer", "None"), sections={"method": {"r": None}}),
        id="peft-kwarg-wrong-type",
    ),
    pytest.param(Case(("method", "`r`", "-1"), sections={"method": {"r": -1}}), id="peft-kwarg-out-of-range"),
    pytest.param(
        Case(
            ("model.config_kwargs", "hidden_size"), sections={"model": {"config_kwargs": {"hidden_size": 64}}}
        ),
        id="config-kwargs-mismatch",
    ),
    pytest.param(
        Case(("model.config_kwargs", "num_labels"), sections={"model": {"config_kwargs": {"num_labels": 3}}}),
        id="config-kwargs-managed-key",
    ),
    pytest.param(
        Case(
            ("model.name_or_path", "model.config_kwargs", "dropout"),
            sections={"model": {"config_kwargs": {"hidden_dropout_prob": 2.0}}},
        ),
        id="config-kwargs-bad-value",
    ),
    pytest.param(
        Case(
            ("method.target_modules", "nonexistent"), sections={"method": {"target_modules": ["nonexistent"]}}
        ),
        id="target-modules-absent",
    ),
    pytest.param(
        Case(("training.epochs", "section.key=value"), args=("training.epochs",)), id="override-no-equals"
    ),
    pytest.param(Case(("training.epochs=[1", "YAML"), args=("training.epochs=[1",)), id="override-bad-yaml"),
    pytest.param(
        Case(("training.epochs.x", "'epochs' is a value"), args=("training.epochs.x=1",)),
        id="override-into-scalar",
    ),
    pytest.param(Case(("training.epochz", "epochs"), args=("training.epochz=1",)), id="override-unknown-key"),
    pytest.param(
        Case(("eval.primary_metric", "pr_auc"), sections={"eval": {"primary_metric": "pr_auc"}}),
        id="primary-metric-not-computed",
    ),
    pytest.param(
        Case(
            ("eval.metrics", "nonsense_metric"),
            sections={"eval": {"metrics": ["roc_auc", "nonsense_metric"], "cost_matrix": None}},
        ),
        id="unknown-metric",
    ),
    pytest.param(
        Case(("data.label_names", "boolean"), sections={"data": {"label_names": [True, False]}}),
        id="yaml-boolean-labels",
    ),
    pytest.param(
        Case(
            ("data.validation_size + data.test_size",),
            sections={"data": {"validation_size": 0.5, "test_size": 0.5}},
        ),
        id="split-sizes-sum-to-one",
    ),
    pytest.param(
        Case(("data.text_columns", "data.template"), sections={"data": {"template": "{note}"}}),
        id="text-columns-and-template",
    ),
    pytest.param(
        Case(("eval.cost_matrix", "great"), sections={"eval": {"cost_matrix": {"bad": {"great": 5}}}}),
        id="cost-matrix-unknown-label",
    ),
    pytest.param(
        Case(("data.class_weights", "ugly"), sections={"data": {"class_weights": {"ugly": 2.0}}}),
        id="class-weights-unknown-label",
    ),
    # data
    pytest.param(Case(("missing.csv", "not found"), source="{data}/missing.csv"), id="data-missing-file"),
    pytest.param(
        Case(
            ("loans.xlsx", "unknown file type"),
            files={"loans.xlsx": b"PK\x03\x04"},
            source="{data}/loans.xlsx",
        ),
        id="data-unknown-format",
    ),
    pytest.param(
        Case(("loans.csv", "UTF-8", "line 42"), files={"loans.csv": latin1_row()}), id="data-not-utf8"
    ),
    pytest.param(Case(("loans.csv", "empty"), files={"loans.csv": b""}), id="data-empty-file"),
    pytest.param(
        Case(("loans.csv", "no rows"), files={"loans.csv": b"applicant,note,income,outcome\n"}),
        id="data-header-only",
    ),
    pytest.param(
        Case(("loans.csv", "'memo'"), sections={"data": {"text_columns": ["memo"]}}), id="missing-text-column"
    ),
    pytest.param(
        Case(("loans.csv", "'verdict'"), sections={"data": {"label_column": "verdict"}}),
        id="missing-label-column",
    ),
    pytest.param(
        Case(("loans.csv", "row 10", "'outcome'", "missing"), files={"loans.csv": cell(9, "outcome", "")}),
        id="empty-label",
    ),
    pytest.param(
        Case(
            ("loans.jsonl", "row 7", "'outcome'", "missing"),
            files={"loans.jsonl": null_label_jsonl()},
            source="{data}/loans.jsonl",
        ),
        id="null-label-jsonl",
    ),
    pytest.param(
        Case(("loans.csv", "row 10", "'perhaps'"), files={"loans.csv": cell(9, "outcome", "perhaps")}),
        id="label-not-in-label-names",
    ),
    pytest.param(
        Case(
            ("loans.csv", "validation", "'maybe'", "'outcome'", "train"),
            files={"loans.csv": with_splits(validation_extra="maybe")},
            sections={"data": {"split_column": "split", **NO_LABEL_NAMES}},
        ),
        id="label-only-in-validation",
    ),
    pytest.param(
        Case(
            ("loans.csv", "test", "'maybe'", "'outcome'", "train"),
            files={"loans.csv": with_splits(test_extra="maybe")},
            sections={"data": {"split_column": "split", "label_names": ["good", "bad", "maybe"]}},
        ),
        id="label-only-in-test-named",
    ),
    pytest.param(
        Case(
            ("test", "'maybe'", "'outcome'"),
            files={
                "train.csv": make_frame(60),
                "validation.csv": make_frame(20, seed=1),
                "test.csv": cell(3, "outcome", "maybe")(make_frame(20, seed=2)),
            },
            source="{data}",
            sections={"data": NO_LABEL_NAMES},
        ),
        id="label-only-in-test-dir",
    ),
    pytest.param(
        Case(
            ("loans.csv", "two label values"),
            files={"loans.csv": one_class},
            sections={"data": NO_LABEL_NAMES},
        ),
        id="one-class-only",
    ),
    pytest.param(
        Case(("loans.csv", "'outcome'", "good"), files={"loans.csv": one_class}),
        id="one-class-of-label-names",
    ),
    pytest.param(
        Case(("loans.csv", "'A005'", "rows 6 and 12", "'applicant'"), files={"loans.csv": duplicate_ids}),
        id="duplicate-ids",
    ),
    pytest.param(
        Case(
            ("data.template", "'memo'", "row 1"),
            sections={"data": {"text_columns": None, "template": "{memo} earns {income}"}},
        ),
        id="template-missing-column",
    ),
    pytest.param(
        Case(
            ("loans.csv", "'holdout'", "column 'split'"),
            files={"loans.csv": with_splits().replace({"split": {"test": "holdout"}})},
            sections={"data": {"split_column": "split"}},
        ),
        id="unknown-split-value",
    ),
    pytest.param(
        Case(("data.positive_label", "ugly"), sections={"data": {"positive_label": "ugly"}}),
        id="positive-label-not-a-label",
    ),
    pytest.param(
        Case(("loans.csv", "'customer'"), sections={"data": {"id_column": "customer"}}),
        id="id-column-missing",
    ),
    pytest.param(
        Case(
            ("loans.jsonl", "line 7"), files={"loans.jsonl": malformed_jsonl()}, source="{data}/loans.jsonl"
        ),
        id="malformed-jsonl",
    ),
    pytest.param(
        Case(
            ("loans.parquet", "could not read"),
            files={"loans.parquet": b"PAR1 this is not parquet PAR1"},
            source="{data}/loans.parquet",
        ),
        id="corrupt-parquet",
    ),
    pytest.param(
        Case(("loans.csv", "stratified"), files={"loans.csv": make_frame(4)}), id="too-few-rows-to-split"
    ),
    # model
    pytest.param(
        Case(
            ("model.name_or_path", "no-such-model"),
            sections={"model": {"name_or_path": "{tmp}/no-such-model"}},
        ),
        id="model-missing-local-path",
    ),
    pytest.param(
        Case(("model.name_or_path", HUB), sections={"model": {"name_or_path": "someorg/some-model"}}),
        id="model-hub-offline",
    ),
    pytest.param(Case(("data.source", HUB), source="someorg/some-dataset"), id="data-hub-offline"),
    pytest.param(
        Case(
            ("model.name_or_path", "vit", "no sequence-classification class"),
            sections={"model": {"name_or_path": "{no_head_model}"}},
        ),
        id="model-without-classification-head",
    ),
    pytest.param(
        Case(("model.name_or_path", "already has"), sections={"model": {"name_or_path": "{headed_model}"}}),
        id="model-already-has-head",
    ),
    # paths
    pytest.param(
        Case(
            ("{data}", ("inside the data directory", "contains the data")),
            args=("--output", "{data}", "--overwrite"),
        ),
        id="output-is-data-dir",
    ),
    pytest.param(
        Case(("{data}/out", "inside the data directory"), args=("--output", "{data}/out")),
        id="output-inside-data-dir",
    ),
    pytest.param(
        Case(
            ("{data}", "contains the data"),
            files={"raw/loans.csv": make_frame(80)},
            source="{data}/raw/loans.csv",
            args=("--output", "{data}", "--overwrite"),
        ),
        id="output-contains-data",
    ),
    pytest.param(
        Case(("{tmp}/recipe.yaml/out", "not writable"), args=("--output", "{tmp}/recipe.yaml/out")),
        id="output-parent-is-a-file",
    ),
    pytest.param(
        Case(("/proc/adapters-test-out", "not writable"), args=("--output", "/proc/adapters-test-out")),
        id="output-not-writable",
    ),
    pytest.param(
        Case(
            ("{tmp}/existing", "--overwrite"),
            files={"loans.csv": make_frame(80), "../existing/keep.txt": "keep"},
            args=("--output", "{tmp}/existing"),
        ),
        id="output-exists",
    ),
]


def assert_one_line_error(stderr: str, expect: tuple[str | tuple[str, ...], ...], env: Env) -> str:
    """Exactly one ``error:`` line, naming everything in ``expect`` (a tuple there means one of)."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for wanted in expect:
        options = [env.format(option) for option in (wanted if isinstance(wanted, tuple) else (wanted,))]
        assert any(option in line for option in options), f"{options} not in {line!r}"
    return line


@pytest.mark.parametrize("case", ERROR_CASES)
def test_bad_input_exits_2_with_one_line(case: Case, env: Env, capfd: pytest.CaptureFixture[str]) -> None:
    argv = setup_case(case, env)
    before = snapshot(env.tmp)
    capfd.readouterr()
    code = main(argv)
    captured = capfd.readouterr()
    assert code == 2, captured.err
    assert_one_line_error(captured.err, case.expect, env)
    assert snapshot(env.tmp) == before  # inputs untouched, no output dir, no staging dir
    assert not Path("/proc/adapters-test-out").exists()


# ----------------------------------------------------------------------------------------- subprocess
def run_cli(*args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "adapters", *args], capture_output=True, text=True, env=environment
    )


CASES_BY_ID = {param.id: param.values[0] for param in ERROR_CASES}


@pytest.mark.parametrize("case_id", ["data-not-utf8", "target-modules-absent"])
def test_bad_input_through_the_real_cli(case_id: str, env: Env) -> None:
    case = CASES_BY_ID[case_id]
    argv = setup_case(case, env)
    before = snapshot(env.tmp)
    result = run_cli(*argv)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result.stderr, case.expect, env)
    assert snapshot(env.tmp) == before


def test_debug_shows_the_traceback(env: Env) -> None:
    """--debug lets the error propagate (so Python prints the traceback) and still leaves nothing behind."""
    argv = setup_case(CASES_BY_ID["duplicate-ids"], env)
    before = snapshot(env.tmp)
    with pytest.raises(AdaptersUserError, match="'A005'") as raised:
        main(["--debug", *argv])
    printed = "".join(traceback.format_exception(raised.value))
    assert printed.startswith("Traceback") and "adapters/data/prepare.py" in printed
    assert snapshot(env.tmp) == before


# ----------------------------------------------------------------------------------------- must work
def long_text(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[4, "note"] = ("salary " * 150_000)[:1_000_000]  # one 1 MB text
    return frame


def multiline_text(frame: pd.DataFrame) -> pd.DataFrame:
    frame["note"] = [
        f'{note}\nsecond line, with "quotes"' if i % 4 == 0 else note for i, note in enumerate(frame["note"])
    ]
    return frame


def bom_csv() -> bytes:
    return b"\xef\xbb\xbf" + csv_bytes(make_frame(80))


GOOD_CASES = [
    pytest.param(
        {"loans.csv": long_text}, {}, lambda frame: len(frame.loc[4, "note"]) == 1_000_000, id="one-1MB-text"
    ),
    pytest.param(
        {"loans.csv": multiline_text},
        {},
        lambda frame: len(frame) == 80 and frame["note"].str.contains("\n").sum() == 20,
        id="quoted-csv-with-newlines",
    ),
    pytest.param(
        {"loans.csv": bom_csv()},
        {"data": {"text_columns": None, "template": "{applicant}: {note}"}},
        lambda frame: list(frame.columns) == ["applicant", "note", "income", "outcome"],
        id="utf8-bom",
    ),
]


@pytest.mark.parametrize(("files", "sections", "read_back_ok"), GOOD_CASES)
def test_awkward_but_valid_input_trains(
    files: dict[str, FileSpec],
    sections: dict[str, Any],
    read_back_ok: Callable[[pd.DataFrame], bool],
    env: Env,
) -> None:
    """Truncated, not crashed; rows kept whole; the BOM not glued to the first column name."""
    from adapters.data.readers import read_source

    argv = setup_case(Case((), files=files, sections=sections), env)
    before = snapshot(env.tmp)
    assert main([*argv, "training.max_steps=1", "training.eval_every=1"]) == 0
    assert {"adapter_model.safetensors", "metrics.json", "recipe.yaml"} <= {p.name for p in env.out.iterdir()}
    assert len(pd.read_csv(env.out / "predictions.csv")) == 16  # the test split: 20% of 80 rows
    after = snapshot(env.tmp)
    assert {name: after[name] for name in before} == before  # inputs untouched
    assert not [name for name in after if name.startswith(".out")]
    assert read_back_ok(read_source(str(env.data / "loans.csv"))["all"])

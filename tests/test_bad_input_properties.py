"""Properties: random recipes and random CSV bytes never give a traceback or leave a partial output.

Every drawn input must end in one of two ways: exit 0 with a complete artifact, or exit 2 with a single
``error:`` line and no output directory; in both, no ``.NAME.partial`` staging directory remains.
Recipes mix known keys with plausible, out-of-range and junk values, unknown keys and sections that are
not mappings; the run is kept short (``training.max_steps`` <= 2) and offline (the tiny model).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.cli import main
from adapters.metrics import BUILTIN_METRICS
from adapters.recipe import method_types
from tests.conftest import make_frame, tiny_recipe

pytestmark = pytest.mark.slow

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10),
    st.floats(-10, 10),
    st.just(float("nan")),
    st.text(max_size=8),
)


def _nested(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3))


JUNK = st.recursive(SCALARS, _nested, max_leaves=6)
LABELS = st.sampled_from(["good", "bad", "ugly", True, 0, 1.5])
COLUMNS = st.sampled_from(["note", "income", "applicant", "outcome", "memo"])
METRICS = st.sampled_from([*BUILTIN_METRICS, "loss", "nonsense_metric"])


def _or_junk(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly plausible values, sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, JUNK)


# Recipe keys with values that are mostly of the right kind, often out of range, sometimes junk.
RECIPE_KEYS: dict[tuple[str, ...], st.SearchStrategy] = {
    ("name",): _or_junk(st.text(max_size=12)),
    ("description",): JUNK,
    ("model", "revision"): _or_junk(st.none()),
    ("model", "config_kwargs"): _or_junk(
        st.dictionaries(
            st.sampled_from(
                ["hidden_dropout_prob", "hidden_size", "num_labels", "vocab_size", "classifier_dropout"]
            ),
            st.one_of(st.integers(-1, 64), st.floats(-1, 2), st.none()),
            max_size=2,
        )
    ),
    ("data", "format"): _or_junk(
        st.sampled_from(["auto", "csv", "jsonl", "parquet", "dir", "hub", "builtin"])
    ),
    ("data", "text_columns"): _or_junk(st.one_of(st.none(), st.lists(COLUMNS, max_size=3))),
    ("data", "template"): _or_junk(
        st.one_of(
            st.none(), st.sampled_from(["{note}", "{note} earns {income}", "{memo}", "{", "{0}", "{note!z}"])
        )
    ),
    ("data", "label_column"): _or_junk(st.one_of(st.none(), COLUMNS)),
    ("data", "label_names"): _or_junk(st.one_of(st.none(), st.lists(LABELS, max_size=3))),
    ("data", "positive_label"): _or_junk(st.one_of(st.none(), LABELS)),
    ("data", "id_column"): _or_junk(st.one_of(st.none(), COLUMNS)),
    ("data", "split_column"): _or_junk(st.one_of(st.none(), COLUMNS)),
    ("data", "validation_size"): _or_junk(st.floats(-0.5, 1.5)),
    ("data", "test_size"): _or_junk(st.floats(-0.5, 1.5)),
    ("data", "split_seed"): _or_junk(st.integers(-5, 2**40)),
    ("data", "train_fraction"): _or_junk(st.floats(-0.5, 1.5)),
    ("data", "max_length"): _or_junk(st.integers(-4, 48)),
    ("data", "class_weights"): _or_junk(
        st.one_of(
            st.sampled_from(["none", "balanced", "heavy"]),
            st.dictionaries(st.sampled_from(["good", "bad", "ugly"]), st.floats(-1, 5), max_size=2),
        )
    ),
    ("method", "type"): _or_junk(st.sampled_from([*method_types(), "lorax", "LoRA", "p-tuning"])),
    ("method", "r"): _or_junk(st.integers(-2, 8)),
    ("method", "lora_alpha"): _or_junk(st.floats(-4, 16)),
    ("method", "lora_dropout"): _or_junk(st.floats(-1, 2)),
    ("method", "num_virtual_tokens"): _or_junk(st.integers(-1, 4)),
    ("method", "target_modules"): _or_junk(
        st.one_of(
            st.lists(st.sampled_from(["query", "key", "value", "dense", "nope"]), max_size=3),
            st.text(max_size=6),
        )
    ),
    ("method", "modules_to_save"): _or_junk(
        st.lists(st.sampled_from(["pooler", "classifier", "nope"]), max_size=2)
    ),
    ("training", "epochs"): _or_junk(st.floats(-1, 3)),
    ("training", "per_device_batch_size"): _or_junk(st.integers(-2, 16)),
    ("training", "eval_batch_size"): _or_junk(st.integers(-2, 16)),
    ("training", "gradient_accumulation_steps"): _or_junk(st.integers(-1, 3)),
    ("training", "learning_rate"): _or_junk(st.floats(-1, 1)),
    ("training", "scheduler"): _or_junk(
        st.sampled_from(["linear", "cosine", "constant", "polynomial", "cosine2"])
    ),
    ("training", "warmup_ratio"): _or_junk(st.floats(-1, 2)),
    ("training", "weight_decay"): _or_junk(st.floats(-1, 1)),
    ("training", "max_grad_norm"): _or_junk(st.one_of(st.none(), st.floats(-1, 5))),
    ("training", "seed"): _or_junk(st.integers(-5, 2**40)),
    ("training", "eval_every"): _or_junk(st.one_of(st.integers(-1, 3), st.just("epoch"))),
    ("training", "early_stopping_patience"): _or_junk(st.one_of(st.none(), st.integers(-1, 3))),
    ("eval", "metrics"): _or_junk(st.lists(METRICS, max_size=4)),
    ("eval", "primary_metric"): _or_junk(METRICS),
    ("eval", "threshold"): _or_junk(st.floats(-1, 2)),
    ("eval", "cost_matrix"): _or_junk(
        st.one_of(
            st.none(),
            st.dictionaries(LABELS, st.dictionaries(LABELS, st.floats(-1, 10), max_size=2), max_size=2),
        )
    ),
}
SECTIONS = ["model", "data", "method", "training", "eval"]


@st.composite
def recipe_changes(draw: st.DrawFn) -> list[tuple[tuple[str, ...], Any]]:
    """Dotted-path assignments: known keys with drawn values, unknown keys, whole sections replaced."""
    paths = draw(st.lists(st.sampled_from(list(RECIPE_KEYS)), max_size=4, unique=True))
    changes = [(path, draw(RECIPE_KEYS[path])) for path in paths]
    if draw(st.integers(0, 5)) == 0:  # an unknown key somewhere
        where = draw(st.sampled_from([(), *[(section,) for section in SECTIONS]]))
        changes.append(((*where, draw(st.text(min_size=1, max_size=8))), draw(JUNK)))
    if draw(st.integers(0, 7)) == 0:  # a section that is not a mapping, or a mapping nested too deep
        section = draw(st.sampled_from(SECTIONS))
        changes.append(
            ((section,), draw(st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.just({"x": {}}))))
        )
    return changes


def _apply(recipe: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target: Any = recipe
    for part in path[:-1]:
        if not isinstance(target, dict):
            return
        target = target.setdefault(part, {})
    if isinstance(target, dict):
        target[path[-1]] = value


def _force(recipe: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Keep a run short and offline whatever was drawn (only where the section is still a mapping)."""
    section = recipe.get(path[0])
    if isinstance(section, dict):
        section[path[1]] = value


def check_clean_run(argv: list[str], out: Path, capfd: pytest.CaptureFixture[str]) -> int:
    """The property: 0 with a complete artifact, or 2 with one error line; never a staging dir left."""
    capfd.readouterr()
    code = main(argv)
    err = capfd.readouterr().err
    assert code in (0, 2)
    event(f"exit {code}")  # --hypothesis-show-statistics: how often a drawn input trained
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert not out.exists()
    else:
        assert {"adapter_model.safetensors", "metrics.json", "recipe.yaml"} <= {p.name for p in out.iterdir()}
    assert not list(out.parent.glob(f".{out.name}*"))
    return code


# ~30 s per property on 2 CPU cores; BAD_INPUT_EXAMPLES=300 for a longer hunt.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("BAD_INPUT_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(changes=recipe_changes(), steps=st.integers(1, 2))
def test_random_recipes_never_traceback(
    changes: list[tuple[tuple[str, ...], Any]],
    steps: int,
    tiny_model_dir: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        make_frame(60).to_csv(root / "loans.csv", index=False)
        recipe = tiny_recipe(tiny_model_dir, data={"source": str(root / "loans.csv")})
        for path, value in changes:
            _apply(recipe, path, value)
        out = root / "out"
        for path, value in [
            (("model", "name_or_path"), str(tiny_model_dir)),
            (("data", "source"), str(root / "loans.csv")),
            (("training", "output_dir"), str(out)),
            (("training", "max_steps"), steps),
            (("training", "log_with"), []),
        ]:
            _force(recipe, path, value)
        (root / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
        check_clean_run(["train", str(root / "recipe.yaml"), "--no-progress"], out, capfd)


CELL = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=10)


@st.composite
def csv_payloads(draw: st.DrawFn) -> bytes:
    """Random bytes, or CSV-ish text: random columns, labels, quoting, newlines in cells, BOM, garbage."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.binary(max_size=400))
    columns = draw(st.lists(st.one_of(COLUMNS, CELL), max_size=4))
    if draw(st.integers(0, 3)):
        columns = ["applicant", "note", "outcome", *columns]
    clean = draw(st.booleans())  # then every label and id is valid and there are enough rows to split
    labels = st.sampled_from(["good", "bad"] if clean else ["good", "bad"] * 8 + ["", "maybe", "nan"])
    rows = []
    for index in range(draw(st.integers(20, 40) if clean else st.integers(0, 40))):
        cells = {
            "applicant": f"A{index}" if clean else draw(st.sampled_from([f"A{index}"] * 8 + ["A0", ""])),
            "note": draw(st.one_of(st.sampled_from(["salary house", "debt loan"]), CELL)),
            "outcome": draw(labels),
        }
        rows.append([cells.get(str(column), draw(CELL)) for column in columns])
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])),
        lineterminator=draw(st.sampled_from(["\n", "\r\n"])),
    )
    writer.writerow(columns)
    writer.writerows(rows)
    payload = buffer.getvalue().encode("utf-8")
    if draw(st.booleans()):
        payload = b"\xef\xbb\xbf" + payload
    if draw(st.integers(0, 4)) == 0:  # splice in some bytes anywhere
        at = draw(st.integers(0, len(payload)))
        payload = payload[:at] + draw(st.binary(min_size=1, max_size=8)) + payload[at:]
    return payload


@PROPERTY_SETTINGS
@given(payload=csv_payloads(), label_names=st.sampled_from([None, ["good", "bad"]]), with_id=st.booleans())
def test_random_csv_bytes_never_traceback(
    payload: bytes,
    label_names: list[str] | None,
    with_id: bool,
    tiny_model_dir: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "loans.csv").write_bytes(payload)
        out = root / "out"
        recipe = tiny_recipe(
            tiny_model_dir,
            data={
                "source": str(root / "loans.csv"),
                "label_names": label_names,
                "positive_label": None,
                "id_column": "applicant" if with_id else None,
            },
            training={"max_steps": 1, "eval_every": 1, "output_dir": str(out)},
            eval={"metrics": ["roc_auc", "accuracy"], "cost_matrix": None},
        )
        (root / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
        check_clean_run(["train", str(root / "recipe.yaml"), "--no-progress"], out, capfd)
        assert (root / "loans.csv").read_bytes() == payload

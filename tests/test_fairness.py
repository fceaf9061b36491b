"""Fairness report: numbers against direct computation, raw columns through the splits, protected columns
out of the text, the LR baseline, the files and card section a run writes, and ``--strict``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from adapters.baselines import baseline_features, logistic_regression_baseline, run_baseline
from adapters.cli import FAIRNESS_EXIT, main
from adapters.data import prepare_data, resolve_data_config
from adapters.errors import AdaptersUserError
from adapters.fairness import fairness_report, gap_warning, group_values, max_gap
from adapters.recipe import DataConfig, FairnessAttributeConfig, load_recipe
from tests.conftest import make_frame, write_data

TEMPLATE = "Note: {note}. Income {income}. Region {region}. Age {age}."


def attribute(column: str, **values) -> FairnessAttributeConfig:
    return FairnessAttributeConfig(column=column, min_group_size=1, **values)


def protected_frame(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    """The toy credit frame plus age and region; bad rows are mostly young and northern, so decisions
    that follow the label also differ between those groups."""
    frame = make_frame(rows, seed)
    rng = np.random.default_rng(seed)
    bad = (frame["outcome"] == "bad").to_numpy()
    frame["age"] = np.where(
        bad ^ (rng.random(rows) < 0.2), rng.integers(19, 30, rows), rng.integers(30, 70, rows)
    )
    frame["region"] = np.where(bad ^ (rng.random(rows) < 0.2), "north", "south")
    return frame


# --- the numbers ---


def test_report_matches_direct_computation() -> None:
    table = pd.DataFrame({"region": ["a"] * 6 + ["b"] * 4})
    labels = np.array([1, 1, 0, 0, 0, 0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.4, 0.6, 0.2, 0.1, 0.3, 0.8, 0.7, 0.3, 0.55])
    baseline = np.array([0.6, 0.2, 0.1, 0.1, 0.1, 0.1, 0.9, 0.1, 0.5, 0.1])
    report = fairness_report([attribute("region")], table, labels, scores, 0.5, baseline, 0.45)
    entry = report["attributes"][0]
    declined = scores >= 0.5
    groups = table["region"].to_numpy()
    expected = {}
    for name in ("a", "b"):
        rows = groups == name
        bad, good = rows & (labels == 1), rows & (labels == 0)
        expected[name] = {
            "n": int(rows.sum()),
            "bad_rate": labels[rows].mean(),
            "approval_rate": 1 - declined[rows].mean(),
            "tpr": declined[bad].mean(),
            "fpr": declined[good].mean(),
            "mean_p_bad": scores[rows].mean(),
        }
    by_name = {group["group"]: group for group in entry["adapter"]["groups"]}
    for name, values in expected.items():
        for key, value in values.items():
            assert by_name[name][key] == pytest.approx(value, abs=1e-6), (name, key)
    approval = [expected[name]["approval_rate"] for name in ("a", "b")]
    assert entry["adapter"]["demographic_parity_difference"] == pytest.approx(abs(approval[0] - approval[1]))
    assert entry["adapter"]["demographic_parity_ratio"] == pytest.approx(min(approval) / max(approval))
    odds = max(
        abs(expected["a"]["tpr"] - expected["b"]["tpr"]), abs(expected["a"]["fpr"] - expected["b"]["fpr"])
    )
    assert entry["adapter"]["equalized_odds_difference"] == pytest.approx(odds)
    assert by_name["b"]["roc_auc"] == pytest.approx(0.5)  # bad 0.8, 0.3 vs good 0.7, 0.55: 2 of 4 pairs
    # the baseline at its own cut-off (0.45): group a declines 1 of 6, group b 2 of 4
    base = {group["group"]: group for group in entry["baseline"]["groups"]}
    assert base["a"]["approval_rate"] == pytest.approx(5 / 6) and base["b"]["approval_rate"] == 0.5
    assert report["baseline_threshold"] == 0.45 and entry["baseline"]["threshold"] == 0.45
    assert max_gap(report) == pytest.approx(max(odds, abs(approval[0] - approval[1])))


def test_bins_not_reported_and_missing_column() -> None:
    table = pd.DataFrame({"age": [19, 24, 25, 40, None], "sex": ["x"] * 5})
    labelled = attribute("age", bins=[25], labels=["under 25", "25 and over"])
    assert group_values(labelled, table).tolist() == [
        "under 25",
        "under 25",
        "25 and over",
        "25 and over",
        "missing",
    ]
    default = group_values(attribute("age", bins=[25, 40]), table)
    assert default.tolist() == ["under 25", "under 25", "25 to under 40", "40 and over", "missing"]
    hidden = attribute("sex", not_reported="the field mixes sex with marital status")
    labels, scores = np.array([1, 0, 1, 0, 0]), np.array([0.7, 0.2, 0.4, 0.1, 0.6])
    report = fairness_report([labelled, hidden], table, labels, scores, 0.5)
    assert [group["group"] for group in report["attributes"][0]["adapter"]["groups"]] == [
        "under 25",
        "25 and over",
        "missing",
    ]
    assert report["attributes"][1] == {
        "column": "sex",
        "reported": False,
        "reason": "the field mixes sex with marital status",
    }
    with pytest.raises(AdaptersUserError, match="'zodiac' is not in the data") as caught:
        fairness_report([attribute("zodiac")], table, labels, scores, 0.5)
    assert caught.value.where == "eval.fairness"
    with pytest.raises(AdaptersUserError, match="not numeric"):
        fairness_report([attribute("sex", bins=[1])], table, labels, scores, 0.5)


def test_small_and_one_class_groups_stay_out_of_the_gaps() -> None:
    table = pd.DataFrame({"group": ["big"] * 30 + ["other"] * 25 + ["tiny"] * 3})
    labels = np.array([1, 0] * 15 + [0] * 25 + [1, 1, 0])
    scores = np.where(labels == 1, 0.8, 0.2)
    scores[30:35] = 0.9  # five good "other" applicants declined
    config = FairnessAttributeConfig(column="group", min_group_size=20)
    entry = fairness_report([config], table, labels, scores, 0.5)["attributes"][0]
    assert set(entry["left_out_of_gaps"]) == {"other", "tiny"}
    assert "min_group_size" in entry["left_out_of_gaps"]["tiny"]
    assert "only good rows" in entry["left_out_of_gaps"]["other"]
    # parity over big and other: approval 0.5 vs 0.8; equalized odds has one group left: none
    assert entry["adapter"]["demographic_parity_difference"] == pytest.approx(0.3)
    assert entry["adapter"]["equalized_odds_difference"] is None
    tiny = next(group for group in entry["adapter"]["groups"] if group["group"] == "tiny")
    assert tiny["n"] == 3 and tiny["tpr"] == 1.0  # still shown, with its n


def test_gap_warning_names_the_attribute() -> None:
    table = pd.DataFrame({"region": ["a"] * 4 + ["b"] * 4})
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.9, 0.9, 0.1, 0.9, 0.1, 0.1, 0.1])
    report = fairness_report([attribute("region")], table, labels, scores, 0.5)
    assert gap_warning(report, 0.9) is None and gap_warning(report, None) is None
    assert "region demographic parity difference 0.500" in gap_warning(report, 0.2)


# --- raw columns through the split ---


def data_config(**values) -> DataConfig:
    base = {"label_column": "outcome", "label_names": ["good", "bad"], "positive_label": "bad"}
    return resolve_data_config(DataConfig(**{**base, **values}))


def assert_aligned(data, id_column: str = "applicant") -> None:
    for split, frame in data.frames.items():
        assert list(frame.columns) == ["row_id", "text", "label"]
        assert data.tables[split][id_column].astype(str).tolist() == frame["row_id"].tolist(), split


def test_tables_follow_split_and_fraction() -> None:
    frame = protected_frame(120)
    data = prepare_data(data_config(template=TEMPLATE, id_column="applicant", train_fraction=0.5), frame)
    assert_aligned(data)
    assert len(data.tables["train"]) == 36 and {"age", "region", "income"} <= set(data.tables["test"].columns)
    labels = data.tables["test"]["outcome"].map({"good": 0, "bad": 1}).tolist()
    assert labels == data.frames["test"]["label"].tolist()


def test_tables_with_split_column_and_presplit_source(tmp_path: Path) -> None:
    frame = protected_frame(80)
    frame["part"] = ["train"] * 50 + ["val"] * 15 + ["test"] * 15
    assert_aligned(
        prepare_data(data_config(text_columns=["note"], id_column="applicant", split_column="part"), frame)
    )
    protected_frame(60, seed=1).to_csv(tmp_path / "train.csv", index=False)
    protected_frame(30, seed=2).assign(applicant=lambda f: "T" + f["applicant"]).to_csv(
        tmp_path / "test.csv", index=False
    )
    data = prepare_data(data_config(source=str(tmp_path), text_columns=["note"], id_column="applicant"))
    assert_aligned(data)
    assert data.tables["test"]["applicant"].str.startswith("T").all()


def test_builtin_tables_and_exclusion() -> None:
    excluded = ["age", "personal_status_sex", "foreign_worker"]
    data = prepare_data(resolve_data_config(DataConfig(exclude_from_text=excluded, train_fraction=0.5)))
    assert_aligned(data, "row_id")
    text = data.frames["test"]["text"][0]
    assert "years old" not in text and "foreign worker" not in text and "The credit duration" in text
    assert set(excluded) <= set(data.tables["test"].columns)


def test_exclude_from_text_removes_the_sentence_but_keeps_the_column() -> None:
    frame = protected_frame(60)
    data = prepare_data(
        data_config(template=TEMPLATE, id_column="applicant", exclude_from_text=["age"]), frame
    )
    assert all("Age" not in text for text in data.frames["train"]["text"])
    assert all("Region" in text for text in data.frames["train"]["text"])
    assert data.tables["train"]["age"].notna().all()


# --- the baseline ---


def test_logistic_regression_baseline_reads_the_models_columns() -> None:
    config = data_config(template=TEMPLATE, id_column="applicant", exclude_from_text=["age"])
    features, reason = baseline_features(config)
    assert features == ["note", "income", "region"] and reason is None
    data = prepare_data(config, protected_frame(120))
    scores = logistic_regression_baseline(
        data.tables, data.frames["train"]["label"].tolist(), data.label_names, "bad", features
    )
    assert set(scores) == {"validation", "test"}
    assert scores["test"].shape == (len(data.frames["test"]),)
    assert ((scores["test"] >= 0) & (scores["test"] <= 1)).all()
    single = baseline_features(data_config(text_columns=["note"]))
    assert single[0] == [] and "one free-text column" in single[1]
    recipe = load_recipe(
        {"data": {**config.model_dump(), "source": "<DataFrame>"}, "eval": {"threshold": "max_f1"}}
    )
    fitted = run_baseline(recipe, data)
    assert fitted.skipped is None and 0 < fitted.threshold < 1 and fitted.features == features


# --- a run ---


FAIRNESS = [
    {"column": "age", "bins": [30], "labels": ["under 30", "30 and over"], "min_group_size": 1},
    {"column": "region", "min_group_size": 1},
    {"column": "sex", "not_reported": "the data mixes sex with marital status"},
]


def fairness_recipe(tmp_path: Path, recipe_for, max_gap_allowed: float, **eval_values) -> Path:
    csv = write_data(tmp_path, protected_frame(120).assign(sex="x"))
    recipe = recipe_for(
        data={
            "source": str(csv),
            "text_columns": None,
            "template": TEMPLATE,
            "exclude_from_text": ["age", "region"],
        },
        training={"epochs": 2},
        eval={
            "fairness": FAIRNESS,
            "fairness_max_gap": max_gap_allowed,
            "threshold": "max_f1",
            **eval_values,
        },
    )
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="module")
def strict_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Path, int]:
    """One CLI training run with a tiny ``fairness_max_gap`` and ``--strict``: the artifact and exit code."""
    from tests.conftest import tiny_recipe

    tmp_path = tmp_path_factory.mktemp("fairness")
    recipe = fairness_recipe(tmp_path, lambda **s: tiny_recipe(tiny_model_dir, **s), 0.001)
    output = tmp_path / "out"
    code = main(["train", str(recipe), "--output", str(output), "--no-progress", "--strict"])
    return output, code


def test_training_writes_report_plot_and_card(strict_run: tuple[Path, int]) -> None:
    output, _ = strict_run
    report = json.loads((output / "fairness.json").read_text())
    assert (output / "fairness.png").read_bytes().startswith(b"\x89PNG")
    columns = [entry["column"] for entry in report["attributes"]]
    assert columns == ["age", "region", "sex"] and report["attributes"][2]["reported"] is False
    assert report["rows"] == 24 and report["excluded_from_text"] == ["age", "region"]
    assert report["baseline"]["name"] == "logistic_regression" and report["baseline"]["features"] == [
        "note",
        "income",
    ]
    age = report["attributes"][0]
    assert [group["group"] for group in age["adapter"]["groups"]] == ["under 30", "30 and over"]
    assert sum(group["n"] for group in age["baseline"]["groups"]) == 24
    config = json.loads((output / "config.json").read_text())
    assert report["threshold"] == pytest.approx(config["decision_threshold"])
    summary = json.loads((output / "training_summary.json").read_text())
    assert summary["fairness_gap_exceeded"] is report["gap_exceeded"] and "fairness" not in summary
    saved = yaml.safe_load((output / "recipe.yaml").read_text())
    assert "{age}" not in saved["data"]["template"] and "{region}" not in saved["data"]["template"]
    card = (output / "README.md").read_text()
    section = card[card.index("## Bias, risks and limitations") :]
    assert "Not in the model's input" in section and "`age`" in section and "`region`" in section
    assert "| under 30 |" in section and "logistic regression" in section
    assert "`sex`** is not reported: the data mixes sex with marital status." in section
    assert "Small groups" in section and "Proxies" in section and "Test split only" in section


def test_strict_exit_codes(
    strict_run: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output, code = strict_run
    report = json.loads((output / "fairness.json").read_text())
    assert report["gap_exceeded"] and report["max_gap"] > 0.001
    assert code == FAIRNESS_EXIT and (output / "adapter_model.safetensors").is_file()  # written all the same
    capsys.readouterr()
    assert main(["eval", str(output), "--strict"]) == FAIRNESS_EXIT
    captured = capsys.readouterr()
    evaluated = json.loads(captured.out)
    assert "roc_auc" in evaluated and evaluated["fairness"]["max_gap"] == pytest.approx(report["max_gap"])
    assert "exceeds eval.fairness_max_gap" in captured.err
    assert main(["eval", str(output)]) == 0  # without --strict: a warning only
    relaxed = tmp_path / "relaxed"
    shutil.copytree(output, relaxed)
    recipe = yaml.safe_load((relaxed / "recipe.yaml").read_text())
    recipe["eval"]["fairness_max_gap"] = 1.0
    (relaxed / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["eval", str(relaxed), "--strict"]) == 0


def test_missing_fairness_column_stops_before_training(
    tmp_path: Path, recipe_for, capsys: pytest.CaptureFixture
) -> None:
    recipe = fairness_recipe(tmp_path, recipe_for, 0.2)
    spec = yaml.safe_load(recipe.read_text())
    spec["eval"]["fairness"] = [{"column": "zodiac"}]
    recipe.write_text(yaml.safe_dump(spec))
    output = tmp_path / "out"
    assert main(["train", str(recipe), "--output", str(output)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: eval.fairness: fairness column 'zodiac' is not in the data")
    assert len(error.splitlines()) == 1
    assert not output.exists() and not (tmp_path / ".out.partial").exists()

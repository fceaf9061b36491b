"""One change to the recipe against the recipe itself, paired by draw at 10 % (60 training rows).

The variant's cells are trained as the curve's adapter with the change given as overrides, so only they
train; the recipe's cells of the same draws are committed in ``field-list/`` (trained by the same code):

    adapters curve german-credit/lora method.r=32 method.lora_alpha=64 --fractions 0.1 --seeds 0,1,2,3,4 \\
        --draws-small 5 --baselines --output outputs/curve-rank32-a
    python docs/evidence/german-credit/paired.py rank32 "rank 32" --collect outputs/curve-rank32-a

``--collect`` adds every finished cell (``cell.json``) under the given curve folders to
``VARIANT/cells.csv`` (and the adapter's test probabilities to ``VARIANT/test-probabilities.csv``), so draws
can be gathered over several sessions (the curve's cache does not survive them). The logistic regression's
cells are collected too: equal to the committed ones, they show the draws are the same. Writes
``VARIANT/paired.md`` (the differences as ``curve.md`` reports them: ``adapters.curve_report``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from adapters.curve_report import paired_difference  # noqa: E402

COMMITTED = [HERE / "field-list" / "curve.csv", HERE / "field-list" / "seeds-3-4-8-9" / "curve.csv"]
ENSEMBLES = HERE / "ensembles"


def _merge(found: pd.DataFrame, target: Path, keys: list[str]) -> None:
    """Add ``found`` to the CSV at ``target``, the newer row winning where ``keys`` repeat."""
    target.parent.mkdir(exist_ok=True)
    if target.exists():
        found = pd.concat([pd.read_csv(target, dtype={"row_id": str}), found]).drop_duplicates(
            keys, keep="last"
        )
    found.sort_values(keys).to_csv(target, index=False)


def collect(variant: str, folders: list[str], system: str = "adapter") -> None:
    """Finished 10 % cells of ``system`` (and logistic regression's) into ``VARIANT/cells.csv``; the
    adapter's per-row test probabilities into ``ensembles/test-probabilities.csv`` as member ``VARIANT``."""
    rows, probabilities = [], []
    for folder in folders:
        for path in sorted(Path(folder).glob("cells/*/f0.1-s*/cell.json")):
            cell = json.loads(path.read_text(encoding="utf-8"))
            if cell["system"] not in (system, "logistic_regression"):
                continue
            if cell["system"] == system:
                scored = pd.read_csv(path.parent / "predictions.csv", dtype={"row_id": str})
                probabilities.append(
                    scored[["row_id", "label"]].assign(
                        prob_bad=scored["prob_bad"].round(6), member=variant, seed=cell["seed"]
                    )
                )
            rows.append(
                {
                    "system": variant if cell["system"] == system else cell["system"],
                    "seed": cell["seed"],
                    "roc_auc": cell["metrics"]["roc_auc"],
                    "validation_roc_auc": cell["validation"]["roc_auc"],
                    "wall_seconds": cell["wall_seconds"],
                }
            )
    _merge(pd.DataFrame(rows), HERE / variant / "cells.csv", ["system", "seed"])
    if probabilities:
        _merge(pd.concat(probabilities), ENSEMBLES / "test-probabilities.csv", ["member", "seed", "row_id"])


def _committed() -> tuple[pd.Series, pd.Series]:
    """The recipe's and logistic regression's test ROC-AUC per draw at 10 %, as committed."""
    committed = pd.concat([pd.read_csv(path) for path in COMMITTED])
    committed = committed[committed["fraction"] == 0.1]
    by_system = {name: part.set_index("seed")["roc_auc"] for name, part in committed.groupby("system")}
    return by_system["adapter"], by_system["logistic_regression"]


def _tables(
    seeds: list[int], systems: dict[str, pd.Series], differences: list[tuple[str, str, str]]
) -> list[str]:
    """Per-draw values with their mean, then paired differences (95 % t-interval) between named systems."""
    lines = [
        "| system | " + " | ".join(f"s{seed}" for seed in seeds) + " | mean |",
        "|---|" + "---|" * (len(seeds) + 1),
    ]
    for name, values in systems.items():
        chosen = values.reindex(seeds)
        lines.append(
            f"| {name} | " + " | ".join(f"{value:.3f}" for value in chosen) + f" | {chosen.mean():.3f} |"
        )
    if len(seeds) < 2:
        return lines
    lines += [
        "",
        "| difference (95 % t-interval, paired by draw) | mean | low | high | higher on |",
        "|---|---|---|---|---|",
    ]
    for first_name, second_name in differences:
        first, second = systems[first_name].reindex(seeds), systems[second_name].reindex(seeds)
        found = paired_difference(first, second)
        lines.append(
            f"| {first_name} − {second_name} | {found['mean']:+.3f} | {found['low']:+.3f} | "
            f"{found['high']:+.3f} | {int((first > second).sum())} of {found['n']} |"
        )
    return lines


def _write(folder: str, lines: list[str]) -> str:
    text = "\n".join(lines) + "\n"
    (HERE / folder / "paired.md").write_text(text, encoding="utf-8")
    return text


def report(variant: str, label: str) -> str:
    cells = pd.read_csv(HERE / variant / "cells.csv")
    recipe, regression = _committed()
    changed = cells[cells["system"] == variant].set_index("seed")["roc_auc"]
    check = cells[cells["system"] == "logistic_regression"].set_index("seed")["roc_auc"]
    same_draws = bool(((check - regression.reindex(check.index)).abs() < 1e-12).all())
    seeds = sorted(changed.index)
    lines = [
        f"# {label} against the recipe: {len(seeds)} of 10 draws at 10 %, test ROC-AUC",
        "",
        "Made by `../paired.py` from `cells.csv` and the recipe's committed cells (`../field-list/`).",
        f"Logistic regression on the same draws equals the committed ones: {'yes' if same_draws else 'NO'}.",
        "",
    ]
    systems = {label: changed, "recipe": recipe, "logistic regression": regression}
    differences = [(label, "recipe"), (label, "logistic regression")]
    return _write(variant, lines + _tables(seeds, systems, differences))


def ensemble_report(folder: str, label: str, members: list[str]) -> str:
    """The adapters of ``members`` (collected into ``ensembles/test-probabilities.csv``) averaged per row:
    what averaging independently trained adapters gains over one of them, on the draws all members have."""
    collected = pd.read_csv(ENSEMBLES / "test-probabilities.csv", dtype={"row_id": str})
    scores = {member: collected[collected["member"] == member] for member in members}
    seeds = sorted(set.intersection(*(set(frame["seed"]) for frame in scores.values())))
    single = {
        member: pd.Series({seed: _auc(frame[frame["seed"] == seed]) for seed in seeds})
        for member, frame in scores.items()
    }
    joined = pd.concat(
        [frame.set_index(["seed", "row_id"]) for frame in scores.values()], axis=1, keys=members
    )
    averaged = pd.DataFrame(
        {
            "label": joined[members[0]]["label"],
            "prob_bad": sum(joined[member]["prob_bad"] for member in members) / len(members),
        }
    ).reset_index()
    ensemble = pd.Series({seed: _auc(averaged[averaged["seed"] == seed]) for seed in seeds})
    recipe, regression = _committed()
    systems = {
        label: ensemble,
        "one adapter (mean of the members)": sum(single.values()) / len(single),
        **single,
        "recipe": recipe,
        "logistic regression": regression,
    }
    lines = [
        f"# {label}: {len(seeds)} of 10 draws at 10 %, test ROC-AUC",
        "",
        f"Made by `../paired.py` from `test-probabilities.csv` (members: {', '.join(members)}):",
        "each row's probability of a bad credit averaged over the members, then ranked (the members alone",
        "are scored from the same files).",
        "",
    ]
    differences = [
        (label, "one adapter (mean of the members)"),
        (label, "recipe"),
        (label, "logistic regression"),
    ]
    return _write(folder, lines + _tables(seeds, systems, differences))


def _auc(rows: pd.DataFrame) -> float:
    return float(roc_auc_score(rows["label"] == "bad", rows["prob_bad"]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "variant", help="the variant's folder beside this script (rank32, reversed-order, ...)"
    )
    parser.add_argument("label", help="the variant's name in the report")
    parser.add_argument(
        "--collect", nargs="*", default=[], help="curve output folders to take finished cells from"
    )
    parser.add_argument(
        "--system", default="adapter", help="the curve system whose cells are the variant's (default adapter)"
    )
    parser.add_argument(
        "--collect-only", action="store_true", help="collect without a report (a member for --members)"
    )
    parser.add_argument(
        "--members", nargs="+", help="report VARIANT as the average of these collected variants' adapters"
    )
    args = parser.parse_args()
    if args.collect:
        collect(args.variant, args.collect, args.system)
    if args.collect_only:
        return
    if args.members:
        print(ensemble_report(args.variant, args.label, args.members))
    else:
        print(report(args.variant, args.label))


if __name__ == "__main__":
    main()

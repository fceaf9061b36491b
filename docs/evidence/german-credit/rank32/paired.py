"""LoRA rank 32 (alpha 64) against the recipe's rank 16, paired by draw at 10 % (60 training rows).

The rank-32 cells are trained as the curve's adapter with the rank overridden, so only they train (the
recipe's cells of the same draws are committed in ``../field-list/``, trained by the same code):

    adapters curve german-credit/lora method.r=32 method.lora_alpha=64 --fractions 0.1 --seeds 0,1,2,3,4 \\
        --draws-small 5 --baselines --output outputs/curve-rank32-a
    python docs/evidence/german-credit/rank32/paired.py --collect outputs/curve-rank32-a   # then reports

``--collect`` adds every finished cell (``cell.json``) under the given curve folders to ``cells.csv`` beside
this file, so draws can be gathered over several sessions (the curve's cache does not survive them). The
logistic regression's cells are collected too: equal to the committed ones, they show the draws are the same.
Writes ``paired.md`` beside this file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from adapters.curve_report import paired_difference  # noqa: E402

COMMITTED = [
    HERE.parent / "field-list" / "curve.csv",
    HERE.parent / "field-list" / "seeds-3-4-8-9" / "curve.csv",
]


def collect(folders: list[str]) -> None:
    rows = []
    for folder in folders:
        for path in sorted(Path(folder).glob("cells/*/f0.1-s*/cell.json")):
            cell = json.loads(path.read_text(encoding="utf-8"))
            if cell["system"] not in ("adapter", "logistic_regression"):
                continue
            rows.append(
                {
                    "system": "rank32" if cell["system"] == "adapter" else cell["system"],
                    "seed": cell["seed"],
                    "roc_auc": cell["metrics"]["roc_auc"],
                    "validation_roc_auc": cell["validation"]["roc_auc"],
                    "wall_seconds": cell["wall_seconds"],
                }
            )
    found = pd.DataFrame(rows)
    target = HERE / "cells.csv"
    if target.exists():
        found = pd.concat([pd.read_csv(target), found]).drop_duplicates(["system", "seed"], keep="last")
    found.sort_values(["system", "seed"]).to_csv(target, index=False)


def report() -> str:
    cells = pd.read_csv(HERE / "cells.csv")
    committed = pd.concat([pd.read_csv(path) for path in COMMITTED])
    committed = committed[committed["fraction"] == 0.1]
    recipe = committed[committed["system"] == "adapter"].set_index("seed")["roc_auc"]
    regression = committed[committed["system"] == "logistic_regression"].set_index("seed")["roc_auc"]
    rank = cells[cells["system"] == "rank32"].set_index("seed")["roc_auc"]
    check = cells[cells["system"] == "logistic_regression"].set_index("seed")["roc_auc"]
    same_draws = bool(((check - regression.reindex(check.index)).abs() < 1e-12).all())
    seeds = sorted(rank.index)
    lines = [
        f"# LoRA rank 32 against rank 16 (the recipe): {len(seeds)} of 10 draws at 10 %, test ROC-AUC",
        "",
        "Made by `paired.py` from `cells.csv` and the recipe's committed cells (`../field-list/`). Logistic",
        f"regression on the same draws equals the committed values: {'yes' if same_draws else 'NO'}.",
        "",
        "| system | " + " | ".join(f"s{seed}" for seed in seeds) + " | mean |",
        "|---|" + "---|" * (len(seeds) + 1),
    ]
    for name, values in (
        ("rank 32", rank),
        ("rank 16 (recipe)", recipe),
        ("logistic regression", regression),
    ):
        chosen = values.reindex(seeds)
        lines.append(
            f"| {name} | " + " | ".join(f"{value:.3f}" for value in chosen) + f" | {chosen.mean():.3f} |"
        )
    lines += [
        "",
        "| difference (95 % t-interval, paired by draw) | mean | low | high | higher on |",
        "|---|---|---|---|---|",
    ]
    for name, first, second in (
        ("rank 32 − rank 16", rank, recipe),
        ("rank 32 − logistic regression", rank, regression),
    ):
        first, second = first.reindex(seeds), second.reindex(seeds)
        if len(seeds) < 2:
            break
        found = paired_difference(first, second)
        wins = int((first > second).sum())
        lines.append(
            f"| {name} | {found['mean']:+.3f} | {found['low']:+.3f} | {found['high']:+.3f} | "
            f"{wins} of {found['n']} |"
        )
    text = "\n".join(lines) + "\n"
    (HERE / "paired.md").write_text(text, encoding="utf-8")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--collect", nargs="*", default=[], help="curve output folders to take finished cells from"
    )
    args = parser.parse_args()
    if args.collect:
        collect(args.collect)
    print(report())


if __name__ == "__main__":
    main()

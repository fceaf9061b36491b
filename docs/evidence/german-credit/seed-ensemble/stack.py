"""Would the stack gain from the seed ensemble? Blend logistic regression with the ensemble instead of the
single adapter, as ``--stack`` blends (the adapter's weight on a 0.05 grid, chosen by validation ROC-AUC),
and compare the two stacks draw by draw. No training: it reads the curve folder's saved probabilities.

    python docs/evidence/german-credit/seed-ensemble/stack.py outputs/curve-ensemble-done > stack.md
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from adapters.curve_cells import STACK_WEIGHTS  # noqa: E402
from adapters.curve_report import paired_difference  # noqa: E402

POSITIVE = "bad"


def _read(cells: Path, system: str, draw: str, file: str) -> pd.DataFrame:
    return pd.read_csv(cells / system / draw / file).set_index("row_id").sort_index()


def stacked(cells: Path, system: str, draw: str) -> tuple[float, float]:
    """(weight of ``system`` chosen on validation, test ROC-AUC) of ``system`` blended with logistic
    regression."""
    auc = {}
    for file in ("validation.csv", "predictions.csv"):
        ours, theirs = _read(cells, system, draw, file), _read(cells, "logistic_regression", draw, file)
        labels = (ours["label"] == POSITIVE).to_numpy()
        ours, theirs = ours[f"prob_{POSITIVE}"].to_numpy(), theirs[f"prob_{POSITIVE}"].to_numpy()
        auc[file] = [roc_auc_score(labels, w * ours + (1 - w) * theirs) for w in STACK_WEIGHTS]
    best = int(np.argmax(auc["validation.csv"]))
    return float(STACK_WEIGHTS[best]), auc["predictions.csv"][best]


def main(folder: str) -> None:
    cells = Path(folder) / "cells"
    curve = pd.read_csv(Path(folder) / "curve.csv").pivot(index="seed", columns="system", values="roc_auc")
    rows = []
    for draw in sorted((cells / "ensemble").iterdir(), key=lambda path: int(path.name.split("-s")[1])):
        row = {"draw": int(draw.name.split("-s")[1])}
        for system in ("adapter", "ensemble"):
            row[f"{system} weight"], row[f"stack of the {system}"] = stacked(cells, system, draw.name)
        row["logistic regression"] = curve.loc[row["draw"], "logistic_regression"]
        rows.append(row)
    table = pd.DataFrame(rows).set_index("draw")
    print("# The stack with the seed ensemble in place of one adapter (test ROC-AUC, 10 % of the labels)\n")
    print(f"`python docs/evidence/german-credit/seed-ensemble/stack.py {folder}`\n")
    print("| draw | " + " | ".join(table.columns) + " |\n|---" + "|---:" * len(table.columns) + "|")
    for draw, values in table.iterrows():
        cells_text = [f"{v:.2f}" if name.endswith("weight") else f"{v:.3f}" for name, v in values.items()]
        print(f"| {draw} | " + " | ".join(cells_text) + " |")
    print()
    print("| paired by draw | mean | 95 % CI | higher on |\n|---|---:|---|---|")
    for first, second in (
        ("stack of the ensemble", "stack of the adapter"),
        ("stack of the ensemble", "logistic regression"),
        ("stack of the adapter", "logistic regression"),
    ):
        found = paired_difference(table[first], table[second])
        higher = int((table[first] > table[second]).sum())
        print(
            f"| {first} − {second} | {found['mean']:+.3f} | {found['low']:+.3f} to {found['high']:+.3f} | "
            f"{higher} of {found['n']} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])

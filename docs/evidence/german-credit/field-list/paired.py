"""The field list against the recipe over all 10 draws at 10 %: the 6 draws of ``curve.csv`` (seeds 0, 1, 2,
5, 6, 7) and the 4 of ``seeds-3-4-8-9/curve.csv``, trained in two sessions by the same commands (the
cached cells of the first did not survive to the second, so one ``adapters curve`` could not report all
10). Paired differences with a t-interval, as ``curve.md`` reports them (``adapters.curve_report``).

    python docs/evidence/german-credit/field-list/paired.py   # writes paired.md beside this file
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from adapters.curve_report import paired_difference  # noqa: E402

SYSTEMS = {
    "adapter": "recipe (sentences)",
    "variant-list_template": "field list",
    "logistic_regression": "logistic regression",
    "hist_gradient_boosting": "gradient boosting",
    "stack": "stack (recipe + best baseline)",
}


def main() -> None:
    rows = pd.concat([pd.read_csv(HERE / "curve.csv"), pd.read_csv(HERE / "seeds-3-4-8-9" / "curve.csv")])
    rows = rows[rows["fraction"] == 0.1]
    table = rows.pivot_table(index="seed", columns="system", values="roc_auc")
    seeds = [int(seed) for seed in table.index]
    lines = [
        "# The field list against the recipe: 10 draws at 10 % (60 training rows), test ROC-AUC",
        "",
        "Made by `paired.py` from `curve.csv` (seeds 0, 1, 2, 5, 6, 7) and `seeds-3-4-8-9/curve.csv`.",
        "",
        "| system | " + " | ".join(f"s{seed}" for seed in seeds) + " | mean | sd |",
        "|---|" + "---|" * (len(seeds) + 2),
    ]
    for system, name in SYSTEMS.items():
        if system in table:
            values = table[system]
            cells = " | ".join(f"{value:.3f}" for value in values)
            lines.append(f"| {name} | {cells} | {values.mean():.3f} | {values.std(ddof=1):.3f} |")
    lines += [
        "",
        "| difference (95 % t-interval, paired by draw) | mean | low | high | higher on |",
        "|---|---|---|---|---|",
    ]
    pairs = [
        ("variant-list_template", "adapter"),
        ("adapter", "logistic_regression"),
        ("variant-list_template", "logistic_regression"),
        ("stack", "logistic_regression"),
    ]
    for first, second in pairs:
        found = paired_difference(table[first], table[second])
        wins = int((table[first] > table[second]).sum())
        lines.append(
            f"| {SYSTEMS[first]} − {SYSTEMS[second]} | {found['mean']:+.3f} | {found['low']:+.3f} | "
            f"{found['high']:+.3f} | {wins} of {found['n']} |"
        )
    (HERE / "paired.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

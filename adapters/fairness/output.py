"""What the fairness report leaves behind: ``fairness.json``, ``fairness.png``, the model card's section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FAIRNESS_FILE", "FAIRNESS_PLOT", "card_section", "write_fairness"]

FAIRNESS_FILE = "fairness.json"
FAIRNESS_PLOT = "fairness.png"


def _plot(path: Path, report: dict[str, Any]) -> None:
    """Per reported attribute: approval rate, TPR and FPR per group, adapter vs baseline side by side."""
    from matplotlib.figure import Figure

    reported = [entry for entry in report["attributes"] if entry.get("reported")]
    figure = Figure(figsize=(12, 3.4 * max(len(reported), 1)), layout="constrained")
    if not reported:
        figure.text(0.5, 0.5, "no attribute reported", ha="center", va="center")
        figure.savefig(path, dpi=100)
        return
    cuts = f"adapter {report['threshold']:.3f}"
    if report.get("baseline_threshold") is not None:
        cuts += f", {_baseline_name(report)} {report['baseline_threshold']:.3f}"
    figure.suptitle(f"Test split, {report['rows']} rows; decline when P ≥ cut-off ({cuts})", fontsize=11)
    axes = figure.subplots(len(reported), 3, squeeze=False)
    models = [name for name in ("adapter", "baseline") if name in reported[0]]
    width = 0.8 / len(models)
    positive = report.get("positive_label", "positive")
    for row, entry in zip(axes, reported, strict=True):
        names = [group["group"] for group in entry["adapter"]["groups"]]
        ticks = [
            f"{name}\n(n={group['n']})" for name, group in zip(names, entry["adapter"]["groups"], strict=True)
        ]
        for axis, metric, title in zip(
            row,
            ("approval_rate", "tpr", "fpr"),
            ("approval rate", f"TPR ({positive} declined)", f"FPR (not {positive}, declined)"),
            strict=True,
        ):
            for index, model in enumerate(models):
                # an undefined rate (no rows of that class in the group) is NaN: no bar rather than 0
                values = [
                    np.nan if group[metric] is None else group[metric] for group in entry[model]["groups"]
                ]
                label = "adapter" if model == "adapter" else _baseline_name(report)
                axis.bar(np.arange(len(names)) + index * width, values, width, label=label)
            axis.set_xticks(np.arange(len(names)) + width * (len(models) - 1) / 2, ticks, fontsize=8)
            axis.set_ylim(0, 1)
            axis.set_title(f"{entry['column']}: {title}", fontsize=10)
        row[0].legend(fontsize=8)
    figure.savefig(path, dpi=100)


def write_fairness(directory: Path, report: dict[str, Any]) -> list[Path]:
    """Write ``fairness.json`` and ``fairness.png`` into ``directory``; return their paths."""
    from adapters.artifact import write_json

    directory = Path(directory)
    write_json(directory / FAIRNESS_FILE, report)
    _plot(directory / FAIRNESS_PLOT, report)
    return [directory / FAIRNESS_FILE, directory / FAIRNESS_PLOT]


_COLUMN_WORDS = {
    "age": "age",
    "personal_status_sex": "sex/personal status",
    "foreign_worker": "foreign-worker status",
}


def _baseline_name(report: dict[str, Any]) -> str:
    return str(report.get("baseline", {}).get("name", "baseline")).replace("_", " ")


def _words(columns: list[str]) -> str:
    """``["age", "foreign_worker"]`` → "age and foreign-worker status" (other columns in backticks)."""
    named = [_COLUMN_WORDS.get(column, f"`{column}`") for column in columns]
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


def _pair(entry: dict[str, Any], key: str, group: int | None = None) -> str:
    """The adapter's value, and the baseline's after a slash when there is one."""

    def one(table: dict[str, Any]) -> str:
        value = table[key] if group is None else table["groups"][group][key]
        return "n/a" if value is None else f"{value:.2f}"

    return one(entry["adapter"]) + (f" / {one(entry['baseline'])}" if "baseline" in entry else "")


def _attribute_lines(entry: dict[str, Any], positive: str) -> list[str]:
    """One attribute: its per-group table and gaps, or why it is not reported."""
    if not entry.get("reported"):
        reason = entry["reason"].strip()
        return [f"**`{entry['column']}`** is not reported: {reason}{'' if reason[-1:] in '.!?' else '.'}", ""]
    lines = [
        f"**`{entry['column']}`**",
        "",
        f"| group | n | observed {positive} rate | mean P({positive}) | approval rate | TPR | FPR "
        "| ROC-AUC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, group in enumerate(entry["adapter"]["groups"]):
        cells = [_pair(entry, key, index) for key in ("mean_p_bad", "approval_rate", "tpr", "fpr", "roc_auc")]
        rate = "n/a" if group["bad_rate"] is None else f"{group['bad_rate']:.2f}"
        lines.append(f"| {group['group']} | {group['n']} | {rate} | {' | '.join(cells)} |")
    lines += [
        "",
        "Demographic-parity difference of the approval rate "
        f"{_pair(entry, 'demographic_parity_difference')}, ratio {_pair(entry, 'demographic_parity_ratio')}; "
        "equalized-odds difference "
        f"{_pair(entry, 'equalized_odds_difference')}.",
    ]
    if entry["left_out_of_gaps"]:
        reasons = "; ".join(f"{group}: {why}" for group, why in entry["left_out_of_gaps"].items())
        lines[-1] += f" Left out of the gaps: {reasons}."
    return [*lines, ""]


def card_section(recipe: Any, report: dict[str, Any] | None) -> str:
    """The fairness part of the card's "Bias, risks and limitations": what the input leaves out, the
    table per attribute (adapter / baseline), the attributes not reported and why, and the caveats."""
    excluded = list(recipe.data.exclude_from_text)
    lines = []
    if excluded:
        lines += [
            f"**Not in the model's input:** {_words(excluded)} (`data.exclude_from_text`: "
            f"{', '.join(f'`{c}`' for c in excluded)}). Their sentences are removed from every rendered "
            "row, in training and in prediction; the fairness report still reads them from the data.",
            "",
        ]
    if report is None:
        return "\n".join([*lines, "Fairness has not been assessed (the recipe lists no `eval.fairness`)."])
    if not excluded:
        lines += ["The attributes below are part of the model's input (no `data.exclude_from_text`).", ""]
    positive, baseline = report.get("positive_label", "bad"), report.get("baseline", {})
    lines.append(
        f"**Fairness on the test split** ({report['rows']} rows): decline when P({positive}) ≥ "
        f"{report['threshold']:.3f} (the adapter's decision threshold), approve otherwise. TPR is the share "
        f"of {positive} applicants declined, FPR the share of the others declined."
    )
    if baseline.get("skipped"):
        lines[-1] += f" No baseline: {baseline['skipped']}."
    else:
        lines[-1] += (
            f" Each cell reads adapter / {_baseline_name(report)}: the baseline is fitted on the training "
            f"split on the same {len(baseline['features'])} attributes the adapter reads, and its cut-off "
            f"{baseline['threshold']:.3f} comes from the same rule "
            f"(`eval.threshold: {report['threshold_rule']}`) on its validation scores."
        )
    lines.append("")
    for entry in report["attributes"]:
        lines += _attribute_lines(entry, positive)
    gap, limit = report.get("max_gap"), report.get("max_gap_allowed")
    if gap is not None:
        verdict = (
            ""
            if limit is None
            else f"; `eval.fairness_max_gap` {limit}: "
            + ("**exceeded**" if report["gap_exceeded"] else "within")
        )
        lines += [f"Largest gap of the adapter: {gap:.3f}{verdict}.", ""]
    sizes = [
        (g["n"], g["group"])
        for e in report["attributes"]
        if e.get("reported")
        for g in e["adapter"]["groups"]
    ]
    caveats = list(report.get("caveats", []))
    if sizes:
        n, group = min(sizes)
        caveats.append(f"The smallest group here is {group} with n = {n}.")
    lines += [f"- {caveat}" for caveat in caveats]
    lines += [
        "",
        "`fairness.json` holds every number; `fairness.png` plots approval rate, TPR and FPR per group.",
    ]
    return "\n".join(lines)

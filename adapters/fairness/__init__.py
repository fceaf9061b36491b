"""Fairness report on the test split, with fairlearn: per protected group and overall, adapter vs baseline.

A credit decision here is "decline when P(bad) ≥ threshold"; approval is its complement. Per group the
report gives n, the observed bad rate (base rate), the approval rate, TPR and FPR with bad as the
positive class (TPR: share of bad applicants declined; FPR: share of good applicants declined), ROC-AUC
(None when the group holds one class) and the mean predicted P(bad) next to the observed bad rate
(calibration within the group). Overall per attribute: demographic-parity difference and ratio of the
approval rate, and the equalized-odds difference (the larger of the TPR and FPR gaps).

Gaps are only measured where they mean something: a group below ``min_group_size`` rows is shown with
its n but left out of the gaps (in 4 rows one applicant moves a rate by 0.25), and a group holding only
good or only bad rows is left out of equalized odds (fairlearn would count its undefined TPR as 0). The
report lists each left-out group and why (``left_out_of_gaps``); an attribute with fewer than two groups
left has no gap (None).

The same table is computed for a logistic-regression baseline fitted on the same split and attributes
(:mod:`adapters.baselines`), at its own cut-off chosen by the recipe's ``eval.threshold`` rule on its
validation scores, so the comparison is between two models each used as its recipe says.

Modules: :mod:`~adapters.fairness.report` (the numbers), :mod:`~adapters.fairness.run` (a recipe's report:
checked before training, made after it and by ``adapters eval``), :mod:`~adapters.fairness.output`
(``fairness.json``, ``fairness.png``, the model card's section).
"""

from adapters.fairness.output import FAIRNESS_FILE, FAIRNESS_PLOT, card_section, write_fairness
from adapters.fairness.report import (
    CAVEATS,
    check_fairness,
    fairness_report,
    gap_warning,
    group_order,
    group_values,
    max_gap,
)
from adapters.fairness.run import applies, check_recipe_fairness, report_for_run, run_fairness

__all__ = [
    "CAVEATS",
    "FAIRNESS_FILE",
    "FAIRNESS_PLOT",
    "applies",
    "card_section",
    "check_fairness",
    "check_recipe_fairness",
    "fairness_report",
    "gap_warning",
    "group_order",
    "group_values",
    "max_gap",
    "report_for_run",
    "run_fairness",
    "write_fairness",
]

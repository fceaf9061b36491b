"""Your own CSV: a free-text column plus a label, trained with LoRA and used to score new rows.

The script first writes a small synthetic CSV (so it runs offline), then trains on it like any user file.
Run: python examples/custom_csv.py   (about 1 minute on 2 CPU cores)
"""

import random
from pathlib import Path

import pandas as pd

import adapters

# 1. A user's file: one row per application, a free-text note from the loan officer, and the outcome.
random.seed(0)
steady = [
    "steady salary for ten years",
    "owns the house outright",
    "savings cover a year of payments",
    "permanent contract as a nurse",
    "repaid two earlier loans on time",
]
risky = [
    "missed three payments last year",
    "recently lost their job",
    "several open payday loans",
    "account overdrawn every month",
    "income is irregular and undocumented",
]
rows = []
for index in range(160):
    defaulted = index % 4 == 0
    phrases = random.sample(risky if defaulted else steady, 2) + random.sample(steady + risky, 1)
    rows.append(
        {
            "application_id": f"APP-{index:04d}",
            "officer_note": "; ".join(phrases) + ".",
            "requested_amount": random.randint(500, 20000),
            "outcome": "default" if defaulted else "repaid",
        }
    )
path = Path("outputs/custom_csv/data/applications.csv")
path.parent.mkdir(parents=True, exist_ok=True)
pd.DataFrame(rows).to_csv(path, index=False)

# 2. Train: the recipe names the CSV, the text column, the label column and which label is "positive".
result = adapters.train(
    "german-credit/lora",
    {
        "name": "custom-csv",
        "data.source": str(path),
        "data.template": "{officer_note} Requested {requested_amount}.",
        "data.label_column": "outcome",
        "data.label_names": ["repaid", "default"],
        "data.positive_label": "default",
        "data.id_column": "application_id",
        "data.max_length": 64,
        "training.epochs": 3,
        "eval.cost_matrix": {"default": {"repaid": 5}, "repaid": {"default": 1}},
        "training.output_dir": "outputs/custom_csv/adapter",
    },
    overwrite=True,
)
print("test metrics:", {key: round(value, 3) for key, value in result.metrics["test"].items()})

# 3. Score new applications from a DataFrame (or adapters.predict(DIR, "new.csv", "scored.csv")).
new = pd.DataFrame(
    {
        "officer_note": [
            "permanent contract as a nurse; savings cover a year of payments.",
            "recently lost their job; several open payday loans.",
        ],
        "requested_amount": [3000, 12000],
    }
)
classifier = result.load()
print(new.assign(p_default=classifier.predict_proba(new)[:, 1].round(3), decision=classifier.predict(new)))

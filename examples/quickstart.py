"""Quickstart: train the default German-credit recipe from Python and score three new applicants.

Run: python examples/quickstart.py   (about 2 minutes on 2 CPU cores; no network needed)
"""

import pandas as pd

import adapters

# 1. Load the built-in recipe and override a few keys (dotted keys, as on the command line).
recipe = adapters.load_recipe(
    "german-credit/lora", {"training.epochs": 1, "training.output_dir": "outputs/quickstart"}
)

# 2. Train: writes the adapter, metrics.json, predictions.csv and a model card to the output dir.
result = adapters.train(recipe, overwrite=True)
print("test ROC-AUC:", round(result.metrics["test"]["roc_auc"], 3))

# 3. Score new applicants: rows with the same columns as the training data, rendered by the recipe's template.
applicants = adapters.data.load_builtin("south_german_credit").drop(columns="credit_risk").head(3).copy()
applicants["amount"] = [1500, 9000, 4000]
applicants["duration"] = [12, 48, 24]
classifier = result.load()
scores = pd.DataFrame(classifier.predict_proba(applicants), columns=classifier.label_names)
print(scores.assign(decision=classifier.predict(applicants)).round(3))

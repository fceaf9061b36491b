"""What length-grouped batches hold against shuffled ones: padding, and how alike their labels are.

Why: the recipe groups training rows of similar length into a batch (less padding). On rendered tables a
row's length follows its attribute values, so if length goes with the label, grouped batches are skewed
towards one class and the gradient is noisier: fewer wasted positions, but maybe more steps to the same
AUC (``train_vs_trainer.py``). This counts it without training: for ``--epochs`` epochs of the recipe's
own sampler and of plain shuffling, the spread of each 16-row batch's positive share (a binomial draw
would give sqrt(p(1-p)/16)) and each batch's padding.

Run: python benchmarks/batch_composition.py [--recipe german-credit/lora] [--epochs 30]   (seconds)
Writes benchmarks/results/batch_composition.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import REPO, machine


def batch_figures(order: np.ndarray, lengths: np.ndarray, positive: np.ndarray, size: int) -> dict:
    batches = [order[start : start + size] for start in range(0, len(order) - size + 1, size)]
    shares = np.array([positive[batch].mean() for batch in batches])
    real = sum(lengths[batch].sum() for batch in batches)
    computed = sum(len(batch) * lengths[batch].max() for batch in batches)
    return {"sd_positive_share": float(shares.std()), "padding": float(1 - real / computed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="german-credit/lora")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--output", default=str(REPO / "benchmarks/results/batch_composition.json"))
    args = parser.parse_args()
    from transformers import AutoTokenizer

    import adapters
    from adapters.base_model import resolve_base_model
    from adapters.data import prepare_data, resolve_data_config
    from adapters.data.tokenize import EpochSeededLengthGroupedSampler, tokenize_splits
    from adapters.scoring import metric_kwargs

    recipe = adapters.load_recipe(args.recipe)
    data_config = resolve_data_config(recipe.data)
    prepared = prepare_data(data_config, task=recipe.task)
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(recipe.model.name_or_path)[0])
    train = tokenize_splits(prepared.to_datasets(), tokenizer, data_config.max_length)["train"]
    positive_id = metric_kwargs(recipe, prepared.label_names)["positive_label"]
    lengths = np.array(list(train["length"]))
    positive = np.array(list(train["label"])) == positive_id
    size, seed = recipe.training.per_device_batch_size, recipe.training.seed
    orders = {"grouped": [], "shuffled": []}  # the training sampler, training.group_by_length true / false
    for name, by_length in (("grouped", True), ("shuffled", False)):
        sampler = EpochSeededLengthGroupedSampler(list(lengths), size, seed, by_length)
        for epoch in range(args.epochs):
            sampler.set_epoch(epoch)
            orders[name].append(batch_figures(np.array(list(sampler)), lengths, positive, size))
    grouped, shuffled = orders["grouped"], orders["shuffled"]
    rate = float(positive.mean())
    record = {
        "machine": machine(),
        "recipe": args.recipe,
        "rows": len(lengths),
        "batch_size": size,
        "epochs": args.epochs,
        "length_mean": float(lengths.mean()),
        "length_sd": float(lengths.std()),
        "corr_length_positive": float(np.corrcoef(lengths, positive)[0, 1]),
        "binomial_sd_positive_share": (rate * (1 - rate) / size) ** 0.5,
        **{
            f"{name}_{key}": float(np.mean([figures[key] for figures in runs]))
            for name, runs in (("grouped", grouped), ("shuffled", shuffled))
            for key in ("sd_positive_share", "padding")
        },
    }
    print(
        f"{record['rows']} rows, length {record['length_mean']:.1f} ± {record['length_sd']:.1f} tokens, "
        f"correlation of length with the positive class {record['corr_length_positive']:+.3f}"
    )
    print(
        f"sd of a batch's positive share: length-grouped {record['grouped_sd_positive_share']:.3f}, "
        f"shuffled {record['shuffled_sd_positive_share']:.3f} "
        f"(binomial {record['binomial_sd_positive_share']:.3f}); "
        f"ratio {record['grouped_sd_positive_share'] / record['shuffled_sd_positive_share']:.2f}"
    )
    print(
        f"padding: length-grouped {record['grouped_padding']:.1%}, shuffled {record['shuffled_padding']:.1%}"
    )
    Path(args.output).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print("wrote", args.output)


if __name__ == "__main__":
    main()

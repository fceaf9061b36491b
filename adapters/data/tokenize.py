"""Tokenize once, pad per batch, and batch by length so little padding is ever computed.

On a CPU the forward pass costs what the padded batch costs: grouping similar lengths (training) and
sorting by length (evaluation) is the cheapest speed-up there is.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader

from adapters.hub import quiet_loading

__all__ = ["tokenize_splits", "make_dataloader"]


def tokenize_splits(splits: Any, tokenizer: Any, max_length: int) -> Any:
    """Tokenize every split once (no padding); keep ``row_id``, ``label`` and a ``length`` column."""

    def encode(batch: dict[str, list]) -> dict[str, list]:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    with quiet_loading():  # seconds at most; the training bar (or --no-progress) speaks for the run
        return splits.map(encode, batched=True, remove_columns=["text"])


def _collator(tokenizer: Any):
    from transformers import DataCollatorWithPadding

    pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=None)

    def collate(features: list[dict[str, Any]]) -> dict[str, Any]:
        row_ids = [int(feature.pop("row_index")) for feature in features]
        for feature in features:
            feature.pop("row_id", None)
            feature.pop("length", None)
        batch = pad(features)
        batch["row_index"] = torch.tensor(row_ids)
        return batch

    return collate


def make_dataloader(dataset: Any, tokenizer: Any, batch_size: int, train: bool, seed: int = 0) -> DataLoader:
    """Training: length-grouped shuffled batches. Evaluation: sorted by length, order kept in ``row_index``.

    ``row_index`` (the position in the split) travels with each batch so predictions gathered from
    several processes can be put back in row order.
    """
    from transformers.trainer_pt_utils import LengthGroupedSampler

    dataset = dataset.add_column("row_index", list(range(len(dataset))))
    columns = [name for name in dataset.column_names if name not in ("row_id",)]
    dataset = dataset.with_format(columns=columns)
    if train:
        generator = torch.Generator().manual_seed(seed)
        sampler = LengthGroupedSampler(batch_size, lengths=list(dataset["length"]), generator=generator)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=_collator(tokenizer))
    lengths = list(dataset["length"])
    order = sorted(range(len(dataset)), key=lengths.__getitem__)
    return DataLoader(
        dataset.select(order), batch_size=batch_size, shuffle=False, collate_fn=_collator(tokenizer)
    )

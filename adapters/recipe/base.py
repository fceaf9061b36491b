"""What every recipe section shares: strict keys, and label names read as strings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


def label_name(value: Any) -> str:
    """Label names are strings; numbers are accepted (CSV labels 0/1), YAML booleans are refused."""
    if isinstance(value, bool):
        raise ValueError(f"label {value!r} was read as a YAML boolean; quote it (e.g. 'yes', 'no')")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


class Section(BaseModel):
    """A recipe section: a typo in a key is an error, and assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

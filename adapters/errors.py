"""The one exception type for mistakes a user can fix (bad recipe key, missing column, bad file).

Anything else raised inside the package is a bug and keeps its traceback; the CLI turns an
``AdaptersUserError`` into a single line and exit code 2.
"""

from __future__ import annotations

__all__ = ["AdaptersUserError"]


class AdaptersUserError(ValueError):
    """A user error, with ``where`` naming the file, row, column or recipe key at fault."""

    def __init__(self, message: str, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)

"""The one exception type for mistakes a user can fix (bad recipe key, missing column, bad file).

Anything else raised inside the package is a bug and keeps its traceback; the CLI turns an
``AdaptersUserError`` into a single line and exit code 2.
"""

from __future__ import annotations

__all__ = ["AdaptersUserError"]

# What str.splitlines() splits on. Messages quote user content (a CSV header, a YAML key, a cell) that
# may hold any of these; escaped, the error stays one line.
_LINE_BREAKS = {ord(char): repr(char)[1:-1] for char in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def _one_line(text: str) -> str:
    return text.translate(_LINE_BREAKS)


class AdaptersUserError(ValueError):
    """A user error, with ``where`` naming the file, row, column or recipe key at fault."""

    def __init__(self, message: str, where: str | None = None) -> None:
        self.message = _one_line(message)
        self.where = _one_line(where) if where else where
        super().__init__(f"{self.where}: {self.message}" if self.where else self.message)

"""Where a piece of source is: the one IR record of `errors`, kept in its
own module so that importing `errors` stays cheap."""

from __future__ import annotations

from .model import Model


class Span(Model, frozen=True):
    """A region of a source file; lines and columns are 1-based, `end_*`
    points one past the last character."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

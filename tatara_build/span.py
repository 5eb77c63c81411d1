"""Where a piece of source is: the one pydantic model of `errors`, kept in
its own module so that importing `errors` does not import pydantic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Span(BaseModel):
    """A region of a source file; lines and columns are 1-based, `end_*`
    points one past the last character."""

    # defer_build: the frontend builds spans without validation (ir.trusted),
    # so `check` never needs the validator; building it at import was a
    # third of the time of checking a small file.
    model_config = ConfigDict(frozen=True, defer_build=True)

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

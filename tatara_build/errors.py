"""Errors are values with spans, created where a problem is found and rendered
once, by the CLI. Every stage raises `TataraError` (or a subclass); nothing
else may escape to the user.

`Span` is a pydantic model (it is part of the IR) and lives in `span.py`:
importing this module must stay cheap, because the CLI imports it for
`--help` and usage errors, where pydantic is never needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .span import Span


class ExitCode(IntEnum):
    OK = 0
    USER = 1  # error in the .tlisp source
    USAGE = 2  # bad command line (typer's own code)
    TOOLCHAIN = 3  # missing or mismatched toolchain, environment
    REJECTED = 4  # verifier rejection or failed packet test
    VM = 5  # VM failure or timeout


@dataclass
class Diagnostic:
    message: str
    span: Span | None = None
    notes: list[str] = field(default_factory=list)

    def render(self, source: str | None = None) -> str:
        where = f"{self.span}: " if self.span else ""
        out = [f"{where}error: {self.message}"]
        if self.span is not None:
            text = source if source is not None else _read(self.span.file)
            lines = text.splitlines() if text is not None else []
            if 0 < self.span.line <= len(lines):
                line = lines[self.span.line - 1]
                width = (
                    self.span.end_col - self.span.col
                    if self.span.end_line == self.span.line
                    else len(line) - self.span.col + 1
                )
                gutter = f"{self.span.line:>4} | "
                out.append(f"{gutter}{line}")
                # Keep tabs in the padding so the caret lines up under them.
                pad = "".join(c if c == "\t" else " " for c in line[: self.span.col - 1])
                out.append(" " * len(gutter) + pad + "^" + "~" * max(0, width - 1))
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


class TataraError(Exception):
    """One or more diagnostics plus the exit code they call for."""

    exit_code: ExitCode = ExitCode.USER

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic | str, span: Span | None = None):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(diagnostics, span)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = diagnostics
        super().__init__("\n".join(d.message for d in diagnostics))

    def render(self, source: str | None = None) -> str:
        return "\n".join(d.render(source) for d in self.diagnostics)


class SourceError(TataraError):
    exit_code = ExitCode.USER


class UsageError(TataraError):
    """A bad command-line value found after parsing (e.g. an unpinned --kernel)."""

    exit_code = ExitCode.USAGE


class ToolchainError(TataraError):
    exit_code = ExitCode.TOOLCHAIN


class RejectedError(TataraError):
    exit_code = ExitCode.REJECTED


class VmError(TataraError):
    exit_code = ExitCode.VM


def __getattr__(name: str):
    # `from tatara_build.errors import Span` keeps working, but pydantic is
    # imported only by the modules that build spans (reader, IR, checker).
    if name == "Span":
        from .span import Span

        return Span
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Errors are values with spans, created where a problem is found and rendered
once, by the CLI. Every stage raises `TataraError` (or a subclass); nothing
else may escape to the user.

`Span` is an IR record (model.py) and lives in `span.py`: importing this
module must stay cheap, because the CLI imports it for `--help` and usage
errors."""

from __future__ import annotations

from .records import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .span import Span


def suggestion(word: str, known) -> list[str]:
    """A `did you mean` note for the known name closest to `word`, if any is close."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1)
    return [f"did you mean `{close[0]}`?"] if close else []


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
        where = f"{visible(str(self.span), keep='')}: " if self.span else ""
        out = [f"{where}error: {shorten(visible(self.message))}"]
        if self.span is not None:
            text = source if source is not None else _read(self.span.file)
            # The reader ends lines at \n only; so does the line shown here
            # (splitlines would also split at \r, \f, U+2028, …).
            lines = text.split("\n") if text is not None else []
            if 0 < self.span.line <= len(lines):
                line = lines[self.span.line - 1]
                start = max(0, self.span.col - 1 - CONTEXT_BEFORE)  # a window around a long line
                shown = line[start : self.span.col - 1 + CONTEXT_AFTER]
                prefix = line[start : self.span.col - 1]
                width = (
                    self.span.end_col - self.span.col
                    if self.span.end_line == self.span.line
                    else len(line) - self.span.col + 1
                )
                width = max(1, min(width, len(shown) - len(prefix)))
                gutter = f"{self.span.line:>4} | "
                lead, tail = ("…" if start else ""), ("…" if len(line) > start + len(shown) else "")
                out.append(f"{gutter}{lead}{visible(shown)}{tail}")
                # Keep tabs in the padding so the caret lines up under them.
                pad = "".join(c if c == "\t" else " " * len(visible(c)) for c in prefix)
                underlined = sum(len(visible(c)) for c in line[self.span.col - 1 : self.span.col - 1 + width])
                out.append(" " * (len(gutter) + len(lead)) + pad + "^" + "~" * max(0, underlined - 1))
        out += [f"  note: {shorten(visible(n))}" for n in self.notes]
        return "\n".join(out)


# How much of a long source line is shown around the error, in characters.
CONTEXT_BEFORE = 60
CONTEXT_AFTER = 120
LONGEST_WORD = 120  # a longer run of non-blanks in a message is cut in the middle
_INVISIBLE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def visible(text: str, keep: str = "\n\t") -> str:
    """Control and format characters (ESC, BEL, \r, U+2028, bidi overrides)
    escaped, so a source can never drive the terminal; those in `keep` stay
    (a file name keeps none: a newline in it would split its line)."""
    import unicodedata

    if text.isprintable():
        return text
    out = []
    for c in text:
        if c in keep or unicodedata.category(c) not in _INVISIBLE:
            out.append(c)
        else:
            out.append(f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}" if ord(c) < 0x10000
                       else f"\\U{ord(c):08x}")
    return "".join(out)


def shorten(text: str) -> str:
    """A message quoting a 1 MB token shows its start and end, not all of it."""
    import re

    return re.sub(r"\S{%d,}" % (LONGEST_WORD + 1),
                  lambda m: f"{m.group()[:LONGEST_WORD - 30]}…({len(m.group())} characters)…{m.group()[-20:]}",
                  text)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:  # keep \r as the reader saw it
            return f.read(1 << 24).removeprefix("\ufeff")  # as frontend.load reads it
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
    """A command line that cannot be carried out as given (an output path that
    is not ours, an option value out of range, an input that is no file, an unpinned --kernel)."""

    exit_code = ExitCode.USAGE


class ToolchainError(TataraError):
    exit_code = ExitCode.TOOLCHAIN


class RejectedError(TataraError):
    exit_code = ExitCode.REJECTED


class VmError(TataraError):
    exit_code = ExitCode.VM


def __getattr__(name: str):
    # `from tatara_build.errors import Span` keeps working; the IR's record
    # base is imported only by the modules that build spans.
    if name == "Span":
        from .span import Span

        return Span
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

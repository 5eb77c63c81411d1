"""tatara-lisp reader: text -> s-expressions (`Datum`s), every one with a span.

Syntax: `;` comments to end of line, `( )` lists, quote prefixes `'` `` ` ``
`,` `,@` (read as `(quote x)`, `(quasiquote x)`, `(unquote x)`,
`(unquote-splicing x)`), strings with `\\n \\t \\r \\" \\\\` escapes (one
line; a raw newline ends the string with an error), `#t` / `#f`,
`:keywords`, integers (decimal or `0x` hex, optionally negative, within
i64/u64 range) and symbols (any other run of non-delimiter characters).
Only `\\n` ends a line, so columns match what editors show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import Diagnostic, SourceError, Span

# Deeper nesting than this is rejected so later stages can recurse safely.
MAX_DEPTH = 64
INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Datum:
    span: Span


@dataclass(frozen=True, slots=True)
class Symbol(Datum):
    name: str


@dataclass(frozen=True, slots=True)
class Keyword(Datum):
    name: str  # without the leading colon


@dataclass(frozen=True, slots=True)
class String(Datum):
    value: str


@dataclass(frozen=True, slots=True)
class Integer(Datum):
    value: int


@dataclass(frozen=True, slots=True)
class Boolean(Datum):
    value: bool


@dataclass(frozen=True, slots=True)
class SList(Datum):
    items: tuple[Datum, ...]

    @property
    def head(self) -> str | None:
        """The name of the leading symbol, if any."""
        return self.items[0].name if self.items and isinstance(self.items[0], Symbol) else None


QUOTES = {"'": "quote", "`": "quasiquote", ",": "unquote", ",@": "unquote-splicing"}

_TOKEN = re.compile(
    r"""
    (?P<newline>\n)
  | (?P<space>[ \t\r\f\v]+)
  | (?P<comment>;[^\n]*)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<quote>,@|['`,])
  | (?P<string>"(?:[^"\\\n]|\\[^\n])*")
  | (?P<badstring>"(?:[^"\\\n]|\\[^\n])*\\?)
  | (?P<atom>[^\s()";'`,]+)
  | (?P<other>.)
    """,
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_INT = re.compile(r"-?(?:0[xX][0-9a-fA-F]+|[0-9]+)")
_NUMBERISH = re.compile(r"-?[0-9]")


def read(text: str, file: str = "<input>") -> list[Datum]:
    """Read every top-level datum of `text`; raise SourceError on bad syntax."""
    return _Reader(text, file).read_all()


class _Reader:
    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file

    def span(self, line: int, col: int, end_line: int, end_col: int) -> Span:
        # model_construct skips validation: the reader builds many spans.
        return Span.model_construct(file=self.file, line=line, col=col, end_line=end_line, end_col=end_col)

    def fail(self, message: str, span: Span, *notes: str) -> SourceError:
        return SourceError(Diagnostic(message, span, list(notes)))

    def read_all(self) -> list[Datum]:
        # Stack of open lists: (items, opening span, pending quote prefixes).
        top: list[Datum] = []
        stack: list[tuple[list[Datum], Span, list[tuple[str, Span]]]] = []
        items = top
        quotes: list[tuple[str, Span]] = []  # prefixes waiting for their datum
        line, line_start = 1, 0

        def finish(datum: Datum) -> None:
            while quotes:
                name, qspan = quotes.pop()
                span = self.span(qspan.line, qspan.col, datum.span.end_line, datum.span.end_col)
                datum = SList(span, (Symbol(qspan, name), datum))
            items.append(datum)

        for m in _TOKEN.finditer(self.text):
            kind = m.lastgroup
            start, end = m.span()
            col = start - line_start + 1
            if kind == "newline":
                line, line_start = line + 1, end
                continue
            if kind in ("space", "comment"):
                continue
            span = self.span(line, col, line, end - line_start + 1)
            if kind == "open":
                if len(stack) >= MAX_DEPTH:
                    raise self.fail(f"lists nested more than {MAX_DEPTH} deep", span)
                stack.append((items, span, quotes))
                items, quotes = [], []
            elif kind == "close":
                if not stack:
                    raise self.fail("unexpected `)` with no matching `(`", span)
                if quotes:
                    raise self.fail(f"quote prefix `{quotes[-1][0]}` has nothing to quote", quotes[-1][1])
                inner = items
                items, open_span, quotes = stack.pop()
                finish(SList(self.span(open_span.line, open_span.col, line, span.end_col), tuple(inner)))
            elif kind == "quote":
                quotes.append((QUOTES[m.group()], span))
            elif kind == "string":
                finish(String(span, self.unescape(m.group()[1:-1], span)))
            elif kind == "badstring":
                raise self.fail("unterminated string (strings end on the same line)", span)
            elif kind == "atom":
                finish(self.atom(m.group(), span))
            else:
                raise self.fail(f"unexpected character {m.group()!r}", span)
        if quotes:
            raise self.fail(f"quote prefix `{quotes[-1][0]}` has nothing to quote", quotes[-1][1])
        if stack:
            open_span = stack[-1][1]
            raise self.fail("unclosed `(`: no matching `)` before the end of the file", open_span)
        return top

    def unescape(self, body: str, span: Span) -> str:
        def replace(m: re.Match[str]) -> str:
            ch = m.group(1)
            if ch not in _ESCAPES:
                col = span.col + 1 + m.start()
                raise self.fail(
                    f"unknown escape `\\{ch}` in string",
                    self.span(span.line, col, span.line, col + 2),
                    "known escapes: \\n \\t \\r \\\" \\\\",
                )
            return _ESCAPES[ch]

        return _ESCAPE.sub(replace, body)

    def atom(self, text: str, span: Span) -> Datum:
        if text in ("#t", "#f"):
            return Boolean(span, text == "#t")
        if text.startswith("#"):
            raise self.fail(f"unknown `#` syntax `{text}`; only #t and #f exist", span)
        if text.startswith(":"):
            if len(text) == 1:
                raise self.fail("`:` must be followed by a keyword name", span)
            return Keyword(span, text[1:])
        if _NUMBERISH.match(text):
            if not _INT.fullmatch(text):
                raise self.fail(f"malformed integer `{text}`", span, "integers are decimal or 0x hex, e.g. 42, -7, 0xff")
            # Length first: int() refuses very long digit strings itself.
            value = None if len(text) > 24 else int(text, 16 if "x" in text.lower() else 10)
            if value is None or not INT_MIN <= value <= INT_MAX:
                raise self.fail(f"integer `{text}` is out of range (i64 min to u64 max)", span)
            return Integer(span, value)
        return Symbol(span, text)

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
    # (file, line, col, end_line, end_col); the pydantic Span is built only
    # when asked for (most data never need one, and building them dominated
    # reading time).
    pos: tuple[str, int, int, int, int]

    @property
    def span(self) -> Span:
        file, line, col, end_line, end_col = self.pos
        return Span(file=file, line=line, col=col, end_line=end_line, end_col=end_col)


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

    def fail(self, message: str, pos: tuple[str, int, int, int, int], *notes: str) -> SourceError:
        file, line, col, end_line, end_col = pos
        span = Span(file=file, line=line, col=col, end_line=end_line, end_col=end_col)
        return SourceError(Diagnostic(message, span, list(notes)))

    def read_all(self) -> list[Datum]:
        # Stack of open lists: (items, opening span, pending quote prefixes).
        top: list[Datum] = []
        Pos = tuple[str, int, int, int, int]
        stack: list[tuple[list[Datum], Pos, list[tuple[str, Pos]]]] = []
        items = top
        quotes: list[tuple[str, Pos]] = []  # prefixes waiting for their datum
        file = self.file
        line, line_start = 1, 0

        def finish(datum: Datum) -> None:
            while quotes:
                name, qpos = quotes.pop()
                datum = SList((file, qpos[1], qpos[2], datum.pos[3], datum.pos[4]), (Symbol(qpos, name), datum))
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
            span = (file, line, col, line, end - line_start + 1)
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
                finish(SList((file, open_span[1], open_span[2], line, span[4]), tuple(inner)))
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

    def unescape(self, body: str, pos: tuple[str, int, int, int, int]) -> str:
        if "\\" not in body:
            return body

        def replace(m: re.Match[str]) -> str:
            ch = m.group(1)
            if ch not in _ESCAPES:
                col = pos[2] + 1 + m.start()
                raise self.fail(
                    f"unknown escape `\\{ch}` in string",
                    (pos[0], pos[1], col, pos[1], col + 2),
                    "known escapes: \\n \\t \\r \\\" \\\\",
                )
            return _ESCAPES[ch]

        return _ESCAPE.sub(replace, body)

    def atom(self, text: str, span: tuple[str, int, int, int, int]) -> Datum:
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

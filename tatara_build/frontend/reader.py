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
from ..records import dataclass

from ..errors import Diagnostic, SourceError, Span
from ..ir import trusted

# Deeper nesting than this is rejected so later stages can recurse safely.
MAX_DEPTH = 64
INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1


_new_span = trusted.Span  # unvalidated: the reader made the numbers


def span_of(pos: tuple[str, int, int, int, int]) -> Span:
    file, line, col, end_line, end_col = pos
    return _new_span(file=file, line=line, col=col, end_line=end_line, end_col=end_col)


# Data are never changed after reading; they are not `frozen` only because
# frozen dataclasses take 2.5x as long to build, and a file has ~25 per line.
@dataclass(slots=True)
class Datum:
    # (file, line, col, end_line, end_col); the pydantic Span is built only
    # when asked for (most data never need one, and building them dominated
    # reading time).
    pos: tuple[str, int, int, int, int]

    @property
    def span(self) -> Span:
        file, line, col, end_line, end_col = self.pos  # span_of, inlined: hot
        return _new_span(file=file, line=line, col=col, end_line=end_line, end_col=end_col)


@dataclass(slots=True)
class Symbol(Datum):
    name: str


@dataclass(slots=True)
class Keyword(Datum):
    name: str  # without the leading colon


@dataclass(slots=True)
class String(Datum):
    value: str


@dataclass(slots=True)
class Integer(Datum):
    value: int


@dataclass(slots=True)
class Boolean(Datum):
    value: bool


@dataclass(slots=True)
class SList(Datum):
    items: tuple[Datum, ...]

    @property
    def head(self) -> str | None:
        """The name of the leading symbol, if any."""
        return self.items[0].name if self.items and isinstance(self.items[0], Symbol) else None


QUOTES = {"'": "quote", "`": "quasiquote", ",": "unquote", ",@": "unquote-splicing"}

# One token per match, classified by the regex itself: the common atoms
# (plain symbols, keywords, short decimal integers) get their own groups, so
# the Python loop does no re-scanning; anything unusual (hex, long integers,
# `#…`, a lone `:`, malformed numbers) is an `atom`, sorted out by `atom()`.
# Lines are read one at a time (no token spans a line), so the leading
# blanks are part of the match and the column is the group's start.
_DELIM = r"""[^\s()";'`,]"""
_TOKEN = re.compile(
    rf"""
    [ \t\r\f\v]*
    (?:
        (?P<symbol>[^\s()";'`,\#:0-9-]{_DELIM}*|-(?![0-9]){_DELIM}*)
      | (?P<open>\()
      | (?P<close>\))
      | (?P<keyword>:{_DELIM}+)
      | (?P<int>-?[0-9]{{1,18}}(?!{_DELIM}))
      | (?P<comment>;.*)
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<badstring>"(?:[^"\\]|\\.)*\\?)
      | (?P<quote>,@|['`,])
      | (?P<atom>{_DELIM}+)
      | (?P<other>.)
      | (?P<eol>$)
    )
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


Pos = tuple[str, int, int, int, int]  # file, line, col, end line, end col


class _Reader:
    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file

    def fail(self, message: str, pos: tuple[str, int, int, int, int], *notes: str) -> SourceError:
        file, line, col, end_line, end_col = pos
        span = Span(file=file, line=line, col=col, end_line=end_line, end_col=end_col)
        return SourceError(Diagnostic(message, span, list(notes)))

    def read_all(self) -> list[Datum]:
        self.top: list[Datum] = []
        self.items = self.top  # the list being read
        # Open lists: (their items so far, opening span, quote prefixes waiting outside them).
        self.stack: list[tuple[list[Datum], Pos, list[tuple[str, Pos]]]] = []
        self.quotes: list[tuple[str, Pos]] = []  # prefixes waiting for their datum
        file = self.file
        for line, text in enumerate(self.text.split("\n"), 1):
            for m in _TOKEN.finditer(text):
                kind = m.lastgroup
                start, end = m.span(kind)
                span = (file, line, start + 1, line, end + 1)
                if kind == "symbol":  # the most frequent tokens, then line ends: no call
                    datum = Symbol(span, m[kind])
                elif kind == "eol":
                    continue
                else:
                    datum = self.token(kind, m[kind], span)
                    if datum is None:
                        continue
                while self.quotes:
                    name, qpos = self.quotes.pop()
                    datum = SList((file, qpos[1], qpos[2], datum.pos[3], datum.pos[4]), (Symbol(qpos, name), datum))
                self.items.append(datum)
        if self.quotes:
            raise self.fail(f"quote prefix `{self.quotes[-1][0]}` has nothing to quote", self.quotes[-1][1])
        if self.stack:
            raise self.fail("unclosed `(`: no matching `)` before the end of the file", self.stack[-1][1])
        return self.top

    def token(self, kind: str, text: str, span: Pos) -> Datum | None:
        """The datum a token finishes, or None (a list opened, a quote
        prefix, a comment or the end of a line)."""
        if kind == "open":
            if len(self.stack) >= MAX_DEPTH:
                raise self.fail(f"lists nested more than {MAX_DEPTH} deep", span)
            self.stack.append((self.items, span, self.quotes))
            self.items, self.quotes = [], []
            return None
        if kind == "close":
            return self.close(span)
        if kind == "keyword":
            return Keyword(span, text[1:])
        if kind == "int":
            return Integer(span, int(text))
        if kind in ("eol", "comment"):
            return None
        if kind == "quote":
            self.quotes.append((QUOTES[text], span))
            return None
        if kind == "string":
            return String(span, self.unescape(text[1:-1], span))
        if kind == "badstring":
            raise self.fail("unterminated string (strings end on the same line)", span)
        if kind == "atom":
            return self.atom(text, span)
        raise self.fail(f"unexpected character {text!r}", span)

    def close(self, span: Pos) -> SList:
        if not self.stack:
            raise self.fail("unexpected `)` with no matching `(`", span)
        if self.quotes:
            raise self.fail(f"quote prefix `{self.quotes[-1][0]}` has nothing to quote", self.quotes[-1][1])
        inner = self.items
        self.items, open_span, self.quotes = self.stack.pop()
        return SList((self.file, open_span[1], open_span[2], span[1], span[4]), tuple(inner))

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

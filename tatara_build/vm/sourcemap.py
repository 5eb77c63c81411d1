"""Map a verifier rejection back to source: the verifier prints the source
line of each instruction from BTF line info (`; if (tcp->syn) @ f.c:31` on
newer kernels, without the `@ …` on 6.1); the generated source carries
trailing `/* file.tlisp:L:C */` (C) or `// file.tlisp:L:C` (Rust) markers
naming the form each line came from (`L:C` alone when the file name is not
plain enough to print)."""

from __future__ import annotations

import re
from pathlib import Path

from ..backends import dialects

_SOURCE_LINE = re.compile(r"^; (?P<text>.*?)(?: @ (?P<file>[^:@\s]+):(?P<line>\d+))?$")
# A span marker in any dialect's comment syntax.
_OPENERS = "|".join(sorted({re.escape(d.comment[0].strip()) for d in dialects().values() if d.comment[0]}))
_MARKER = re.compile(rf"(?:{_OPENERS}) *(?P<span>(?:[A-Za-z0-9._+-]+\.tlisp:)?\d+:\d+)\b")


def failing_line(log: str) -> tuple[str, int | None] | None:
    """The source text (and line number, when the kernel gives it) of the
    last instruction the verifier looked at."""
    last = None
    for line in log.splitlines():
        if m := _SOURCE_LINE.match(line):
            last = (m["text"].strip(), int(m["line"]) if m["line"] else None)
    return last


def tlisp_span(generated: list[Path], text: str, line_no: int | None) -> str | None:
    """The marker on the failing line itself (BTF line info carries the
    whole line), else the nearest one above it in the same function of the
    generated file that has that line."""
    if m := _MARKER.search(text):
        return m["span"]
    for path in generated:
        if path.is_file() and (span := _span_in(path, text, line_no)):
            return span
    return None


def last_span_in_log(log: str) -> str | None:
    """The last marker among the source lines the verifier printed: the
    form the failing path went through last (used when the failing line
    itself is generated glue, e.g. the aya macro's wrapper around `exit`)."""
    spans = [m["span"] for line in log.splitlines() if (s := _SOURCE_LINE.match(line)) and (m := _MARKER.search(s["text"]))]
    return spans[-1] if spans else None


def with_file(span: str, source: Path | None) -> str:
    """`L:C` markers leave the file name out; the job knows it."""
    if source is not None and re.fullmatch(r"\d+:\d+", span):
        return f"{source.name}:{span}"
    return span


def source_line(span: str, source: Path | None) -> str | None:
    """The `.tlisp` line a span points at (read from the job's source)."""
    m = re.search(r"(\d+):\d+$", span)
    if source is None or m is None or not source.is_file():
        return None
    lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
    n = int(m[1])
    return lines[n - 1] if 0 < n <= len(lines) else None


def _span_in(path: Path, text: str, line_no: int | None) -> str | None:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if line_no is None or not 0 < line_no <= len(lines) or text not in lines[line_no - 1]:
        matches = [i + 1 for i, line in enumerate(lines) if line.strip() == text]
        if len(matches) != 1:
            return None
        line_no = matches[0]
    for i in range(line_no - 1, -1, -1):
        if m := _MARKER.search(lines[i]):
            return m["span"]
        if i < line_no - 1 and lines[i][:1] not in ("", " ", "\t", "{"):
            return None  # a function boundary: markers above belong to another function
    return None

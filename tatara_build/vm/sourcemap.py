"""Map a verifier rejection back to source: the verifier prints the source
line of each instruction from BTF line info (`; if (tcp->syn) @ f.c:31` on
newer kernels, without the `@ …` on 6.1); the generated source carries
`/* file.tlisp:L:C */` markers that name the form each line came from."""

from __future__ import annotations

import re
from pathlib import Path

_SOURCE_LINE = re.compile(r"^; (?P<text>.*?)(?: @ (?P<file>[^:@\s]+):(?P<line>\d+))?$")
_MARKER = re.compile(r"(?P<span>[\w.+-]+\.tlisp:\d+:\d+)")


def failing_line(log: str) -> tuple[str, int | None] | None:
    """The source text (and line number, when the kernel gives it) of the
    last instruction the verifier looked at."""
    last = None
    for line in log.splitlines():
        if m := _SOURCE_LINE.match(line):
            last = (m["text"].strip(), int(m["line"]) if m["line"] else None)
    return last


def tlisp_span(generated: list[Path], text: str, line_no: int | None) -> str | None:
    """The nearest `.tlisp:L:C` marker at or above the generated line (in the
    one generated file that has that line)."""
    for path in generated:
        if path.is_file() and (span := _span_in(path, text, line_no)):
            return span
    return None


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
    return None

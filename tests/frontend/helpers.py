"""Small builders for frontend tests: a program around a body, and where a
snippet sits in the source (1-based line, col) to compare with spans."""

from tatara_build.check import check
from tatara_build.errors import SourceError
from tatara_build.frontend import parse

PRELUDE = """\
(defbpf-map counts :kind :hash :key u32 :value u64 :max-entries 16)
(defbpf-map arr :kind :array :key u32 :value u64 :max-entries 4)
(defbpf-map events :kind :ring-buf :max-entries 4096)
(defbpf-program p :kind {kind} :attach (:target "{target}") :uses-maps (counts arr events))
(bpf-fn p (ctx)
"""


def program(body: str, kind: str = ":xdp", target: str = "eth0") -> str:
    return PRELUDE.format(kind=kind, target=target) + body + ")\n"


def position(text: str, snippet: str) -> tuple[int, int]:
    offset = text.index(snippet)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def problems(text: str) -> list[tuple[str, int, int]]:
    """Diagnostics of load+check as (message, line, col); [] when accepted."""
    try:
        check(parse(text, "t.tlisp"))
    except SourceError as err:
        return [(d.message, d.span.line if d.span else 0, d.span.col if d.span else 0) for d in err.diagnostics]
    return []


def checked(text: str):
    return check(parse(text, "t.tlisp"))

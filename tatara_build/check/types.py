"""Type names the checker writes into `Node.type`, and how they combine."""

from __future__ import annotations

from .. import structs, tables

UNIT = "unit"  # no value (map-set, if without else, loop)
NEVER = "never"  # does not continue (return, break): unifies with anything
ERROR = "?"  # already reported: unifies with anything, never reported again
BOOL = "bool"
INT_TYPES = tables.INT_TYPES


def is_int(t: str) -> bool:
    return t in INT_TYPES


def is_scalar(t: str) -> bool:
    return t in INT_TYPES or t == BOOL


def header(name: str) -> str:
    return f"header:{name}"


def option(inner: str) -> str:
    return f"option:{inner}"


def array(elem: str, n: int) -> str:
    return f"array:{elem}:{n}"


def array_parts(t: str) -> tuple[str, int] | None:
    """`array:u8:16` -> ("u8", 16); None for any other type."""
    if not t.startswith("array:"):
        return None
    elem, _, n = t.removeprefix("array:").rpartition(":")
    return elem, int(n)


def size_of(t: str) -> int | None:
    """Bytes of a value of type `t` as C lays it out (None: not a stored value)."""
    if t in INT_TYPES:
        return INT_TYPES[t].bits // 8
    if t == BOOL:
        return 1
    parts = array_parts(t)
    if parts is not None:
        elem = size_of(parts[0])
        return None if elem is None else elem * parts[1]
    return None


def header_name(t: str) -> str | None:
    return t[len("header:"):] if t.startswith("header:") else None


def slot_bytes(t: str, layouts: dict | None = None) -> int:
    """Stack bytes one variable or temporary of type `t` may take: the BPF
    stack is used in 8-byte slots, so every scalar is counted as 8; an
    lpm-trie key (`lpm-key:N`, a u32 prefix length + N address bytes) and a
    struct value (its C size) as the slots they span."""
    if t.startswith("lpm-key:"):
        return (4 + int(t.removeprefix("lpm-key:")) + 7) // 8 * 8
    name = structs.struct_name(t)
    if name is not None and layouts and name in layouts:
        return (layouts[name].size + 7) // 8 * 8
    size = size_of(t)
    return 8 if size is None else max(8, (size + 7) // 8 * 8)


def fits(value: int, t: str) -> bool:
    info = INT_TYPES[t]
    return info.min <= value <= info.max


def show(t: str) -> str:
    if t.startswith("struct:"):
        return f"struct `{t[len('struct:'):]}`"
    if t.startswith("ref:struct:"):
        return f"a map value of struct `{t[len('ref:struct:'):]}`"
    return {UNIT: "no value (unit)", NEVER: "never"}.get(t, t)

"""Event records as tests write them (`:expect-events ((events 60) …)`) and
as a reader gets them: bytes to compare, and text for reports. One place
for the checker (what is wrong with an expected record), the VM side and
the host tests (compare, show a diff).

A record is the value `event-output` sent, laid out as C lays it out
(integers little-endian). An expected record is (bytes, mask): the mask
marks the bytes the test names, the others are not compared. Perf-event
records come padded by the kernel (4 + size is a multiple of 8): only the
record type's size is compared."""

from __future__ import annotations

from . import tables


def record_size(t: str) -> int:
    if t in tables.INT_TYPES:
        return tables.INT_TYPES[t].bits // 8
    if t.startswith("array:"):
        _, elem, n = t.split(":")
        return tables.INT_TYPES[elem].bits // 8 * int(n)
    raise ValueError(f"records of type {t} cannot be written in tests")


def encode(t: str, value) -> tuple[bytes, bytes]:
    """(bytes, mask) of an expected record; ValueError says what is wrong."""
    if t in tables.INT_TYPES:
        info = tables.INT_TYPES[t]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"its records are {t}: write an integer")
        if not info.min <= value <= info.max:
            raise ValueError(f"{value} does not fit in {t} ({info.min} to {info.max})")
        size = info.bits // 8
        return value.to_bytes(size, "little", signed=info.signed), b"\xff" * size
    raise ValueError(f"its records are {t}, which tests cannot write")


def problem(t: str, value) -> str | None:
    try:
        encode(t, value)
    except ValueError as err:
        return str(err)
    return None


def show(t: str, raw: bytes) -> str:
    """A record as the test would write it (its type's size; a short one as hex)."""
    size = record_size(t)
    if len(raw) < size:
        return f"{len(raw)} bytes {raw.hex() or '-'} (a {t} has {size})"
    raw = raw[:size]
    if t in tables.INT_TYPES:
        return show_int(int.from_bytes(raw, "little", signed=tables.INT_TYPES[t].signed))
    return raw.hex()


def show_expected(t: str, value) -> str:
    return show_int(value) if isinstance(value, int) else str(value)


def show_int(value: int) -> str:
    """Small numbers in decimal, large ones (addresses, packed fields) in hex."""
    return str(value) if -65536 < value < 65536 else hex(value)


def matches(t: str, want: tuple[bytes, bytes], got: bytes) -> bool:
    data, mask = want
    size = record_size(t)
    if len(got) < size:
        return False
    return all(g & m == d & m for g, d, m in zip(got[:size], data, mask))


def diff(t: str, expected: list, got: list[bytes]) -> list[str]:
    """One line per event that differs (expected vs got, as the test writes
    them), and one for a count that differs; [] when they agree."""
    out = []
    for n in range(max(len(expected), len(got))):
        want = expected[n] if n < len(expected) else None
        have = got[n] if n < len(got) else None
        if want is not None and have is not None and matches(t, encode(t, want), have):
            continue
        out.append(f"event {n + 1}: expected {'(none)' if want is None else show_expected(t, want)}, "
                   f"got {'(none)' if have is None else show(t, have)}")
    if len(expected) != len(got):
        out.append(f"expected {len(expected)} event(s), got {len(got)}")
    return out

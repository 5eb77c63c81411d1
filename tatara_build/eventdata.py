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

from . import mapdata, structs, tables


def record_size(t: str, layouts: dict | None = None) -> int:
    if structs.struct_name(t):
        return structs.byte_size(t, layouts or {})
    if t in tables.INT_TYPES:
        return tables.INT_TYPES[t].bits // 8
    parts = structs.array_parts(t)
    if parts is not None:
        return tables.INT_TYPES[parts[0]].bits // 8 * parts[1]
    raise ValueError(f"records of type {t} cannot be written in tests")


def encode(t: str, value, layouts: dict | None = None) -> tuple[bytes, bytes]:
    """(bytes, mask) of an expected record; ValueError says what is wrong.
    Struct records are written (make s :f v …); fields not named are not
    compared (their mask bytes are 0)."""
    if structs.struct_name(t):
        return mapdata.struct_value(t, value, layouts)
    if t in tables.INT_TYPES:
        info = tables.INT_TYPES[t]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"its records are {t}: write an integer")
        if not info.min <= value <= info.max:
            raise ValueError(f"{value} does not fit in {t} ({info.min} to {info.max})")
        size = info.bits // 8
        return value.to_bytes(size, "little", signed=info.signed), b"\xff" * size
    raise ValueError(f"its records are {t}, which tests cannot write")


def problem(t: str, value, layouts: dict | None = None) -> str | None:
    try:
        encode(t, value, layouts)
    except ValueError as err:
        return str(err)
    return None


def show(t: str, raw: bytes, layouts: dict | None = None) -> str:
    """A record as the test would write it (its type's size; a short one as hex)."""
    size = record_size(t, layouts)
    if len(raw) < size:
        return f"{len(raw)} bytes {raw.hex() or '-'} (a {t} has {size})"
    raw = raw[:size]
    if structs.struct_name(t):
        layout = (layouts or {})[structs.struct_name(t)]
        return mapdata.show_decoded(layout, _readable(structs.decode(layout, raw, layouts or {}), layout, layouts or {}),
                                    layouts or {})
    if t in tables.INT_TYPES:
        return show_int(int.from_bytes(raw, "little", signed=tables.INT_TYPES[t].signed))
    return raw.hex()


def _readable(fields: dict, layout: structs.Layout, layouts: dict) -> dict:
    """u8 arrays that hold text (a comm) as a string, as tests write them;
    an all-zero one as "" (a 472-byte pad field showed 472 zeros)."""
    types = {f.name: f.type for f in layout.fields}
    out = {}
    for k, v in fields.items():
        if isinstance(v, dict):
            v = _readable(v, layouts[structs.struct_name(types[k])], layouts)
        elif isinstance(v, list) and v and all(isinstance(x, int) and 0 <= x < 256 for x in v):
            text = bytes(v).rstrip(b"\0")
            if (text or structs.array_parts(types[k])[0] in ("u8", "i8")) and b"\0" not in text \
                    and all(32 <= b < 127 for b in text):
                v = text.decode()
        out[k] = repr(v).replace("'", '"') if isinstance(v, str) else v
    return out


def show_expected(t: str, value) -> str:
    if isinstance(value, int):
        return show_int(value)
    return mapdata.show_struct(value)


def show_int(value: int) -> str:
    """Small numbers in decimal, large ones (addresses, packed fields) in hex."""
    return str(value) if -65536 < value < 65536 else hex(value)


def matches(t: str, want: tuple[bytes, bytes], got: bytes, layouts: dict | None = None) -> bool:
    data, mask = want
    size = record_size(t, layouts)
    if len(got) < size:
        return False
    return all(g & m == d & m for g, d, m in zip(got[:size], data, mask))


def diff(t: str, expected: list, got: list[bytes], layouts: dict | None = None) -> list[str]:
    """One line per event that differs (expected vs got, as the test writes
    them), and one for a count that differs; [] when they agree."""
    out = []
    for n in range(max(len(expected), len(got))):
        want = expected[n] if n < len(expected) else None
        have = got[n] if n < len(got) else None
        if want is not None and have is not None and matches(t, encode(t, want, layouts), have, layouts):
            continue
        out.append(f"event {n + 1}: expected {'(none)' if want is None else show_expected(t, want)}, "
                   f"got {'(none)' if have is None else show(t, have, layouts)}")
    if len(expected) != len(got):
        out.append(f"expected {len(expected)} event(s), got {len(got)}")
    return out

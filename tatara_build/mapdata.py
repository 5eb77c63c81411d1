"""Map keys and values as tests write them (`:expect-maps`, `:maps-before`),
and the bytes the kernel stores for them. One place for both directions:
the checker asks it what is wrong with a key, the VM side for the bytes to
write or compare.

Integer keys and values are stored in the map's integer type, little-endian
(the BPF targets here are little-endian). An lpm-trie key is the kernel's
`struct bpf_lpm_trie_key`: the prefix length as a host-order u32, then the
address bytes in network order — what libbpf and aya users write, and what
the backends generate for `(lpm-key PREFIX ADDR)`. Tests write lpm keys as
"10.1.2.0/24" (4-byte maps) or "2001:db8::/32" (16-byte maps); a string
without "/" and an integer key are full-length prefixes. Bits past the
prefix do not matter to the kernel (10.1.2.3/24 and 10.1.2.0/24 are one
entry), so keys are compared with them cleared."""

from __future__ import annotations

import ipaddress
import json

from . import ir, structs, tables

LPM_KINDS = ("lpm-trie",)
LPM_DATA_BYTES = (1, 2, 4, 8, 16)  # address widths an lpm-trie key may have
TEXT_ADDRESS = {4: ipaddress.IPv4Network, 16: ipaddress.IPv6Network}  # data bytes -> text form


def is_lpm(decl: ir.MapDecl) -> bool:
    return decl.kind in LPM_KINDS


def lpm_data_bytes(decl: ir.MapDecl) -> int:
    """Address bytes after the prefix length: `:key u32` -> 4, `:key-size 16` -> 16."""
    if decl.key_size is not None:
        return decl.key_size
    return tables.INT_TYPES[decl.key].bits // 8


def key_size(decl: ir.MapDecl, layouts: dict | None = None) -> int:
    """The map's key_size as the kernel sees it."""
    if is_lpm(decl):
        return 4 + lpm_data_bytes(decl)
    return structs.byte_size(decl.key, layouts or {})


Layouts = dict[str, structs.Layout]


def struct_value(t: str, value, layouts: Layouts | None) -> tuple[bytes, bytes]:
    """(bytes, mask) of a test's struct value for a key or value of type `t`
    (`struct:<name>`); ValueError says what is wrong."""
    name = structs.struct_name(t)
    if not isinstance(value, ir.StructLit):
        raise ValueError(f"this map holds struct `{name}`: write (make {name} :field value …)")
    if value.struct != name:
        raise ValueError(f"this map holds struct `{name}`, got (make {value.struct} …)")
    layout = (layouts or {}).get(name)
    if layout is None:
        raise ValueError(f"unknown struct `{name}`")
    return structs.encode(layout, plain(value), layouts)


def plain(value):
    """A StructLit as nested dicts (structs.encode's input)."""
    if isinstance(value, ir.StructLit):
        return {k: plain(v) for k, v in value.fields.items()}
    return value


def key_problem(decl: ir.MapDecl, key, layouts: Layouts | None = None) -> str | None:
    try:
        key_bytes(decl, key, layouts)
    except ValueError as err:
        return str(err)
    return None


def key_bytes(decl: ir.MapDecl, key, layouts: Layouts | None = None) -> bytes:
    """The key as stored (lpm: bits past the prefix cleared; a struct: every
    byte, unnamed fields and padding zero); ValueError says what is wrong."""
    if structs.struct_name(decl.key):
        return struct_value(decl.key, key, layouts)[0]
    if isinstance(key, ir.StructLit):
        raise ValueError(f"{decl.kind} map `{decl.name}` has {decl.key or 'address'} keys, not structs")
    if not is_lpm(decl):
        if isinstance(key, str):
            raise ValueError(f"{decl.kind} map `{decl.name}` has integer keys ({decl.key}), got {key!r}")
        info = tables.INT_TYPES[decl.key]
        if not info.min <= key <= info.max:
            raise ValueError(f"key {key} does not fit the map's key type {decl.key}")
        return key.to_bytes(info.bits // 8, "little", signed=info.signed)
    size = lpm_data_bytes(decl)
    if isinstance(key, int):
        if not 0 <= key < 1 << (8 * size):
            raise ValueError(f"key {key} does not fit the {size}-byte address of lpm-trie `{decl.name}`")
        return lpm_key(8 * size, key.to_bytes(size, "big"))
    network = TEXT_ADDRESS.get(size)
    if network is None:
        raise ValueError(f"lpm-trie `{decl.name}` has {size}-byte keys: write them as integers "
                         "(text keys are IPv4 for 4-byte keys, IPv6 for 16-byte keys)")
    try:
        if "%" in key:  # a scope id is not part of an address the kernel stores
            raise ValueError
        net = network(key, strict=False)
    except ValueError:
        example = "10.1.2.0/24" if size == 4 else "2001:db8::/32"
        raise ValueError(f"{key!r} is not an {'IPv4' if size == 4 else 'IPv6'} prefix like {example!r} "
                         f"(lpm-trie `{decl.name}` has {size}-byte addresses)") from None
    return lpm_key(net.prefixlen, net.network_address.packed)


def lpm_key(prefixlen: int, address: bytes) -> bytes:
    return prefixlen.to_bytes(4, "little") + masked(address, prefixlen)


def masked(address: bytes, prefixlen: int) -> bytes:
    bits = 8 * len(address)
    value = int.from_bytes(address, "big")
    keep = ((1 << bits) - 1) ^ ((1 << (bits - min(prefixlen, bits))) - 1)
    return (value & keep).to_bytes(len(address), "big")


def canonical_key(decl: ir.MapDecl, raw: bytes) -> bytes:
    """A key read back from the kernel, comparable with key_bytes()."""
    return canonical_lpm_key(raw) if is_lpm(decl) else raw


def canonical_lpm_key(raw: bytes) -> bytes:
    """An lpm key with the address bits past its prefix cleared."""
    if len(raw) < 4:
        return raw
    return lpm_key(int.from_bytes(raw[:4], "little"), raw[4:])


def value_problem(decl: ir.MapDecl, value, layouts: Layouts | None = None) -> str | None:
    try:
        value_bytes(decl, value, layouts)
    except ValueError as err:
        return str(err)
    return None


def value_bytes(decl: ir.MapDecl, value, layouts: Layouts | None = None) -> bytes:
    return value_and_mask(decl, value, layouts)[0]


def value_and_mask(decl: ir.MapDecl, value, layouts: Layouts | None = None) -> tuple[bytes, bytes]:
    """The value as stored and the mask of its bytes a test compares (a
    struct: the fields it names; an integer: all)."""
    if structs.struct_name(decl.value):
        return struct_value(decl.value, value, layouts)
    if isinstance(value, ir.StructLit):
        raise ValueError(f"map `{decl.name}` holds {decl.value} values, not structs")
    raw = int_value_bytes(decl, value)
    return raw, b"\xff" * len(raw)


def int_value_bytes(decl: ir.MapDecl, value: int) -> bytes:
    info = tables.INT_TYPES[decl.value]
    if not info.min <= value <= info.max:
        raise ValueError(f"value {value} does not fit the map's value type {decl.value}")
    return value.to_bytes(info.bits // 8, "little", signed=info.signed)


def value_of(decl: ir.MapDecl, raw: bytes) -> int:
    """A value read back from the kernel, in the map's value type."""
    return decode_value(decl.value, raw)


def decode_value(value_type: str, raw: bytes) -> int:
    info = tables.INT_TYPES[value_type]
    return int.from_bytes(raw[: info.bits // 8], "little", signed=info.signed)


def show_key(key) -> str:
    if isinstance(key, ir.StructLit):
        return show_struct(key)
    return key if isinstance(key, str) else str(key)


def show_struct(value) -> str:
    """`(make flow :packets 4)`, as tests write it."""
    if isinstance(value, ir.StructLit):
        return f"(make {value.struct}" + "".join(f" :{k} {show_struct(v)}" for k, v in value.fields.items()) + ")"
    if isinstance(value, list):
        return "(" + " ".join(str(v) for v in value) + ")"
    return json.dumps(value) if isinstance(value, str) else str(value)  # "…", as tests write text


# --- values read back: per-CPU sums, partial struct expectations -------------------


def total(decl: ir.MapDecl, raws: list[bytes], layouts: Layouts | None = None):
    """The value of one entry from its per-CPU copies (one for other maps):
    an integer summed over CPUs; a struct's bytes with every integer field
    summed (wrapping at its width)."""
    name = structs.struct_name(decl.value)
    if name is None:
        return sum(value_of(decl, raw) for raw in raws)
    return _sum_bytes(decl.value, raws, layouts or {})


def _sum_bytes(t: str, raws: list[bytes], layouts: Layouts) -> bytes:
    if t in tables.INT_TYPES:
        info = tables.INT_TYPES[t]
        n = info.bits // 8
        value = sum(int.from_bytes(raw[:n], "little") for raw in raws) % (1 << info.bits)
        return value.to_bytes(n, "little")
    parts = structs.array_parts(t)
    if parts is not None:
        elem, count = parts
        size = structs.byte_size(elem, layouts)
        return b"".join(_sum_bytes(elem, [r[i * size:(i + 1) * size] for r in raws], layouts) for i in range(count))
    layout = layouts[structs.struct_name(t)]
    out = bytearray(raws[0][:layout.size] if raws else bytes(layout.size))
    for f in layout.fields:
        out[f.offset:f.offset + f.size] = _sum_bytes(f.type, [r[f.offset:f.offset + f.size] for r in raws], layouts)
    return bytes(out)


def matches(decl: ir.MapDecl, expected, got, layouts: Layouts | None = None) -> bool:
    """Does a value read back (total()) meet a test's expectation? A struct
    expectation compares only the fields it names."""
    if not structs.struct_name(decl.value):
        return got == expected
    if got is None:
        return False
    want, mask = value_and_mask(decl, expected, layouts)
    return all((g & m) == (w & m) for g, w, m in zip(got, want, mask))


def show_value(decl: ir.MapDecl, value, layouts: Layouts | None = None) -> str | int | None:
    """A value for reports: integers as they are, structs as
    `(make flow :packets 3 …)` (from a test, or decoded from bytes)."""
    if isinstance(value, ir.StructLit):
        return show_struct(value)
    if isinstance(value, bytes) and structs.struct_name(decl.value):
        layout = (layouts or {})[structs.struct_name(decl.value)]
        return show_decoded(layout, structs.decode(layout, value, layouts or {}), layouts or {})
    return value


def show_decoded(layout: structs.Layout, fields: dict, layouts: Layouts) -> str:
    """`(make flow :peer (make addr :port 53) :tag (1 2))`: nested structs named as tests write them."""
    def one(t: str, v):
        if isinstance(v, dict):
            return show_decoded(layouts[structs.struct_name(t)], v, layouts)
        if isinstance(v, list):
            return "(" + " ".join(str(x) for x in v) + ")"
        return str(v)
    types = {f.name: f.type for f in layout.fields}
    return f"(make {layout.name}" + "".join(f" :{k} {one(types[k], v)}" for k, v in fields.items()) + ")"

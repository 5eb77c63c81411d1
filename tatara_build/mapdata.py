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

from . import ir, tables

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


def key_size(decl: ir.MapDecl) -> int:
    """The map's key_size as the kernel sees it."""
    if is_lpm(decl):
        return 4 + lpm_data_bytes(decl)
    return tables.INT_TYPES[decl.key].bits // 8


def key_problem(decl: ir.MapDecl, key: int | str) -> str | None:
    try:
        key_bytes(decl, key)
    except ValueError as err:
        return str(err)
    return None


def key_bytes(decl: ir.MapDecl, key: int | str) -> bytes:
    """The key as stored (lpm: bits past the prefix cleared); ValueError says
    what is wrong with it."""
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


def value_problem(decl: ir.MapDecl, value: int) -> str | None:
    try:
        value_bytes(decl, value)
    except ValueError as err:
        return str(err)
    return None


def value_bytes(decl: ir.MapDecl, value: int) -> bytes:
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


def show_key(key: int | str) -> str:
    return key if isinstance(key, str) else str(key)

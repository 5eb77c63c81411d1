"""Make rustc's BTF acceptable to the kernel, as bpf-linker does.

Rust type names such as `PerCpuArray<u64, 1, 0>` or `{closure#0}` reach
.BTF unchanged, and the kernel rejects the whole BTF blob when a struct,
member, typedef, function, parameter or variable name is not a C identifier
("BTF is optional, ignoring"): the program still loads, but without BTF the
verifier log loses its source lines. We rewrite those names in place in the
object's .BTF string table: every character outside [A-Za-z0-9_] becomes
`_` and long names are cut (by moving the NUL), so no offset changes.
Section (DATASEC) and INT names are left alone; they follow other rules.
"""

from __future__ import annotations

import re
import struct

from . import elf

BTF_MAGIC = 0xEB9F
MAX_NAME = 127  # below the kernel's KSYM_NAME_LEN
# kind -> bytes of data after the 12-byte type header (vlen = members etc.)
_FIXED = {1: 4, 2: 0, 3: 12, 6: 0, 7: 0, 8: 0, 9: 0, 10: 0, 11: 0, 12: 0, 14: 4, 16: 0, 17: 4, 18: 0}
_PER_ITEM = {4: 12, 5: 12, 13: 8, 15: 12, 19: 12}  # struct, union, func_proto, datasec, enum64
_ENUM = 6
_IDENTIFIER_KINDS = {4, 5, 6, 7, 8, 12, 14, 19}  # struct union enum fwd typedef func var enum64
_MEMBER_NAMES = {4, 5, 6, 13, 19}  # member / enumerator / parameter names must be identifiers too
_BAD = re.compile(rb"[^A-Za-z0-9_]")


def sanitize(obj: bytes) -> bytes:
    """The object with its BTF names made C identifiers (unchanged if fine)."""
    start, size = elf.section_range(obj, ".BTF")
    if size == 0:
        return obj
    data = bytearray(obj)
    magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        "<HBBIIIII", data, start)
    if magic != BTF_MAGIC:
        return obj
    types, strings = start + hdr_len + type_off, start + hdr_len + str_off
    for name_off in _identifier_name_offsets(bytes(data[types:types + type_len])):
        if 0 < name_off < str_len:
            _fix(data, strings + name_off)
    return bytes(data)


def _identifier_name_offsets(types: bytes) -> list[int]:
    offsets, pos = [], 0
    while pos + 12 <= len(types):
        name_off, info = struct.unpack_from("<II", types, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if kind in _IDENTIFIER_KINDS:
            offsets.append(name_off)
        item = 8 if kind == _ENUM else _PER_ITEM.get(kind)
        body = vlen * item if item else _FIXED.get(kind)
        if body is None:
            break  # an unknown kind: stop rather than misread
        if kind in _MEMBER_NAMES:
            offsets += [struct.unpack_from("<I", types, pos + 12 + i * item)[0] for i in range(vlen)]
        pos += 12 + body
    return offsets


def _fix(data: bytearray, at: int) -> None:
    end = data.index(b"\0", at)
    name = bytes(data[at:end])
    fixed = _BAD.sub(b"_", name)
    if fixed[:1].isdigit():
        fixed = b"_" + fixed[1:]
    if len(fixed) > MAX_NAME:
        fixed = fixed[:MAX_NAME] + b"\0"
    if fixed != name:
        data[at:at + len(fixed)] = fixed

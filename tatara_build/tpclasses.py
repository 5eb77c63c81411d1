"""Which BTF struct lays out each tracepoint's record, found in the kernel
image itself.

A tracepoint declared with TRACE_EVENT has `struct trace_event_raw_<name>`
in the BTF; one declared with DEFINE_EVENT shares its event class's
(`sched/sched_wakeup` is laid out by `trace_event_raw_sched_wakeup_template`),
and nothing in the BTF names the class. The vmlinux's data does: every
event is a `struct trace_event_call` whose `tp` points to its `struct
tracepoint` (whose `name` is the event's name) and whose `class` points to
a `struct trace_event_class` (its `system` is the category, its
`fields_array` the record's fields by name and type, as the format file
shows them). The image has no symbol table, so the calls are found by
shape: a word in .data pointing to a class whose system and fields are
strings, next to a tracepoint whose name is one. The record struct is the
`trace_event_raw_*` whose members are those fields (preferring the
event's own name, as the kernel does for TRACE_EVENT); layouts are then
taken from the BTF as for any record. Member offsets of the kernel's own
structs come from the BTF too, so this follows each kernel's layout."""

from __future__ import annotations

import re
import struct
from array import array

IDENT = re.compile(rb"[a-z0-9_]{1,64}")
FIELD_TYPE = re.compile(rb"[ -~]{1,64}")
MAX_FIELDS = 64  # an event has a handful; more means this is not a fields array


def sections(data: bytes) -> dict[str, tuple[int, int, int]]:
    """name -> (address, file offset, size) of the image's loaded sections."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx][4]
    out = {}
    for name_off, kind, _flags, addr, offset, size in headers:
        if addr and kind != 8:  # NOBITS (.bss) has no bytes in the file
            out[data[strtab + name_off:data.index(b"\0", strtab + name_off)].decode("ascii", "replace")] = \
                (addr, offset, size)
    return out


class Image:
    """Reads words and strings at kernel addresses of .data and .rodata."""

    def __init__(self, data: bytes):
        found = sections(data)
        self.data = data
        self.parts = [found[n] for n in (".data", ".rodata") if n in found]
        addr, offset, size = found.get(".data", (0, 0, 0))
        self.base = addr
        self.words = array("Q")
        self.words.frombytes(data[offset:offset + size // 8 * 8])

    def word(self, addr: int) -> int | None:
        if addr % 8 == 0 and 0 <= (addr - self.base) // 8 < len(self.words):
            return self.words[(addr - self.base) // 8]
        for start, offset, size in self.parts:
            if start <= addr <= start + size - 8:
                return struct.unpack_from("<Q", self.data, offset + addr - start)[0]
        return None

    def text(self, addr: int | None, shape: re.Pattern[bytes]) -> str | None:
        for start, offset, size in self.parts if addr else ():
            if start <= addr < start + size:
                at = offset + addr - start
                end = self.data.find(b"\0", at, at + 65)
                if end > at and shape.fullmatch(self.data[at:end]):
                    return self.data[at:end].decode("ascii")
        return None


def _offset(types, struct_name: str, member: str) -> int | None:
    comp = types.named(struct_name)
    m = comp.members.get(member) if comp else None
    return m.offset_bits // 8 if m else None


def events(data: bytes, types) -> dict[str, list[tuple[str, str]]]:
    """"system/name" -> the record's fields as (name, C type), of every
    event the image holds whose class lists its fields."""
    at = {k: _offset(types, s, m) for k, s, m in (
        ("class", "trace_event_call", "class"), ("tp", "trace_event_call", "tp"),
        ("system", "trace_event_class", "system"), ("fields", "trace_event_class", "fields_array"),
        ("type", "trace_event_fields", "type"), ("name", "trace_event_fields", "name"))}
    entry = types.named("trace_event_fields")
    if None in at.values() or entry is None:
        return {}
    image, out = Image(data), {}
    for i in range(len(image.words)):
        call = image.base + i * 8 - at["tp"]
        cls, tp = image.word(call + at["class"]), image.word(call + at["tp"])
        if not cls or not tp or cls % 8 or tp % 8:
            continue
        system = image.text(image.word(cls + at["system"]), IDENT)
        name = system and image.text(image.word(tp), IDENT)  # struct tracepoint starts with its name
        fields = name and _fields(image, image.word(cls + at["fields"]), entry.size, at)
        if fields:
            out.setdefault(f"{system}/{name}", fields)
    return out


def _fields(image: Image, addr: int | None, size: int, at: dict) -> list[tuple[str, str]] | None:
    out = []
    for k in range(MAX_FIELDS):
        kind = image.word(addr + k * size + at["type"]) if addr else None
        if kind == 0:
            return out or None
        ctype = image.text(kind, FIELD_TYPE)
        name = image.text(image.word(addr + k * size + at["name"]), IDENT)
        if not ctype or not name:
            return None
        out.append((f"__data_loc_{name}" if ctype.startswith("__data_loc") else name, ctype))
    return None


def record_structs(data: bytes, types) -> dict[str, str]:
    """"system/name" -> the `trace_event_raw_*` struct of its record, for
    every event whose fields name exactly one layout (its own struct first)."""
    by_fields: dict[tuple[str, ...], list[str]] = {}
    for key in types.names():
        if key.startswith("trace_event_raw_"):
            comp = types.named(key)
            by_fields.setdefault(tuple(n for n in comp.members if n not in ("ent", "__data")), []).append(key)
    out = {}
    for target, fields in events(data, types).items():
        found = by_fields.get(tuple(n for n, _ in fields), [])
        own = "trace_event_raw_" + target.partition("/")[2]
        layouts = {tuple((m.name, m.offset_bits, m.type) for m in types.named(k).members.values()) for k in found}
        if own in found:
            out[target] = own
        elif found and len(layouts) == 1:  # several classes of one layout: any of them places the fields
            out[target] = sorted(found)[0]
    return out

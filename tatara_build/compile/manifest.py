"""OUT/manifest.json: what was built, from what, with which toolchain.

Extensible by later stages: `verification` is left to the vm stage, which
stores its own model dumped to JSON there (per object / program: verdict,
verified insns, states, packet results); `nix` holds the flake's input revs
when the nix engine built the object. Both stay None in a plain build, so
this schema does not depend on the later stages' models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..backends import names

SCHEMA_VERSION = 1
# One of the registered dialects (backends.base.DIALECTS).
BackendName = Literal[names()]  # type: ignore[valid-type]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Program(_Model):
    symbol: str = Field(description="ELF symbol of the program's function")
    section: str = Field(description="ELF section, which tells libbpf the program type")
    name: str | None = Field(None, description="tatara-lisp name (defbpf-program), when known")
    kind: str | None = Field(None, description="program kind, e.g. xdp")
    attach: str | None = Field(None, description="what a loader attaches it to: interface, kernel function, "
                               "tracepoint, LSM hook, cgroup-skb direction or perf event (e.g. cpu-clock)")
    direction: str | None = Field(None, description="tc: ingress or egress")


class EventMap(_Model):
    symbol: str = Field(description="ELF/BTF name of the map (what a loader opens)")
    name: str = Field(description="tatara-lisp name (defbpf-map)")
    kind: str = Field(description="ring-buf or perf-event-array")
    record: str = Field(description="type of every record the programs send: an integer type (u32), "
                        "array:<elem>:<n> ((current-comm) is array:u8:16) or struct:<name>")
    size: int = Field(description="bytes of one record as C lays it out, little-endian integers (perf-event "
                      "records arrive padded: read only this many bytes)")


class Slot(_Model):
    map: str = Field(description="ELF symbol of the prog-array")
    index: int
    program: str = Field(description="ELF symbol of the program the loader puts in the slot")


class Const(_Model):
    name: str = Field(description="tatara-lisp name (defbpf-const)")
    type: str = Field(description="u8…u64, i8…i64 or bool (one byte, 0 or 1); little-endian in the object")
    default: int = Field(description="the value in the object as built")
    symbol: str | None = Field(None, description="ELF symbol of the variable (None: not in the object)")
    section: str | None = Field(None, description="ELF section holding it: .rodata, which libbpf and aya load "
                                "as a read-only array map frozen after the loader wrote it")
    offset: int | None = Field(None, description="byte offset of the value in that section: a loader sets the "
                               "const by writing `size` bytes there before load (libbpf skeleton rodata, "
                               "aya EbpfLoader::set_global)")
    size: int | None = None


class ObjectInfo(_Model):
    file: str = Field(description="object file name, relative to OUT")
    sha256: str
    size: int
    sections: list[str]
    programs: list[Program]
    maps: list[str] = Field(description="variables in .maps (BTF-defined maps)")
    events: list[EventMap] = Field([], description="event maps and the one record type each carries, so a "
                                   "reader in any language can decode them")
    slots: list[Slot] = Field([], description="prog-array slots a loader fills after loading (the maps' :programs)")
    consts: list[Const] = Field([], description="defbpf-const globals, read from the object's symbol table")


class StructField(_Model):
    name: str = Field(description="tatara-lisp name (defbpf-struct), e.g. last-seen")
    btf_name: str = Field(description="the member's name in C, Rust and BTF, e.g. last_seen")
    type: str = Field(description="u8…u64, i8…i64, array:<elem>:<n> (e.g. array:u8:16) or struct:<name>")
    offset: int = Field(description="bytes from the start of the struct")
    size: int = Field(description="bytes")


class StructLayout(_Model):
    """A defbpf-struct as both backends lay it out (C's natural alignment;
    Rust #[repr(C)]): enough for a loader in any language to decode map
    values and events, little-endian."""

    name: str = Field(description="tatara-lisp name, e.g. flow-key")
    btf_name: str = Field(description="the struct's name in C, Rust and BTF, e.g. flow_key")
    size: int = Field(description="bytes, padding included")
    align: int
    fields: list[StructField] = Field(description="in order; gaps between them (and at the end) are padding, "
                                      "zero in every value the program builds")


class MapInfo(_Model):
    name: str = Field(description="tatara-lisp name (defbpf-map)")
    symbol: str = Field(description="its name in the object (BTF, bpftool)")
    kind: str
    key: str | None = Field(None, description="u8…i64 or struct:<name> (structs)")
    value: str | None = Field(None, description="u8…i64 or struct:<name> (structs)")


class Toolchain(_Model):
    compiler: str = Field(description="`rustc -V` or `clang --version` first line")
    compiler_choice: str | None = Field(None, description="C backend: why this clang (the pinned LLVM major, "
                                        "--clang / TATARA_CLANG, or a fallback and what was missing)")
    llvm_version: str | None = None
    linker: str = Field(description="bpf-linker, tatara-build's LLVM link driver (with tool versions), or clang")
    target_cpu: str
    cargo: str | None = None
    flags: list[str] = []


class Crate(_Model):
    name: str
    version: str
    checksum: str | None = None
    source: str | None = None


class Manifest(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    tatara_build_version: str
    source: str = Field(description="source file name (no directory)")
    source_sha256: str
    backend: BackendName
    engine: Literal["host", "nix"]
    objects: list[ObjectInfo]
    toolchain: Toolchain
    crates: list[Crate] = Field([], description="the generated Cargo.lock's packages (aya backend)")
    kernel_layout: list[str] | None = Field(
        None, description="kernel lines whose struct layouts are compiled into the object (core-read / tp-field "
        "offsets taken from their BTF: the aya backend has no CO-RE); the object is valid on these only. None: "
        "nothing kernel-specific, or relocated by the loader (C backend, CO-RE)")
    nix: dict[str, Any] | None = Field(None, description="flake input revs (nix engine)")
    verification: dict[str, Any] | None = Field(None, description="filled by the vm stage")
    structs: list[StructLayout] = Field([], description="defbpf-struct layouts (when built from a .tlisp source)")
    map_types: list[MapInfo] = Field([], description="each map's key and value types (when built from a .tlisp source)")

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def struct_layouts(module) -> list[StructLayout]:
    """The manifest's record of a checked module's structs."""
    from .. import structs

    layouts = structs.layouts(module.structs)
    return [StructLayout(name=lay.name, btf_name=lay.name.replace("-", "_"), size=lay.size, align=lay.align,
                         fields=[StructField(name=f.name, btf_name=f.name.replace("-", "_"), type=f.type,
                                             offset=f.offset, size=f.size) for f in lay.fields])
            for lay in layouts.values()]


def map_types(module) -> list[MapInfo]:
    return [MapInfo(name=m.name, symbol=m.name.replace("-", "_"), kind=m.kind, key=m.key, value=m.value)
            for m in module.maps]

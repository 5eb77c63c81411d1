"""Just enough ELF64 to describe a BPF object: its section names and the
global functions and map variables each section holds."""

from __future__ import annotations

import struct
from dataclasses import dataclass

SHT_SYMTAB = 2
SHF_EXECINSTR = 0x4
STT_OBJECT, STT_FUNC = 1, 2
STB_GLOBAL = 1


@dataclass(frozen=True)
class Symbol:
    name: str
    section: str
    kind: int  # STT_*
    binding: int  # STB_*
    value: int = 0  # st_value: the offset in its section (relocatable objects)
    size: int = 0  # st_size


@dataclass(frozen=True)
class Elf:
    sections: list[str]
    exec_sections: set[str]
    symbols: list[Symbol]

    def programs(self) -> list[tuple[str, str]]:
        """(symbol, section) of each program: global functions outside .text."""
        return [(s.name, s.section) for s in self.symbols
                if s.kind == STT_FUNC and s.binding == STB_GLOBAL
                and s.section in self.exec_sections and s.section != ".text"]

    def variable(self, names: tuple[str, ...]) -> Symbol | None:
        """The data object (a global variable) with one of these names."""
        return next((s for s in self.symbols if s.kind == STT_OBJECT and s.name in names
                     and s.section != ".maps"), None)

    def maps(self) -> list[str]:
        return [s.name for s in self.symbols if s.section == ".maps" and s.kind == STT_OBJECT]


class ElfError(ValueError):
    pass


def parse(data: bytes) -> Elf:
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ElfError("not a little-endian ELF64 object")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]

    def cstr(table_index: int, offset: int) -> str:
        start = headers[table_index][4] + offset
        return data[start:data.index(b"\0", start)].decode("utf-8", "replace")

    names = [cstr(shstrndx, h[0]) for h in headers]
    exec_sections = {names[i] for i, h in enumerate(headers) if h[2] & SHF_EXECINSTR}
    symbols: list[Symbol] = []
    for h in headers:
        if h[1] != SHT_SYMTAB:
            continue
        strtab, entsize = h[6], h[9] or 24
        for off in range(h[4] + entsize, h[4] + h[5], entsize):  # skip the null symbol
            st_name, st_info, _other, st_shndx, st_value, st_size = struct.unpack_from("<IBBHQQ", data, off)
            if 0 < st_shndx < len(names) and st_name:
                symbols.append(Symbol(cstr(strtab, st_name), names[st_shndx], st_info & 0xF, st_info >> 4,
                                      st_value, st_size))
    return Elf([n for n in names if n], exec_sections, symbols)


def section_range(data: bytes, name: str) -> tuple[int, int]:
    """(file offset, size) of a section, (0, 0) when absent."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx][4]
    for h in headers:
        start = strtab + h[0]
        if data[start:data.index(b"\0", start)].decode("utf-8", "replace") == name:
            return h[4], h[5]
    return 0, 0

"""The checker's view of types (tatara_build/types.py): which combine, and
what they cost on the stack."""

from __future__ import annotations

from .. import structs
from ..types import (BOOL, ERROR, NEVER, UNIT, Array, Bool, Error, Header, Int, LpmKey, Never, Option, Ref,
                     Struct, Type, Unit, is_int, is_scalar, parse, size_of)

__all__ = ["BOOL", "ERROR", "NEVER", "UNIT", "Array", "Bool", "Error", "Header", "Int", "LpmKey", "Never", "Option",
           "Ref", "Struct", "Type", "Unit", "is_int", "is_scalar", "parse", "size_of", "slot_bytes", "show"]


def slot_bytes(t: Type, layouts: dict[str, structs.Layout] | None = None) -> int:
    """Stack bytes one variable or temporary of type `t` may take: the BPF
    stack is used in 8-byte slots, so every scalar is counted as 8; an
    lpm-trie key (a u32 prefix length + its address bytes) and a struct
    value (its C size) as the slots they span."""
    if type(t) is LpmKey:
        return (4 + t.nbytes + 7) // 8 * 8
    if type(t) is Struct and layouts and t.name in layouts:
        return (layouts[t.name].size + 7) // 8 * 8
    # Anything else a variable, parameter or map temporary can be is a scalar
    # (arrays are only ever fields: never variables), one slot; so is a type
    # already reported as an error. (A size-based rule here was unreachable:
    # its mutants could not be told apart by any program, issue 20.)
    return 8


def show(t: Type) -> str:
    return t.show()

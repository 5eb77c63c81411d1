"""The types of IR values, as small immutable objects.

The checker fills `Node.type` with these; every later stage reads their
attributes, never a string. The IR's JSON (`tatara-build ir`), the manifest
and the goldens keep the historical spelling (`u32`, `header:ipv4`,
`option:u64`, `array:u8:16`, `struct:flow`, `ref:struct:flow`, `lpm-key:4`,
`?`): `spell()` writes it and `parse()` reads it, the one pair that crosses
that boundary. `show()` is how a message names the type.

Equal types are equal objects (`parse` interns them), and comparing a type
with a string is an internal error rather than a silent `False`: a rule
that still compares with a spelling fails its tests instead of misleading."""

from __future__ import annotations

from .records import dataclass
from functools import lru_cache

from . import tables


class Type:
    """Base of every type; subclasses are frozen dataclasses that define
    `_spell`. The spelling is computed once: it is the type's identity
    (equality, hash) and what `Node.type` holds, once per expression."""

    def __post_init__(self) -> None:
        spelled = self._spell()
        object.__setattr__(self, "_s", spelled)
        object.__setattr__(self, "_h", hash((Type, spelled)))

    def _spell(self) -> str:
        raise NotImplementedError

    def spell(self) -> str:
        return self._s

    def show(self) -> str:
        return self._s

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if other.__class__ is str:
            raise TypeError(f"type {self._s} compared with the string {other!r}: compare types")
        return isinstance(other, Type) and self._s == other._s

    def __ne__(self, other) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return self._h

    def __repr__(self) -> str:
        return f"<type {self._s}>"

    def __copy__(self):
        return self  # immutable: a copied IR shares its types

    def __deepcopy__(self, memo):
        return self


@dataclass(frozen=True, eq=False, repr=False)
class Int(Type):
    bits: int
    signed: bool

    def _spell(self) -> str:
        return f"{'i' if self.signed else 'u'}{self.bits}"

    min = tables.IntInfo.min  # the range is the table's, not a second copy
    max = tables.IntInfo.max

    def fits(self, value: int) -> bool:
        return self.min <= value <= self.max


@dataclass(frozen=True, eq=False, repr=False)
class Bool(Type):
    def _spell(self) -> str:
        return "bool"


@dataclass(frozen=True, eq=False, repr=False)
class Unit(Type):
    """No value (map-set, if without else, loop)."""

    def _spell(self) -> str:
        return "unit"

    def show(self) -> str:
        return "no value (unit)"


@dataclass(frozen=True, eq=False, repr=False)
class Never(Type):
    """Does not continue (return, break): unifies with anything."""

    def _spell(self) -> str:
        return "never"


@dataclass(frozen=True, eq=False, repr=False)
class Error(Type):
    """Already reported: unifies with anything, never reported again."""

    def _spell(self) -> str:
        return "?"


@dataclass(frozen=True, eq=False, repr=False)
class Header(Type):
    """A parsed packet header (tables.HEADERS key)."""

    name: str

    def _spell(self) -> str:
        return f"header:{self.name}"


@dataclass(frozen=True, eq=False, repr=False)
class Option(Type):
    """A header or map lookup before `if-let` takes it apart."""

    inner: Type

    def _spell(self) -> str:
        return f"option:{self.inner._s}"


@dataclass(frozen=True, eq=False, repr=False)
class Array(Type):
    """A fixed array of integers (struct fields, (current-comm))."""

    elem: Int
    n: int

    def _spell(self) -> str:
        return f"array:{self.elem._s}:{self.n}"


@dataclass(frozen=True, eq=False, repr=False)
class Struct(Type):
    """A defbpf-struct value."""

    name: str

    def _spell(self) -> str:
        return f"struct:{self.name}"

    def show(self) -> str:
        return f"struct `{self.name}`"


@dataclass(frozen=True, eq=False, repr=False)
class Ref(Type):
    """A pointer to a map's struct value (if-let on map-lookup): field
    writes go through to the map."""

    target: Struct

    def _spell(self) -> str:
        return f"ref:{self.target._s}"

    def show(self) -> str:
        return f"a map value of struct `{self.target.name}`"


@dataclass(frozen=True, eq=False, repr=False)
class LpmKey(Type):
    """An lpm-trie key: the kernel's u32 prefix length + `nbytes` of address."""

    nbytes: int

    def _spell(self) -> str:
        return f"lpm-key:{self.nbytes}"


BOOL, UNIT, NEVER, ERROR = Bool(), Unit(), Never(), Error()
INTS: dict[str, Int] = {name: Int(info.bits, info.signed) for name, info in tables.INT_TYPES.items()}
U8, U16, U32, U64 = INTS["u8"], INTS["u16"], INTS["u32"], INTS["u64"]
I32, I64 = INTS["i32"], INTS["i64"]
_WORDS: dict[str, Type] = {**INTS, "bool": BOOL, "unit": UNIT, "never": NEVER, "?": ERROR}


@lru_cache(maxsize=None)
def parse(spelling: str) -> Type:
    """The type `spelling` names (the inverse of `spell()`); ValueError for
    anything else. Reads declarations (IR, tables, manifest), not checker output."""
    t = _WORDS.get(spelling)
    if t is not None:
        return t
    kind, _, rest = spelling.partition(":")
    if kind == "header" and rest:
        return Header(rest)
    if kind == "option" and rest:
        return Option(parse(rest))
    if kind == "struct" and rest:
        return Struct(rest)
    if kind == "ref" and rest.startswith("struct:"):
        return Ref(parse(rest))
    if kind == "array":
        elem, _, n = rest.rpartition(":")
        if elem in INTS and n.isdigit():
            return Array(INTS[elem], int(n))
    if kind == "lpm-key" and rest.isdigit():
        return LpmKey(int(rest))
    raise ValueError(f"not a type: {spelling!r}")


def of(t: Type | str | None) -> Type | None:
    """`t` as an object: a declaration's or a table's spelling is read here."""
    return parse(t) if type(t) is str else t


def is_int(t: Type) -> bool:
    return type(t) is Int


def is_scalar(t: Type) -> bool:
    return type(t) in (Int, Bool)


def size_of(t: Type) -> int | None:
    """Bytes of a value of type `t` as C lays it out (None: not a stored
    value, or a struct: its layout says)."""
    if type(t) is Int:
        return t.bits // 8
    if type(t) is Bool:
        return 1
    if type(t) is Array:
        return t.elem.bits // 8 * t.n
    return None

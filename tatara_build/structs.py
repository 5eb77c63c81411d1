"""`defbpf-struct` layouts, as C lays them out: each field at the next
offset aligned to its own alignment (an integer's size; an array's element;
a nested struct's largest member), the struct's size rounded up to its
alignment. Rust's `#[repr(C)]` gives the same layout, and so does the BTF
both backends emit. One place for every stage: the checker (sizes, stack),
the backends (declaration order), the manifest (offsets for loaders) and
the test data (bytes to write into maps and to compare with).

Field, key and value types are written in the IR (and its JSON, and the
manifest) by their spelling, types.py's: an integer type (`u32`),
`array:<elem>:<n>` (a fixed array of integers) and `struct:<name>`. The
helpers below read and write those spellings through types.parse and
Type.spell, the one pair that knows them."""

from __future__ import annotations

from .records import dataclass

from . import ir, tables, types

# A struct value lives on the BPF stack (make, map keys and values are
# copied there), so no struct can be larger than the stack.
MAX_STRUCT_BYTES = tables.STACK_LIMIT
MAX_ARRAY_LEN = MAX_STRUCT_BYTES


def struct_type(name: str) -> str:
    return types.Struct(name).spell()


def array_type(elem: str, n: int) -> str:
    return types.Array(types.INTS[elem], n).spell()


def declared(t: str | None) -> types.Type | None:
    """The type a declaration spells (None: no type, or not a spelling)."""
    if not t:
        return None
    try:
        return types.parse(t)
    except ValueError:
        return None


def struct_name(t: str | None) -> str | None:
    """`flow` for `struct:flow`, else None."""
    d = declared(t)
    return d.name if type(d) is types.Struct else None


def ref_name(t: str | None) -> str | None:
    """`flow` for `ref:struct:flow`, else None."""
    d = declared(t)
    return d.target.name if type(d) is types.Ref else None


def array_parts(t: str | None) -> tuple[str, int] | None:
    """(`u8`, 16) for `array:u8:16`, else None."""
    d = declared(t)
    return (d.elem.spell(), d.n) if type(d) is types.Array else None


@dataclass(frozen=True)
class FieldLayout:
    name: str  # the user's name (kebab-case)
    type: str  # u32, array:u8:16, struct:inner
    offset: int
    size: int


@dataclass(frozen=True)
class Layout:
    name: str
    size: int
    align: int
    fields: tuple[FieldLayout, ...]

    def field(self, name: str) -> FieldLayout | None:
        return next((f for f in self.fields if f.name == name), None)


def size_align(t: str, layouts: dict[str, Layout]) -> tuple[int, int]:
    """Size and alignment of a field type (KeyError: an unknown struct)."""
    if t in tables.INT_TYPES:
        n = tables.INT_TYPES[t].bits // 8
        return n, n
    parts = array_parts(t)
    if parts is not None:
        elem, n = parts
        size, align = size_align(elem, layouts)
        return size * n, align
    layout = layouts[struct_name(t)]
    return layout.size, layout.align


def layout_of(decl: ir.StructDecl, layouts: dict[str, Layout]) -> Layout:
    """The C layout of `decl`, its field types already known (the checker
    reports unknown ones first)."""
    offset, align, fields = 0, 1, []
    for f in decl.fields:
        size, a = size_align(f.type, layouts)
        offset = (offset + a - 1) // a * a
        fields.append(FieldLayout(f.name, f.type, offset, size))
        offset += size
        align = max(align, a)
    size = (offset + align - 1) // align * align
    return Layout(decl.name, size, align, tuple(fields))


def members(layout: Layout) -> list[tuple[str, str | None, int]]:
    """The members a backend declares: each field (name, type, size), and
    each gap the alignment leaves, interior or at the end, as an explicit
    `(PAD, None, nbytes)` byte array. Explicit members are copied by every
    struct copy (padding need not be), so a value built zeroed keeps zero
    gaps wherever it is copied: struct keys hash the same everywhere. The
    layout is unchanged (byte arrays align to 1)."""
    out: list[tuple[str, str | None, int]] = []
    at = 0
    for f in layout.fields:
        if f.offset > at:
            out.append((PAD, None, f.offset - at))
        out.append((f.name, f.type, f.size))
        at = f.offset + f.size
    if layout.size > at:
        out.append((PAD, None, layout.size - at))
    return out


PAD = "<pad>"  # members() marks gaps with this name; backends number them


def layouts(structs: list[ir.StructDecl]) -> dict[str, Layout]:
    """Every struct's layout, in declaration order; a field naming an
    unknown (or later) struct is skipped (the checker has reported it)."""
    out: dict[str, Layout] = {}
    for decl in structs:
        known = [f for f in decl.fields if field_type_known(f.type, out)]
        if len(known) == len(decl.fields) and decl.name not in out:
            out[decl.name] = layout_of(decl, out)
    return out


def field_type_known(t: str, layouts: dict[str, Layout]) -> bool:
    if t in tables.INT_TYPES:
        return True
    parts = array_parts(t)
    if parts is not None:
        return parts[0] in tables.INT_TYPES
    return struct_name(t) in layouts


def byte_size(t: str, layouts: dict[str, Layout]) -> int:
    return size_align(t, layouts)[0]


# --- values as tests write them: (make flow :packets 4) -------------------------

StructValue = dict  # field name -> int | str | list[int] | StructValue


def encode(layout: Layout, values: dict, layouts: dict[str, Layout]) -> tuple[bytes, bytes]:
    """The bytes of a struct value (omitted fields and padding zero) and a
    mask of the bytes the value names (0xff) — what a partial expectation
    compares. ValueError says what is wrong."""
    data, mask = bytearray(layout.size), bytearray(layout.size)
    for name, value in values.items():
        f = layout.field(name)
        if f is None:
            known = ", ".join(f":{x.name}" for x in layout.fields)
            raise ValueError(f"struct `{layout.name}` has no field `:{name}` (fields: {known})")
        raw, m = encode_field(f.type, value, f"{layout.name}:{name}", layouts)
        data[f.offset:f.offset + f.size] = raw
        mask[f.offset:f.offset + f.size] = m
    return bytes(data), bytes(mask)


def encode_field(t: str, value, where: str, layouts: dict[str, Layout]) -> tuple[bytes, bytes]:
    if t in tables.INT_TYPES:
        info = tables.INT_TYPES[t]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"field `{where}` is {t}: write an integer")
        if not info.min <= value <= info.max:
            raise ValueError(f"value {value} does not fit field `{where}` ({t})")
        return value.to_bytes(info.bits // 8, "little", signed=info.signed), b"\xff" * (info.bits // 8)
    parts = array_parts(t)
    if parts is not None:
        elem, n = parts
        if isinstance(value, str):
            if elem not in ("u8", "i8"):
                raise ValueError(f"field `{where}` is an array of {elem}: write a list of integers")
            items = list(value.encode("utf-8"))
            if len(items) > n:
                raise ValueError(f"{value!r} is {len(items)} bytes, longer than field `{where}` ({n} bytes)")
            items += [0] * (n - len(items))  # a string is compared with its NUL padding
        elif isinstance(value, list):
            items = value
            if len(items) > n:
                raise ValueError(f"field `{where}` holds {n} elements, got {len(items)}")
            items = items + [0] * (n - len(items))
        else:
            raise ValueError(f"field `{where}` is an array ({elem} × {n}): write a list of integers"
                             + (" or a string" if elem in ("u8", "i8") else ""))
        raw, mask = b"", b""
        for i, item in enumerate(items):
            r, m = encode_field(elem, item, f"{where}[{i}]", layouts)
            raw, mask = raw + r, mask + m
        return raw, mask
    inner = layouts[struct_name(t)]
    if not isinstance(value, dict):
        raise ValueError(f"field `{where}` is struct `{inner.name}`: write (make {inner.name} …)")
    return encode(inner, value, layouts)


def decode(layout: Layout, raw: bytes, layouts: dict[str, Layout]) -> dict:
    """A struct value read back from the kernel, field by field."""
    out = {}
    for f in layout.fields:
        out[f.name] = decode_field(f.type, raw[f.offset:f.offset + f.size], layouts)
    return out


def decode_field(t: str, raw: bytes, layouts: dict[str, Layout]):
    if t in tables.INT_TYPES:
        info = tables.INT_TYPES[t]
        return int.from_bytes(raw, "little", signed=info.signed)
    parts = array_parts(t)
    if parts is not None:
        elem, n = parts
        size = byte_size(elem, layouts)
        return [decode_field(elem, raw[i * size:(i + 1) * size], layouts) for i in range(n)]
    return decode(layouts[struct_name(t)], raw, layouts)

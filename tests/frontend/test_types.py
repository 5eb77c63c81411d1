"""Type objects (tatara_build/types.py): the spelling the IR's JSON and the
manifest keep, the names messages use, and equality that refuses strings."""

import json
from pathlib import Path

import pytest

from tatara_build import types
from tatara_build.types import (BOOL, ERROR, NEVER, U8, U32, UNIT, Array, Header, Int, LpmKey, Option, Ref, Struct,
                                parse)

GOLDEN_IR = Path(__file__).resolve().parents[1] / "golden" / "ir"


def spellings(value):
    if isinstance(value, dict):
        if isinstance(value.get("type"), str) and "form" in value:
            yield value["type"]
        for v in value.values():
            yield from spellings(v)
    elif isinstance(value, list):
        for v in value:
            yield from spellings(v)


def test_every_type_in_the_ir_goldens_reads_back_to_its_spelling():
    seen = {s for path in GOLDEN_IR.glob("*.json") for s in spellings(json.loads(path.read_text()))}
    assert {"u32", "header:ipv4", "option:ref:struct:flow", "array:u8:16", "lpm-key:4"} <= seen
    for s in seen:
        assert parse(s).spell() == s


@pytest.mark.parametrize("t, spelled, shown", [
    (U32, "u32", "u32"),
    (Int(8, True), "i8", "i8"),
    (BOOL, "bool", "bool"),
    (UNIT, "unit", "no value (unit)"),
    (NEVER, "never", "never"),
    (ERROR, "?", "?"),
    (Header("ipv4"), "header:ipv4", "header:ipv4"),
    (Option(Header("tcp")), "option:header:tcp", "option:header:tcp"),
    (Option(Ref(Struct("flow"))), "option:ref:struct:flow", "option:ref:struct:flow"),
    (Array(U8, 16), "array:u8:16", "array:u8:16"),
    (Struct("flow-key"), "struct:flow-key", "struct `flow-key`"),
    (Ref(Struct("flow")), "ref:struct:flow", "a map value of struct `flow`"),
    (LpmKey(16), "lpm-key:16", "lpm-key:16"),
])
def test_spell_parse_and_show(t, spelled, shown):
    assert t.spell() == spelled
    assert parse(spelled) == t and hash(parse(spelled)) == hash(t)
    assert t.show() == shown


@pytest.mark.parametrize("bad", ["", "u128", "header:", "array:u8", "array:bool:4", "ref:flow", "lpm-key:x", "struct"])
def test_parse_refuses_what_is_not_a_type(bad):
    with pytest.raises(ValueError, match="not a type"):
        parse(bad)


def test_a_type_compared_with_a_string_is_an_internal_error():
    # a rule still written against spellings fails loudly instead of never matching
    with pytest.raises(TypeError, match="compare types"):
        _ = U32 == "u32"
    with pytest.raises(TypeError):
        _ = "bool" in (BOOL,) and BOOL in ("bool",)


def test_integer_ranges_and_sizes():
    assert (U8.min, U8.max, parse("i16").min, parse("i16").max) == (0, 255, -32768, 32767)
    assert U8.fits(255) and not U8.fits(256) and not U8.fits(-1)
    assert [types.size_of(t) for t in (U32, BOOL, Array(U8, 16), Struct("x"), UNIT)] == [4, 1, 16, None, None]
    assert types.is_scalar(BOOL) and types.is_int(U32) and not types.is_int(BOOL)

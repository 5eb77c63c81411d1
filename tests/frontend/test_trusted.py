"""The frontend builds IR nodes without validation (model.py records, for
speed). Hold its output to what validation accepts: every node's dump
validates (pydantic models mirrored from the IR classes) into an equal node
with the same fields in order, and the JSON round-trips, for every example
and fixture, checked and unchecked."""

import copy
import json
import pickle
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from tatara_build import ir, tables
from tatara_build.check import check
from tatara_build.frontend import load, parse
from tatara_build.model import Model

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p.relative_to(REPO)
    for p in [*(REPO / "examples").glob("*.tlisp"), *(REPO / "tests").glob("*/fixtures/*.tlisp")]
)


def models(value):
    """Every IR record inside `value`, depth first."""
    if isinstance(value, Model):
        yield value
        for name in type(value).model_fields:
            yield from models(getattr(value, name))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from models(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from models(item)


def assert_as_if_validated(module: ir.Module) -> None:
    count = 0
    for node in models(module):
        cls = type(node)
        validated = cls.model_validate(node.model_dump())
        assert type(validated) is cls and validated == node, cls.__name__
        assert list(node.model_dump()) == list(cls.model_fields), cls.__name__
        count += 1
    assert count > 1
    copy = ir.Module.model_validate(json.loads(ir.to_json(module)))
    assert copy == module
    assert ir.to_json(copy) == ir.to_json(module)
    assert ir.to_json(module, spans=False) == ir.to_json(copy, spans=False)
    assert ir.from_json(ir.to_json(module)) == module


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_frontend_output_is_what_validation_builds(source, monkeypatch):
    monkeypatch.chdir(REPO)
    module = load(source)
    assert_as_if_validated(module)  # before check: every `type` unset
    try:
        checked = check(module)
    except Exception:  # fixtures of rejected programs: the unchecked module is enough
        return
    assert_as_if_validated(checked)


def test_sources_found():
    assert any(p.parts[0] == "examples" for p in SOURCES) and any(p.parts[0] == "tests" for p in SOURCES)


def test_mutable_defaults_are_not_shared():
    text = "(defbpf-program a :kind :xdp :attach (:target \"eth0\"))\n(defbpf-program b :kind :xdp :attach (:target \"eth0\"))\n"
    a, b = parse(text).programs
    assert a.uses_maps == b.uses_maps == [] and a.uses_maps is not b.uses_maps
    a.uses_maps.append("m")
    assert b.uses_maps == [] and ir.ProgramDecl(name="c", kind="xdp").uses_maps == []


def test_trusted_is_the_plain_constructor():
    span = ir.trusted.Span(file="f", line=1, col=2, end_line=1, end_col=5)
    assert span == ir.Span(file="f", line=1, col=2, end_line=1, end_col=5) and hash(span) == hash(ir.Span(**span.model_dump()))
    moved = span.model_copy(update={"line": 9})
    assert moved.line == 9 and span.line == 1 and moved != span
    node = ir.trusted.Call(span=span, helper="ktime-get-ns")
    assert node == ir.Call(span=span, helper="ktime-get-ns") and node != ir.Call(span=moved, helper="ktime-get-ns")
    assert node.model_dump(exclude_none=True) == {"span": span.model_dump(), "form": "call", "helper": "ktime-get-ns", "args": []}
    with pytest.raises(AttributeError):
        ir.trusted.Expr  # not a model


def test_records_refuse_what_pydantic_refused():
    span = ir.Span(file="f", line=1, col=2, end_line=1, end_col=5)
    with pytest.raises(TypeError, match="frozen"):
        span.line = 3
    with pytest.raises(TypeError, match="missing field `helper`"):
        ir.Call(span=span)
    with pytest.raises(TypeError, match="unknown field"):
        ir.Call(helper="h", colour="red")
    with pytest.raises(AttributeError):
        ir.Int(value=1).colour = "red"  # slots: no field is made up by a typo
    with pytest.raises(TypeError, match="unhashable"):
        hash(ir.Int(value=1))
    with pytest.raises(ValidationError):
        ir.BpfFn.model_validate({"name": "f", "ctx": "c", "body": [{"form": "nope"}]})
    with pytest.raises(ValidationError):
        ir.Int.model_validate({"form": "int", "value": 1, "colour": "red"})
    with pytest.raises(ValidationError):
        ir.StructField.model_validate({"name": "f", "type": "struct:Bad"})


def test_copies_are_deep_and_equal():
    module = check(load(REPO / "examples" / "drop-syn.tlisp"))
    for twin in (copy.deepcopy(module), module.model_copy(deep=True), pickle.loads(pickle.dumps(module))):
        assert twin == module and ir.to_json(twin) == ir.to_json(module)
        assert twin.functions[0].body is not module.functions[0].body
        twin.functions[0].body.pop()
        assert twin != module
    shallow = module.model_copy(update={"file": "x.tlisp"})
    assert shallow.file == "x.tlisp" and shallow.maps is module.maps


def test_table_keys_fit_the_ir_literals():
    # The frontend passes these table keys into the IR unvalidated.
    assert set(tables.MAP_KINDS) <= set(get_args(ir.MapKind))
    assert set(tables.PROGRAM_KINDS) <= set(get_args(ir.ProgramKind))
    assert set(tables.HEADERS) <= set(get_args(ir.HeaderName))
    assert set(tables.PACKET_LAYERS) <= set(get_args(ir.Layer.model_fields["kind"].annotation))


@pytest.mark.parametrize("text", ["".join(map(chr, range(128))), "plain", "caf\u00e9 \u2603", "tab\there"])
def test_to_json_writes_what_json_dumps_writes(text):
    layer = ir.Layer(kind="raw", fields={"s": text, "n": 2**64 - 1, "m": -(2**63), "l": ["a", "b"]})
    case = ir.TestCase(name="c", expect="xdp-pass", layers=[layer])
    module = ir.Module(file=f"{text}.tlisp", source_sha256="0", tests=[ir.TestDecl(name="t", program="p", cases=[case])])
    expected = json.dumps(module.model_dump(mode="json", exclude_none=True), indent=2) + "\n"
    assert ir.to_json(module) == expected
    assert ir.from_json(ir.to_json(module)) == module


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_to_json_of_sources_matches_json_dumps(source, monkeypatch):
    monkeypatch.chdir(REPO)
    module = load(source)
    assert ir.to_json(module) == json.dumps(module.model_dump(mode="json", exclude_none=True), indent=2) + "\n"

"""JSON <-> IR is exact, for our modules and for the seed's own serde shapes
(taken from the seed's tests in bpf_fn.rs, with its newtype variants in our
fixed encoding {"form":"int","value":…} / {"form":"var","name":…})."""

import json

import pytest

from tatara_build import ir
from tatara_build.check import check
from tatara_build.frontend import parse

from .helpers import program

RET_PASS = {"form": "return", "action": "xdp-pass"}
SEED_FUNCTIONS = [
    {"name": "drop_all", "ctx": "ctx", "body": [{"form": "return", "action": "xdp-drop"}]},
    {
        "name": "tag_cpu",
        "ctx": "ctx",
        "body": [
            {
                "form": "let",
                "name": "cpu-id",
                "value": {"form": "call", "helper": "get-current-cpu", "args": []},
                "body": [RET_PASS],
            }
        ],
    },
    {
        "name": "branch",
        "ctx": "ctx",
        "body": [
            {
                "form": "if",
                "cond": {"form": "compare", "op": "eq", "left": {"form": "int", "value": 42}, "right": {"form": "int", "value": 42}},
                "then": RET_PASS,
                "otherwise": {"form": "return", "action": "xdp-drop"},
            }
        ],
    },
    {
        "name": "counter_inc",
        "ctx": "ctx",
        "body": [
            {"form": "map-set", "map": "syn-counter", "key": {"form": "int", "value": 0}, "value": {"form": "int", "value": 1}},
            RET_PASS,
        ],
    },
    {"name": "round_trip", "ctx": "ctx", "body": [RET_PASS]},
    {"name": "v", "ctx": "ctx", "body": [{"form": "map-get", "map": "m", "key": {"form": "var", "name": "k"}}]},
]


@pytest.mark.parametrize("data", SEED_FUNCTIONS, ids=[f["name"] for f in SEED_FUNCTIONS])
def test_seed_shapes_round_trip(data):
    fn = ir.BpfFn.model_validate(data)
    assert fn.model_dump(mode="json", exclude_none=True) == data
    assert ir.BpfFn.model_validate_json(json.dumps(data)) == fn


def test_seed_compare_ops_are_kebab_case():
    for op in ["eq", "ne", "lt", "gt", "le", "ge"]:
        node = {"form": "compare", "op": op, "left": {"form": "int", "value": 1}, "right": {"form": "var", "name": "x"}}
        assert ir.Compare.model_validate(node).model_dump(exclude_none=True) == node


BODIES = [
    "(let ((x (u64 0))) (loop (i 0 4) (if (= i 2) (break)) (set! x (+ x (u64 1)))) (map-set counts (u32 0) x) (return :xdp-pass))",
    "(if-let (v (map-lookup counts (u32 1))) (event-output events v) (map-delete counts (u32 1))) (return (u32 2))",
    "(if-let (t (header ctx :tcp)) (if (or (field t :syn) (not (= (field t :dst-port) 22))) (return :xdp-drop))) (return :xdp-pass)",
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("spans", [True, False])
def test_checked_modules_round_trip(body, spans):
    module = check(parse(program(body), "t.tlisp"))
    text = ir.to_json(module, spans=spans)
    again = ir.from_json(text)
    assert ir.to_json(again, spans=spans) == text
    if spans:
        assert again == module

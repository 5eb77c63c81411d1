"""Body forms (frontend/body.py): each malformed form gets one message at the datum that is
wrong, and well-formed forms become the IR a reader of the source expects (n-ary operators
fold left, multi-binding lets nest, `(u32 x)` is a cast)."""

from __future__ import annotations

import pytest

from tatara_build import ir
from tatara_build.errors import SourceError
from tatara_build.frontend import parse

from .helpers import program

KNOWN_FORMS = ("known forms: != % & * + - / < << <= = > >= >> ^ adjust-head adjust-tail and arg begin bool break call "
               "cast core-read ctx-field current-comm do event-output field field-add! get-stackid header i16 i32 i64 i8 if "
               "if-let let load loop lpm-key make map-add map-delete map-get map-lookup map-set not or printk "
               "probe-read-kernel-str probe-read-user-str redirect redirect-map return set! set-ctx-field! set-field! tail-call tp-field u16 u32 u64 u8 |")

BAD = [
    ('return', '`return` is a form; write (return …)', 1, []),
    (':xdp-pass', 'a keyword `:xdp-pass` is not a value here; return actions are written (return :xdp-pass)', 1, []),
    ('"s"', 'strings are only allowed in declarations and as the format of (printk "…" …), not elsewhere in bodies', 1, []),
    ('()', 'empty list `()` is not an expression', 1, []),
    ('((return :xdp-pass))', 'expected a form name at the head of the list, got a list `(return …)`', 2, []),
    ('(5 1)', 'expected a form name at the head of the list, got integer 5', 2, []),
    ('(retrun :xdp-pass)', 'unknown form `retrun`', 2, ['did you mean `return`?', KNOWN_FORMS]),
    ('(frob 1)', 'unknown form `frob`', 2, [KNOWN_FORMS]),
    ('(= (u32 1))', 'wrong number of arguments to `=`: expected (= a b)', 1, []),
    ('(= (u32 1) (u32 2) (u32 3))', 'wrong number of arguments to `=`: expected (= a b)', 1, []),
    ('(+ (u32 1))', 'wrong number of arguments to `+`: expected (+ a b …) with two or more operands', 1, []),
    ('(- (u32 1) (u32 2) (u32 3))', 'wrong number of arguments to `-`: expected (- a b); negative literals are written -5', 1, []),
    ('(- (u32 1))', 'wrong number of arguments to `-`: expected (- a b); negative literals are written -5', 1, []),
    ('(u32)', 'wrong number of arguments to `u32`: expected (u32 value)', 1, []),
    ('(u32 1 2)', 'wrong number of arguments to `u32`: expected (u32 value)', 1, []),
    ('(return)', 'wrong number of arguments to `return`: expected (return :action) or (return value)', 1, []),
    ('(return :a :b)', 'wrong number of arguments to `return`: expected (return :action) or (return value)', 1, []),
    ('(call)', 'wrong number of arguments to `call`: expected (call helper args…)', 1, []),
    ('(let ((x (u32 1))))', 'wrong number of arguments to `let`: expected (let ((name value) …) body…)', 1, []),
    ('(let x (return :xdp-pass))', 'expected a binding list ((name value) …)', 6, []),
    ('(let ((x)) (return :xdp-pass))', 'each binding is (name value)', 7, []),
    ('(let ((x 1 2)) (return :xdp-pass))', 'each binding is (name value)', 7, []),
    ('(let ((1 2)) (return :xdp-pass))', 'expected variable name, got integer 1', 8, []),
    ('(let ((x (u32 1)) (x (u32 2))) (return :xdp-pass))', '`x` is bound twice in this let', 20, []),
    ('(if #t)', 'wrong number of arguments to `if`: expected (if cond then [else])', 1, []),
    ('(if #t (return :xdp-pass) (return :xdp-drop) (return :xdp-tx))', 'wrong number of arguments to `if`: expected (if cond then [else])', 1, []),
    ('(and)', 'wrong number of arguments to `and`: expected (and a b …)', 1, []),
    ('(or)', 'wrong number of arguments to `or`: expected (or a b …)', 1, []),
    ('(not)', 'wrong number of arguments to `not`: expected (not x)', 1, []),
    ('(not #t #f)', 'wrong number of arguments to `not`: expected (not x)', 1, []),
    ('(cast u128 (u32 1))', 'expected a type (u8, u16, u32, u64, i8, i16, i32, i64, bool), got `u128`', 7, []),
    ('(cast 5 (u32 1))', 'expected a type (u8, u16, u32, u64, i8, i16, i32, i64, bool), got integer 5', 7, []),
    ('(cast u32)', 'wrong number of arguments to `cast`: expected (cast type value)', 1, []),
    ('(set! x)', 'wrong number of arguments to `set!`: expected (set! name value)', 1, []),
    ('(set! 5 (u32 1))', 'expected variable name, got integer 5', 7, []),
    ('(loop (i 0) (break))', 'expected a loop header (i start end) with literal bounds', 7, []),
    ('(loop i (break))', 'expected a loop header (i start end) with literal bounds', 7, []),
    ('(loop (i 0 x) (break))', 'loop bounds must be integer literals (the verifier needs a constant bound), got `x`', 12, []),
    ('(loop (i 0 10))', 'wrong number of arguments to `loop`: expected (loop (i start end) body…)', 1, []),
    ('(break 1)', 'wrong number of arguments to `break`: expected (break)', 1, []),
    ('(header ctx)', 'wrong number of arguments to `header`: expected (header ctx :tcp)', 1, []),
    ('(header ctx tcp)', 'expected header as a :keyword, got `tcp`', 13, []),
    ('(if-let x (return :xdp-pass))', 'expected (if-let (name (header ctx :tcp)) then [else])', 9, []),
    ('(if-let (x) (return :xdp-pass))', 'expected (if-let (name (header ctx :tcp)) then [else])', 9, []),
    ('(if-let (x (header ctx :tcp)))', 'wrong number of arguments to `if-let`: expected (if-let (name optional) then [else])', 1, []),
    ('(field t)', 'wrong number of arguments to `field`: expected (field header-or-struct :name)', 1, []),
    ('(field t tcp)', 'expected field as a :keyword, got `tcp`', 10, []),
    ('(ctx-field ctx)', 'wrong number of arguments to `ctx-field`: expected (ctx-field ctx :name)', 1, []),
    ('(ctx-field ctx len)', 'expected context field as a :keyword, got `len`', 16, []),
    ('(map-get m)', 'wrong number of arguments to `map-get`: expected (map-get map key)', 1, []),
    ('(map-get m 1 2)', 'wrong number of arguments to `map-get`: expected (map-get map key)', 1, []),
    ('(map-set m 1)', 'wrong number of arguments to `map-set`: expected (map-set map key value)', 1, []),
    ('(map-add m 1 2 3)', 'wrong number of arguments to `map-add`: expected (map-add map key delta)', 1, []),
    ('(map-delete m)', 'wrong number of arguments to `map-delete`: expected (map-delete map key)', 1, []),
    ('(event-output m)', 'wrong number of arguments to `event-output`: expected (event-output map value)', 1, []),
    ('(map-get 5 1)', 'expected map name, got integer 5', 10, []),
    ('(lpm-key 24)', 'wrong number of arguments to `lpm-key`: expected (lpm-key prefix-bits address), or (lpm-key prefix-bits hi lo) for IPv6 tries', 1, []),
    ('(lpm-key 24 1 2 3)', 'wrong number of arguments to `lpm-key`: expected (lpm-key prefix-bits address), or (lpm-key prefix-bits hi lo) for IPv6 tries', 1, []),
    ('(let ((bpf-x (u32 1))) (return :xdp-pass))', '`bpf-x` is reserved in the generated C or Rust (keywords, `bpf-…`, mem*); choose another name', 8, []),
]
GOOD = ['(begin)', '(do)']


def diagnostics(body: str):
    try:
        parse(program(body + " (return :xdp-pass)"), "t.tlisp")
    except SourceError as err:
        return [(d.message, d.span.line, d.span.col, d.notes) for d in err.diagnostics]
    return []


@pytest.mark.parametrize("body, message, col, notes", BAD, ids=[f"{b[0][:30]}: {b[1][:40]}" for b in BAD])
def test_each_malformed_body_form_has_one_message_at_the_wrong_datum(body, message, col, notes):
    assert diagnostics(body) == [(message, 6, col, notes)]


@pytest.mark.parametrize("body", GOOD)
def test_well_formed_neighbours_are_accepted(body):
    assert diagnostics(body) == []


def body_of(text: str) -> list[ir.Node]:
    return parse(program(text), "t.tlisp").functions[0].body


def test_operators_fold_left_and_pairs_stay_pairs():
    (let,) = body_of("(let ((x (+ (u32 1) 2 3)) (y (- x 1)) (z (<< y 2))) (return x))")
    add = let.value
    assert (add.op, add.left.op, add.left.left.to, add.left.right.value, add.right.value) == ("add", "add", "u32", 2, 3)
    inner = let.body[0]
    assert (inner.name, inner.value.op, inner.value.left.name, inner.value.right.value) == ("y", "sub", "x", 1)
    innermost = inner.body[0]
    assert (innermost.name, innermost.value.op) == ("z", "shl")
    assert isinstance(innermost.body[0], ir.ReturnValue)


@pytest.mark.parametrize("op, name", [("=", "eq"), ("!=", "ne"), ("<", "lt"), (">", "gt"), ("<=", "le"), (">=", "ge")])
def test_each_comparison_keeps_its_own_operator(op, name):
    (if_,) = body_of(f"(if ({op} (u32 1) (u32 2)) (return :xdp-drop) (return :xdp-pass))")
    assert if_.cond.op == name and if_.cond.left.value.value == 1 and if_.cond.right.value.value == 2


@pytest.mark.parametrize("op, name", [("+", "add"), ("*", "mul"), ("&", "bit-and"), ("|", "bit-or"), ("^", "bit-xor"),
                                      ("-", "sub"), ("/", "div"), ("%", "rem"), ("<<", "shl"), (">>", "shr")])
def test_each_arithmetic_operator_keeps_its_own_name(op, name):
    (let,) = body_of(f"(let ((x ({op} (u32 6) 3))) (return x))")
    assert let.value.op == name and let.value.right.value == 3


def test_casts_both_spellings_and_the_map_forms_build_their_nodes():
    body = body_of("(let ((a (cast u8 (u32 1))) (b (i64 a)) (c (bool #t))) "
                   "(map-set m (u32 1) (u64 2)) (map-add m (u32 1) (u64 3)) (map-delete m (u32 1)) "
                   "(event-output e (u64 4)) (if-let (v (map-lookup m (u32 5))) (return :xdp-drop)) (return :xdp-pass))")
    let = body[0]
    assert (let.value.to, let.body[0].value.to, let.body[0].body[0].value.to) == ("u8", "i64", "bool")
    set_, add, delete, out, if_let, _ = let.body[0].body[0].body
    assert (type(set_), set_.map, set_.key.value.value, set_.value.value.value) == (ir.MapSet, "m", 1, 2)
    assert (type(add), add.value.value.value) == (ir.MapAdd, 3)
    assert (type(delete), delete.key.value.value) == (ir.MapDelete, 1)
    assert (type(out), out.map, out.value.value.value) == (ir.EventOutput, "e", 4)
    assert (type(if_let.value), if_let.value.map, if_let.name) == (ir.MapLookup, "m", "v")

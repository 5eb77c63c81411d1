"""Body forms (frontend/body.py) given the wrong shape: each message whole, at its form, with
its notes; and local names that only a variable or the context may take (a C library name)."""

from __future__ import annotations

import pytest

from tatara_build.check import check
from tatara_build.errors import SourceError
from tatara_build.frontend import parse

from .helpers import program

KEY = "(defbpf-struct key (a u32))\n"
FUNCS = "(defbpf-func f ((x u32)) :returns u32 x)\n(defbpf-func g ((x u32)) :returns u32 x)\n"
REJECTED = [
    # head, body, kind, target, message, (line, col), notes
    ("", "(let ((k (make))) (return :xdp-pass))", ":xdp", "eth0",
     "wrong number of arguments to `make`: expected (make STRUCT :field value …)", (6, 10), []),
    (KEY, "(let ((k (make key 1 2))) (return :xdp-pass))", ":xdp", "eth0",
     "expected struct field as a :keyword, got integer 1", (7, 20), []),
    ("", "(if-let (v (map-lookup counts (u32 1))) (field-add! v :a 1 2)) (return :xdp-pass)", ":xdp", "eth0",
     "wrong number of arguments to `field-add!`: expected (field-add! map-value :field delta)", (6, 41), []),
    ("", "(let ((c (current-comm 1))) (return :xdp-pass))", ":xdp", "eth0",
     "wrong number of arguments to `current-comm`: expected (current-comm)", (6, 10), []),
    ("", "(redirect 1 :egress)", ":xdp", "eth0", "unknown redirect flag `:egress`", (6, 13),
     ["did you mean `ingress`?", "known: ingress"]),
    ("", "(let ((x (tp-field ctx next_pid))) (return :ok))", ":tracepoint", "sched/sched_switch",
     "expected the tracepoint field as a :keyword, got `next_pid`", (6, 24), []),
    (FUNCS, "(frob 1) (return :xdp-pass)", ":xdp", "eth0", "unknown form `frob`", (8, 2), None),
]


@pytest.mark.parametrize("head, body, kind, target, message, at, notes", REJECTED, ids=[r[4][:50] for r in REJECTED])
def test_a_misshapen_body_form_is_one_message_at_its_form(head, body, kind, target, message, at, notes):
    with pytest.raises(SourceError) as err:
        check(parse(head + program(body, kind, target), "t.tlisp"))
    (d,) = err.value.diagnostics
    assert (d.message, (d.span.line, d.span.col)) == (message, at)
    if notes is not None:
        assert d.notes == notes


def test_an_unknown_form_lists_the_files_functions_in_one_note():
    with pytest.raises(SourceError) as err:
        check(parse(FUNCS + program("(frob 1) (return :xdp-pass)"), "t.tlisp"))
    assert err.value.diagnostics[0].notes[-1] == "functions (defbpf-func): f g"


def test_a_c_library_name_is_a_fine_variable_and_context_name():
    """`abs` may not name a map or program (the generated C would redefine the builtin) but a
    local variable, set! target or the context parameter may take it."""
    check(parse(program("(let ((abs (u32 1))) (set! abs (u32 2)) (return :xdp-pass))"), "t.tlisp"))
    check(parse('(defbpf-program p :kind :xdp :attach (:target "eth0"))\n'
                "(bpf-fn p (abs) (if-let (ip (header abs :ipv4)) (return :xdp-drop)) (return :xdp-pass))\n", "t.tlisp"))

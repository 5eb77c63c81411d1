"""defbpf-func with struct parameters and a struct result: passed and
returned by value (a copy, as the functions are inlined), map values passed
as copies, every dialect emits them, the callee's frame counts the struct
at every call site, and each misuse is one message at its form."""

from __future__ import annotations

import pytest

from tatara_build import backends

from .helpers import checked, position, problems

HEAD = """\
(defbpf-struct flow (packets u64) (bytes u64) (last u32))
(defbpf-struct other (a u32))
(defbpf-struct big (words (array u64 40)))
(defbpf-map flows :kind :hash :key u32 :value flow :max-entries 16)
(defbpf-map ring :kind :ring-buf :value flow :max-entries 4096)
"""


def src(funcs: str, body: str) -> str:
    return (HEAD + funcs + '\n(defbpf-program p :kind :xdp :attach (:target "eth0") :uses-maps (flows ring))\n'
            f"(bpf-fn p (ctx)\n  {body})\n")


WEIGHT = "(defbpf-func weight ((f flow) (scale u64)) :returns u64 (+ (* (field f :packets) scale) (field f :bytes)))"
BUMP = ("(defbpf-func bump ((f flow) (len u64)) :returns flow\n"
        "  (make flow :packets (+ (field f :packets) 1) :bytes (+ (field f :bytes) len) :last (field f :last)))")
ACCEPTED = [
    # a map value passed by value (a copy), a struct result stored, sent and read
    (WEIGHT + "\n" + BUMP,
     "(if-let (v (map-lookup flows (u32 1))) (begin (map-set flows (u32 1) (bump v (u64 60))) "
     "(if (> (weight v 2) 100) (return :xdp-drop)))) (return :xdp-pass)"),
    (BUMP, "(event-output ring (bump (make flow) (u64 1))) (return :xdp-pass)"),
    (BUMP, "(let ((f (bump (make flow :last 3) (u64 1)))) (if (= (field f :last) 3) (return :xdp-drop))) "
           "(return :xdp-pass)"),
    (BUMP, "(if (= (field (bump (make flow) (u64 1)) :packets) 1) (return :xdp-drop)) (return :xdp-pass)"),
    # a parameter may be replaced whole; a function may pass it on
    (BUMP + "\n(defbpf-func twice ((f flow)) :returns flow (set! f (bump f (u64 0))) (bump f (u64 0)))",
     "(map-set flows (u32 1) (twice (make flow))) (return :xdp-pass)"),
    ("(defbpf-func pick ((a flow) (b flow)) :returns flow (if (> (field a :bytes) (field b :bytes)) (return a) "
     "(return b)))", "(map-set flows (u32 0) (pick (make flow :bytes 1) (make flow :bytes 2))) (return :xdp-pass)"),
]


@pytest.mark.parametrize("funcs, body", ACCEPTED)
def test_accepted_and_emitted_by_every_dialect(funcs, body, tmp_path):
    module = checked(src(funcs, body))
    for i, name in enumerate(backends.names()):
        backends.emit(module, name, tmp_path / str(i))


def test_the_dialects_pass_structs_by_value():
    module = checked(src(BUMP, "(map-set flows (u32 1) (bump (make flow) (u64 1))) (return :xdp-pass)"))
    c = backends.render(module, "c")
    rust = backends.render(module, "aya")
    assert "static __always_inline struct flow bump(struct flow f, __u64 len)" in "".join(c.values())
    assert "fn bump(f: flow, len: u64) -> flow {" in "".join(rust.values())


REJECTED = [
    # funcs, body, message, snippet the error points at
    ("(defbpf-func f ((x flwo)) :returns u32 1)", "(return :xdp-pass)",
     "unknown type `flwo` for parameter `x` of defbpf-func `f`: an integer type, bool or a defbpf-struct", "(x flwo)"),
    ("(defbpf-func f ((x u32)) :returns flwo (make flow))", "(return :xdp-pass)",
     "unknown type `flwo` for :returns of defbpf-func `f`: an integer type, bool or a defbpf-struct", "(defbpf-func f"),
    (WEIGHT, "(if (> (weight (make other) 1) 1) (return :xdp-drop)) (return :xdp-pass)",
     "type mismatch: expected struct `flow`, found struct `other` for parameter `f` of `weight`", "(make other)"),
    (WEIGHT, "(if (> (weight (u64 1) 1) 1) (return :xdp-drop)) (return :xdp-pass)",
     "type mismatch: expected struct `flow`, found u64 for parameter `f` of `weight`", "(u64 1) 1)"),
    (BUMP, "(if (> (bump (make flow) (u64 1)) (u64 1)) (return :xdp-drop)) (return :xdp-pass)",
     "cannot compare struct `flow` with u64: comparisons take integers", "(> (bump"),
    ("(defbpf-func f ((x flow)) (set-field! x :last 1))", "(return :xdp-pass)",
     "set-field! writes to a map value bound by (if-let (v (map-lookup MAP KEY)) …); found struct `flow` (set on a "
     "non-map value)", "x :last 1"),
    ("(defbpf-func f ((x flow)) :returns u32 (field x :lst))", "(return :xdp-pass)",
     "struct `flow` has no field `:lst`", "(field x :lst)"),
    ("(defbpf-func f ((x flow)) :returns other x)", "(return :xdp-pass)",
     "type mismatch: expected struct `other`, found struct `flow`", "x)\n"),
]


@pytest.mark.parametrize("case", REJECTED, ids=lambda c: c[2][:50])
def test_rejected_with_one_message_at_the_form(case):
    funcs, body, message, snippet = case
    text = src(funcs, body)
    found = problems(text)
    line, col = position(text, snippet)
    assert [(m, ln, c) for m, ln, c in found if message in m] == [(found[0][0], line, col)], found
    assert len(found) == 1, found


def test_struct_parameters_count_on_the_stack_at_every_call_site():
    # big is 320 bytes: a copy in the callee's frame plus the caller's own value is 640 > 512
    funcs = "(defbpf-func first-word ((b big)) :returns u64 (u64 1))"
    one = "(if (= (first-word (make big)) 0) (return :xdp-drop)) (return :xdp-pass)"
    assert problems(src(funcs, one)) == []
    held = "(let ((b (make big))) (if (= (first-word b) 0) (return :xdp-drop))) (return :xdp-pass)"
    text = src(funcs, held)
    line, col = position(text, "(first-word b)")
    [(message, ln, c)] = problems(text)
    assert "estimated stack use of `p` reaches 640 bytes here, over the BPF limit of 512" in message
    assert (ln, c) == (line, col)


def test_a_parameter_with_a_global_name_is_one_error_not_one_per_use():
    text = src("(defbpf-func f ((flows flow)) :returns u64 (+ (field flows :packets) (field flows :bytes)))",
               "(return :xdp-pass)")
    assert problems(text) == [("variable `flows` has the name of a map, program, function or struct; choose another "
                               "name", *position(text, "(flows flow)"))]

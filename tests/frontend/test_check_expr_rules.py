"""Every expression rule of the checker (check/exprs.py) with its own failing body: the full
message, the column it points at, and its notes (suggestions, the known alternatives), plus
the accepted neighbours that show where each rule's line runs. One mistake, one message."""

from __future__ import annotations

import pytest

from tatara_build.check import check
from tatara_build.errors import SourceError
from tatara_build.frontend import parse

from .helpers import program

BODY_LINE = 6  # helpers.program puts the body on line 6
XDP_ACTIONS = "known: :xdp-aborted :xdp-drop :xdp-pass :xdp-tx :xdp-redirect"

REJECTED = [
    # body, message, column, notes
    ("(loop (i 0 4) (break) (map-add arr 0 1)) (return :xdp-pass)",
     "unreachable expression: it follows a (return …) or (break)", 23, []),
    ("(let ((x (map-set counts (u32 1) (u64 1)))) (return :xdp-pass))",
     "`x` cannot be bound to no value (unit); let binds integers, booleans and struct values", 10, []),
    ("(let ((ctx (u32 1))) (return :xdp-pass))", "`ctx` is the program context; choose another variable name", 1, []),
    ("(loop (ctx 0 4) (break)) (return :xdp-pass)", "`ctx` is the program context; choose another variable name", 1, []),
    ("(if-let (arr (header ctx :tcp)) (return :xdp-drop)) (return :xdp-pass)",
     "variable `arr` has the name of a map, program, function or struct; choose another name", 1, []),
    ("(if-let (v (map-lookup counts (u32 1))) (set! v (u64 2))) (return :xdp-pass)",
     "`v` is a if-let variable; only let-bound variables can be changed with set!", 41, []),
    ("(let ((x (u32 1))) (set! x (u64 2)) (return :xdp-pass))", "type mismatch: expected u32, found u64", 28,
     ["convert explicitly: (u32 …)"]),
    ("(let ((x (u32 1))) (set! x #t) (return :xdp-pass))", "type mismatch: expected u32, found bool", 28,
     ["convert explicitly: (u32 …)"]),
    ("(let ((x (bool 1))) (return :xdp-pass))", "an integer literal cannot be cast to bool; write #t or #f", 10, []),
    ("(if-let (t (header ctx :tcp)) (let ((x (u32 t))) (return :xdp-pass))) (return :xdp-pass)",
     "cannot cast header:tcp to u32", 40, []),
    ("(if-let (t (header ctx :tcp)) (if (= t (u32 1)) (return :xdp-pass))) (return :xdp-pass)",
     "cannot compare header:tcp with u32; convert one side, e.g. (header:tcp …)", 35, []),
    ("(let ((x (+ #t #f))) (return :xdp-pass))", "`add` needs integer operands, found bool and bool", 10, []),
    ("(let ((x (* (u32 1) #f))) (return :xdp-pass))", "type mismatch: expected u32, found bool", 21,
     ["convert explicitly: (u32 …)"]),
    ("(let ((a (u8 1)) (b (u16 1)) (x (+ a b))) (return :xdp-pass))", "type mismatch: expected u8, found u16", 38,
     ["convert explicitly: (u8 …)"]),
    ("(if (and #t (u32 1)) (return :xdp-pass)) (return :xdp-pass)", "type mismatch: expected bool, found u32", 13, []),
    ("(if (or (u32 1) #f) (return :xdp-pass)) (return :xdp-pass)", "type mismatch: expected bool, found u32", 9, []),
    ("(if (not (u32 1)) (return :xdp-pass)) (return :xdp-pass)", "type mismatch: expected bool, found u32", 10, []),
    ("(if-let (t (header ctx :tcp)) (if (field t :dst-prot) (return :xdp-drop))) (return :xdp-pass)",
     "unknown tcp field `:dst-prot`", 35,
     ["did you mean `dst-port`?", "known: :src-port :dst-port :seq :ack-seq :data-offset :flags :fin :syn :rst :psh "
      ":ack :urg :ece :cwr :window :checksum :urg-ptr"]),
    ("(let ((x (u32 1))) (if (field x :ttl) (return :xdp-drop)) (return :xdp-pass))",
     "(field …) needs a parsed header bound by if-let, a struct value or a map value bound by if-let on map-lookup, found u32", 31, []),
    ("(let ((count (u32 1))) (if (= cuont 1) (return :xdp-pass)) (return :xdp-pass))",
     "unknown variable `cuont`", 31, ["did you mean `count`?"]),
    ("(if (= (ctx-field c2 :len) (u32 1)) (return :xdp-drop)) (return :xdp-pass)",
     "`c2` is not the program context (`ctx`)", 8, []),
    ("(if-let (t (header c2 :tcp)) (return :xdp-drop)) (return :xdp-pass)", "`c2` is not the program context (`ctx`)", 12, []),
    ("(if (= (ctx-field ctx :lne) (u32 1)) (return :xdp-drop)) (return :xdp-pass)",
     "xdp programs have no context field `:lne`", 8, ["did you mean `len`?", "known: :len :ingress-ifindex"]),
    ("(return :xdp-dorp)", "unknown return action `:xdp-dorp` for xdp programs", 1, ["did you mean `xdp-drop`?", XDP_ACTIONS]),
    ("(call ktime-nss) (return :xdp-pass)", "unknown helper `ktime-nss`", 1,
     ["did you mean `ktime-ns`?", "known: get-current-cpu, get-current-pid-tgid, get-current-uid-gid, get-prandom, ktime-ns, "
      "ktime-boot-ns, ktime-coarse-ns, ktime-tai-ns, get-smp-processor-id, get-numa-node-id, jiffies64, "
      "get-current-task, get-current-cgroup-id, current-comm, probe-read-user-str, probe-read-kernel-str"]),
    ("(call get-current-pid-tgid) (return :xdp-pass)", "helper `get-current-pid-tgid` is not available to xdp programs", 1,
     ["available: get-current-cpu, get-smp-processor-id, get-numa-node-id, get-prandom, ktime-ns, ktime-boot-ns, "
      "ktime-coarse-ns, ktime-tai-ns, jiffies64",
      "`get-current-pid-tgid` is available to kprobe, tracepoint, lsm, perf-event programs"]),
    ("(call ktime-ns (u32 1) (u32 2)) (return :xdp-pass)", "helper `ktime-ns` takes 0 argument(s), got 2", 1, []),
    ("(event-output events #t) (return :xdp-pass)", "event-output sends an integer, a struct or (current-comm); found bool", 22, []),
    ("(if-let (v (map-lookup ghost (u32 1))) (return :xdp-drop) (return :xdp-pass))", "unknown map `ghost`", 12, []),
    ("(map-get cuonts (u32 1)) (return :xdp-pass)", "unknown map `cuonts`", 1, ["did you mean `counts`?"]),
    ("(map-add arr 0 1)",
     "`p` can reach its end without returning: every path of a program body must end in (return :action); "
     "the last expression has no value (unit)", 1, ["actions for xdp: :xdp-aborted :xdp-drop :xdp-pass :xdp-tx :xdp-redirect"]),
    ("(if #t (return :xdp-pass) (u32 1))",
     "`p` can reach its end without returning: every path of a program body must end in (return :action); "
     "the last expression has u32", 1, ["actions for xdp: :xdp-aborted :xdp-drop :xdp-pass :xdp-tx :xdp-redirect"]),
    ("(let ((x (if #t (u32 1) (u64 2)))) (return :xdp-pass))", "type mismatch: expected u32, found u64", 25,
     ["convert explicitly: (u32 …)"]),
    ("(if-let (t (header ctx :tcp)) (u32 1) (u64 1)) (return :xdp-pass)", "type mismatch: expected u32, found u64", 39,
     ["convert explicitly: (u32 …)"]),
    ("(if (= 1 2) (return :xdp-pass)) (return :xdp-pass)",
     "cannot infer the integer type of 1; write it with a width, e.g. (u32 1)", 8, []),
    ("(let ((x (+ 1 2))) (return :xdp-pass))", "cannot infer the integer type of 1; write it with a width, e.g. (u32 1)", 13, []),
    ("(map-add arr 0 (<< 1 64)) (return :xdp-pass)", "shift amount 64 is out of range for u64", 22, []),
    ("(if (< (u32 1) ghost) (return :xdp-pass)) (return :xdp-pass)", "unknown variable `ghost`", 16, []),
    ("(return 4294967296)", "integer 4294967296 does not fit in u32 (0 to 4294967295)", 9, []),
    ("(return #t)", "type mismatch: expected u32, found bool", 9, ["convert explicitly: (u32 …)"]),
    ("(if (u32 1) (return :xdp-pass)) (return :xdp-pass)", "type mismatch: expected bool, found u32", 5, []),
    ("(map-set counts #t (u64 1)) (return :xdp-pass)", "type mismatch: expected u32, found bool", 17,
     ["convert explicitly: (u32 …)"]),
    ("(let ((x (map-get counts (u64 1)))) (return :xdp-pass))", "type mismatch: expected u32, found u64", 26,
     ["convert explicitly: (u32 …)"]),
    ("(map-delete counts (u8 1)) (return :xdp-pass)", "type mismatch: expected u32, found u8", 20,
     ["convert explicitly: (u32 …)"]),
    ("(if-let (v (map-lookup counts (u16 1))) (return :xdp-drop)) (return :xdp-pass)",
     "type mismatch: expected u32, found u16", 31,
     ["convert explicitly: (u32 …)"]),
    ("(let ((x (+ (u32 1) ghost)) (y (u64 x))) (return :xdp-pass))", "unknown variable `ghost`", 21, []),
    ("(if (map-get counts (u32 1)) (return :xdp-pass)) (return :xdp-pass)", "type mismatch: expected bool, found u64", 5, []),
    ("(let ((x (<< (i32 1) -1))) (return :xdp-pass))", "shift amount -1 is out of range for i32", 22, []),
    ("(event-output events ghost) (return :xdp-pass)", "unknown variable `ghost`", 22, []),
    ("(let ((x (if #t ghost (u32 1)))) (return :xdp-pass))", "unknown variable `ghost`", 17, []),
    ("(let ((x (if #t (u32 1) ghost))) (return :xdp-pass))", "unknown variable `ghost`", 25, []),
    ("(if-let (v (map-lookup counts (u32 1))) ghost (u64 1)) (return :xdp-pass)", "unknown variable `ghost`", 41, []),
    ("(if-let (v (map-lookup counts ghost)) (map-set counts (u32 1) v)) (return :xdp-pass)",
     "unknown variable `ghost`", 31, []),
    ("(if (field ghost :ttl) (return :xdp-drop)) (return :xdp-pass)", "unknown variable `ghost`", 12, []),
    ("(let ((x (+ (u32 1) (u64 2)))) (return :xdp-pass))", "type mismatch: expected u32, found u64", 21,
     ["convert explicitly: (u32 …)"]),
    ("(map-delete arr (u32 0)) (return :xdp-pass)",
     "`map-delete` is not supported on array map `arr`; allowed: map-add, map-get, map-lookup, map-set", 1, []),
    ("(map-get events (u32 0)) (return :xdp-pass)",
     "`map-get` is not supported on ring-buf map `events`; allowed: event-output", 1, []),
    ("(if #t (map-set counts (u32 1) (u64 1)) (u32 1)) (return :xdp-pass)",
     "the branches of this if have different types: no value (unit) and u32", 1, []),
]


def diagnostics(body: str):
    try:
        check(parse(program(body), "t.tlisp"))
    except SourceError as err:
        return [(d.message, d.span.line, d.span.col, d.notes) for d in err.diagnostics]
    return []


@pytest.mark.parametrize("body, message, col, notes", REJECTED, ids=[r[1][:50] for r in REJECTED])
def test_each_rule_reports_one_message_at_its_form(body, message, col, notes):
    assert diagnostics(body) == [(message, BODY_LINE, col, notes)]


ACCEPTED = [
    "(let ((x (u32 #t)) (y (bool #f)) (z (u8 (u64 7)))) (return :xdp-pass))",
    "(let ((x (if #t 1 (u64 2)))) (map-add arr 0 x) (return :xdp-pass))",
    "(let ((x (if #t (return :xdp-drop) (u64 2)))) (return :xdp-pass))",
    "(if #t (return :xdp-drop) (u32 1)) (return :xdp-pass)",
    "(if (= #t #f) (return :xdp-pass)) (if (!= #t #f) (return :xdp-pass)) (return :xdp-pass)",
    "(let ((x (- (u32 1) 1))) (if (= 1 x) (return :xdp-pass)) (return :xdp-pass))",
    "(let ((x (* 2 (u32 1)))) (return :xdp-pass))",
    "(map-add arr 0 (+ 1 1)) (return :xdp-pass)",
    "(return (u32 4294967295))",
    "(return 7)",
    "(if #t (return :xdp-drop) (return :xdp-pass))",
    "(if-let (t (header ctx :tcp)) (return :xdp-drop) (return :xdp-pass))",
    "(let ((x (u32 1))) (loop (i 0 4) (set! x (+ x i))) (return x))",
    "(let ((x (u32 0))) (if (< x 1) (set! x 2) (set! x 3)) (return x))",
    "(let ((b (and #t (or #f (not #t))))) (if b (return :xdp-drop)) (return :xdp-pass))",
    "(let ((x (if #t (u8 1) 2))) (return :xdp-pass))",
    "(let ((x (u32 (bool #t)))) (return :xdp-pass))",
    "(loop (i 0 3) (loop (j 0 3) (if (= j i) (break)))) (return :xdp-pass)",
    "(if-let (v (map-lookup counts (u32 1))) (return :xdp-drop) (return :xdp-pass))",
    "(let ((x (>> (u64 8) 63))) (return :xdp-pass))",
    "(let ((x (i8 -128)) (y (- x (i8 1)))) (return :xdp-pass))",
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_accepted_neighbours(body):
    assert diagnostics(body) == []


def test_kind_specific_rules_name_the_kind():
    def one(body, kind, target):
        try:
            check(parse(program(body, kind=kind, target=target), "t.tlisp"))
        except SourceError as err:
            return [(d.message, d.span.col, d.notes) for d in err.diagnostics]
        return []

    assert one("(if-let (v (header ctx :vlan)) (return :allow)) (return :allow)", ":cgroup-skb", "egress") == [
        ("cgroup-skb programs see packets from the IP header on; `:vlan` is not reachable", 12, [])]
    assert one("(if (= (ctx-field ctx :len) (u32 1)) (return :ok)) (return :ok)", ":kprobe", "do_sys_open") == [
        ("kprobe programs have no context field `:len`", 8, ["known: none"])]
    assert one("(return (u64 1))", ":kprobe", "do_sys_open") == [
        ("type mismatch: expected u32, found u64", 9, ["convert explicitly: (u32 …)"])]
    assert one("(return :ok)", ":kprobe", "do_sys_open") == []
    # the verifier refuses the coarse clock to tracing kinds, networking kinds have it
    assert one("(let ((t (call ktime-coarse-ns))) (return :ok))", ":kprobe", "do_sys_open") == [
        ("helper `ktime-coarse-ns` is not available to kprobe programs", 10,
         ["available: get-current-cpu, get-smp-processor-id, get-numa-node-id, get-prandom, ktime-ns, ktime-boot-ns, "
          "ktime-tai-ns, jiffies64, get-current-pid-tgid, get-current-uid-gid, current-comm, get-current-task, "
          "get-current-cgroup-id, probe-read-user-str, probe-read-kernel-str",
          "`ktime-coarse-ns` is available to xdp, tc, socket-filter, cgroup-skb programs"])]
    assert one("(let ((t (call ktime-coarse-ns))) (return :ok))", ":lsm", "file_open") != []
    assert one("(let ((t (call ktime-coarse-ns))) (return :xdp-pass))", ":xdp", "eth0") == []


def test_deep_nesting_is_one_error_not_a_crash():
    # the reader stops at 64 nested lists, well before the checker's own guard (200)
    deep = "(not " * 70 + "#t" + ")" * 70
    found = diagnostics(f"(if {deep} (return :xdp-drop)) (return :xdp-pass)")
    assert [m for m, *_ in found] == ["lists nested more than 64 deep"]
    shallow = "(not " * 55 + "#t" + ")" * 55
    assert diagnostics(f"(if {shallow} (return :xdp-drop)) (return :xdp-pass)") == []


def test_a_long_operator_chain_past_the_checkers_depth_limit_is_one_error():
    """(+ a b c …) nests one level per operand: 198 operands are checked, 199 pass the checker's
    limit of 200 levels, and every operand beyond it is the same mistake, reported once."""
    def chain(n: int) -> str:
        return "(let ((x (+ " + " ".join(["(u32 1)"] * n) + "))) (return :xdp-pass))"

    assert diagnostics(chain(198)) == []
    assert diagnostics(chain(199)) == [("expression nested more than 200 deep", BODY_LINE, len("(let ((x (+ (u32 ") + 1, [])]
    assert [m for m, *_ in diagnostics(chain(400))] == ["expression nested more than 200 deep"]


def test_break_inside_a_loop_nested_in_an_if_is_fine_and_outside_after_the_loop_is_not():
    assert diagnostics("(loop (i 0 3) (if (= i 1) (break))) (return :xdp-pass)") == []
    found = diagnostics("(loop (i 0 3) (map-add arr i 1)) (break) (return :xdp-pass)")
    assert [m for m, *_ in found] == ["(break) outside of a loop"]


def test_a_failed_operand_is_reported_once_not_again_by_its_literal_partner():
    for body in ("(if (= ghost 1) (return :xdp-pass)) (return :xdp-pass)",
                 "(if (= 1 ghost) (return :xdp-pass)) (return :xdp-pass)",
                 "(let ((x (+ ghost 1))) (return :xdp-pass))",
                 "(let ((x (u32 ghost))) (return :xdp-pass))",
                 "(let ((x ghost) (y (+ x 1))) (map-add arr 0 y) (return :xdp-pass))"):
        assert [m for m, *_ in diagnostics(body)] == ["unknown variable `ghost`"], body

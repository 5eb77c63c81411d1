"""Checker: accepted programs get types on every node; each rule rejects
with its message at the offending form's line:col."""

import pytest

from tatara_build import ir

from .helpers import checked, position, problems, program


def all_exprs(node):
    """Every expression node below a function body."""
    for name in type(node).model_fields:
        value = getattr(node, name)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, ir.Node) and hasattr(v, "form"):
                yield v
                yield from all_exprs(v)


ACCEPTED = [
    "(return :xdp-pass)",
    "(return (u32 2))",
    "(let ((a (u32 1)) (b (+ a 2))) (if (> b 2) (return :xdp-drop) (return :xdp-pass)))",
    "(let ((x (u64 0))) (set! x (* x 3 4)) (map-set counts (u32 1) x) (return :xdp-pass))",
    "(if-let (v (map-lookup counts (u32 7))) (map-set counts (u32 7) (+ v 1)) (map-delete counts (u32 7))) (return :xdp-pass)",
    "(map-add arr 0 1) (event-output events (u64 5)) (return :xdp-pass)",
    "(let ((n (u8 0))) (loop (i 0 8) (if (= i 5) (break)) (set! n (+ n (u8 1)))) (return :xdp-pass))",
    "(if-let (ip (header ctx :ipv4)) (if (and (= (field ip :ttl) 1) (not (field ip :df))) (return :xdp-drop))) (return :xdp-pass)",
    "(if (or #f (>= (ctx-field ctx :len) 64)) (return :xdp-pass) (return :xdp-drop))",
    "(let ((c (call get-current-cpu)) (w (cast u64 c))) (if (!= (>> w 1) 0) (return :xdp-tx))) (return :xdp-pass)",
    "(do (map-get counts (u32 1)) (return :xdp-pass))",
    "(if (= (% (call get-prandom) 2) 0) (return :xdp-drop) (return :xdp-pass))",
    "(let ((f (u32 #t))) (return :xdp-pass))",
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_accepted_bodies_are_fully_typed(body):
    module = checked(program(body))
    nodes = [e for fn in module.functions for top in fn.body for e in [top, *all_exprs(top)]]
    assert nodes and all(e.type is not None for e in nodes)


def test_literal_types_come_from_context():
    module = checked(program("(map-add arr 0 1) (return :xdp-pass)"))
    add = module.functions[0].body[0]
    assert (add.key.type.spell(), add.value.type.spell(), add.type.spell()) == ("u32", "u64", "unit")
    assert module.functions[0].body[1].type.spell() == "never"


def test_header_option_and_field_types():
    module = checked(program("(if-let (t (header ctx :tcp)) (if (= (field t :dst-port) 80) (return :xdp-drop))) (return :xdp-pass)"))
    if_let = module.functions[0].body[0]
    assert if_let.value.type.spell() == "option:header:tcp"
    compare = if_let.then.cond
    assert (compare.left.type.spell(), compare.left.value.type.spell(), compare.right.type.spell()) == ("u16", "header:tcp", "u16")


REJECTED = [
    # (body, message part, snippet where the error points)
    ("(return :xdp-dorp)", "unknown return action `:xdp-dorp`", "(return :xdp-dorp"),
    ("(let ((x 5)) (return :xdp-pass))", "cannot infer the integer type of 5", "5)"),
    ("(map-set counts (u32 1) (u32 2)) (return :xdp-pass)", "type mismatch: expected u64, found u32", "(u32 2)"),
    ("(if (= (u8 1) (u16 1)) (return :xdp-pass)) (return :xdp-pass)", "type mismatch: expected u8, found u16", "(u16 1)"),
    ("(let ((a (+ (u8 1) (u32 2)))) (return :xdp-pass))", "type mismatch: expected u8, found u32", "(u32 2)"),
    ("(let ((a (u8 300))) (return :xdp-pass))", "300 does not fit in u8", "300"),
    ("(if (u32 1) (return :xdp-pass) (return :xdp-drop))", "expected bool, found u32", "(u32 1)"),
    ("(if (< #t #f) (return :xdp-pass)) (return :xdp-pass)", "cannot order-compare bool", "(< #t"),
    ("(let ((x (u32 1))) (if (= x 1) (u32 2) #t) (return :xdp-pass))", "expected u32, found bool", "#t)"),
    ("(map-delete arr (u32 0)) (return :xdp-pass)", "`map-delete` is not supported on array map `arr`", "(map-delete"),
    ("(map-set events (u32 0) (u64 1)) (return :xdp-pass)", "`map-set` is not supported on ring-buf", "(map-set"),
    ("(map-get nope (u32 0)) (return :xdp-pass)", "unknown map `nope`", "(map-get nope"),
    ("(call wat) (return :xdp-pass)", "unknown helper `wat`", "(call wat"),
    ("(call get-current-pid-tgid) (return :xdp-pass)", "not available to xdp programs", "(call get-current-pid"),
    ("(call ktime-ns (u32 1)) (return :xdp-pass)", "takes 0 argument(s), got 1", "(call ktime-ns"),
    ("(break) (return :xdp-pass)", "(break) outside of a loop", "(break)"),
    ("(loop (i 0 4) (set! i (u32 1))) (return :xdp-pass)", "`i` is a loop variable", "(set! i"),
    ("(set! y (u32 1)) (return :xdp-pass)", "unknown variable `y`", "(set! y"),
    ("(loop (i 0 70000) (map-add arr i 1)) (return :xdp-pass)", "over the limit of 65536", "(loop"),
    ("(loop (i 5 2) (break)) (return :xdp-pass)", "below its start", "(loop"),
    ("(map-add arr 0 1)", "can reach its end without returning", "(map-add"),
    ("(return :xdp-pass) (return :xdp-drop)", "unreachable expression", "(return :xdp-drop"),
    ("(let ((h (header ctx :tcp))) (return :xdp-pass))", "(header …) can fail", "(header"),
    ("(if-let (t (header ctx :tcp)) (if (field t :bogus) (return :xdp-drop))) (return :xdp-pass)", "unknown tcp field `:bogus`", "(field t"),
    ("(if-let (t (u32 1)) (return :xdp-drop)) (return :xdp-pass)", "if-let needs (header", "(u32 1)"),
    ("(if (field ctx :syn) (return :xdp-drop)) (return :xdp-pass)", "the context `ctx` is not a value", "ctx :syn"),
    ("(if (= (ctx-field ctx :mark) (u32 1)) (return :xdp-drop)) (return :xdp-pass)", "no context field `:mark`", "(ctx-field"),
    ("(let ((counts (u32 1))) (return :xdp-pass))", "has the name of a map, program, function or struct", "(let"),
    ("(let ((x (<< (u32 1) 32))) (return :xdp-pass))", "shift amount 32 is out of range", "32)"),
    ("(let ((x (bool (u32 1)))) (return :xdp-pass))", "cannot cast u32 to bool", "(bool"),
    ("(event-output events 5) (return :xdp-pass)", "cannot infer the integer type of 5", "5)"),
    ("(return (u64 2))", "expected u32, found u64", "(u64 2)"),
]


@pytest.mark.parametrize("body, message, snippet", REJECTED, ids=[r[1][:40] for r in REJECTED])
def test_rejected_bodies(body, message, snippet):
    text = program(body)
    found = problems(text)
    assert found, "expected an error"
    line, col = position(text, snippet)
    assert any(message in m and (ln, c) == (line, col) for m, ln, c in found), found


def test_packet_access_only_for_packet_kinds():
    text = program("(if-let (t (header ctx :tcp)) (return :ok)) (return :ok)", kind=":kprobe", target="do_sys_open")
    ((message, line, col),) = [p for p in problems(text) if "packet access" in p[0]]
    assert "not available to kprobe programs" in message and (line, col) == position(text, "(header")


def test_l3_kinds_cannot_reach_ethernet():
    text = program("(if-let (e (header ctx :eth)) (return :allow)) (return :allow)", kind=":cgroup-skb", target="egress")
    assert any("not reachable" in m for m, _, _ in problems(text))


def test_stack_limit():
    bindings = " ".join(f"(v{i} (u64 {i}))" for i in range(70))
    text = program(f"(let ({bindings}) (return :xdp-pass))")
    found = [p for p in problems(text) if "stack" in p[0]]
    assert len(found) == 1 and "over the BPF limit of 512" in found[0][0]
    assert found[0][1:] == position(text, "(v64 ")


def test_several_errors_in_one_run():
    text = program("(map-get nope (u32 0)) (call wat) (return :xdp-dorp)")
    assert len(problems(text)) == 3


DECLARATION_ERRORS = [
    ("(defbpf-map m :kind :array :key u64 :value u64 :max-entries 1)", "indexed by u32"),
    ("(defbpf-map m :kind :hash :value u64 :max-entries 1)", "needs :key"),
    ("(defbpf-map m :kind :ring-buf :max-entries 100)", "power of two"),
    ("(defbpf-map m :kind :ring-buf :key u32 :max-entries 4096)", "takes no :key; :value (optional)"),
    ("(defbpf-program q :kind :xdp)\n(bpf-fn q (ctx) (return :xdp-pass))", "needs :attach"),
    ('(defbpf-program q :kind :cgroup-skb :attach (:target "sideways"))\n(bpf-fn q (c) (return :allow))', 'must be "ingress" or "egress"'),
    ('(defbpf-program q :kind :xdp :attach (:target "lo") :license "MIT" :uses-maps (counts))\n(bpf-fn q (c) (return :xdp-pass))', "GPL-compatible"),
    ('(defbpf-program q :kind :xdp :attach (:target "lo") :uses-maps (ghost))\n(bpf-fn q (c) (return :xdp-pass))', "undeclared map `ghost`"),
    ('(defbpf-program q :kind :xdp :attach (:target "lo"))', "has no body"),
    ("(bpf-fn orphan (c) (return :xdp-pass))", "has no (defbpf-program orphan"),
    ("(defbpf-map counts :kind :hash :key u32 :value u64 :max-entries 1)", "duplicate map, program, const, function or struct name `counts`"),
    ("(defbpf-policy pol :programs (p) :maps (counts))", "not allowed by policy `pol`"),
    ("(defbpf-policy pol :programs (nope) :maps (counts))", "unknown program `nope`"),
    ("(defbpf-test t :program nope :cases ((a :packet ((eth)) :expect :xdp-pass)))", "unknown program `nope`"),
    ("(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :tc-act-ok)))", "is not a xdp action"),
    ("(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass) (a :packet ((eth)) :expect :xdp-pass)))", "duplicate test case"),
    ("(defbpf-test t :program p :cases ((a :packet ((eth) (tcp :dport 70000)) :expect :xdp-pass)))", "does not fit in 16 bits"),
    ('(defbpf-test t :program p :cases ((a :packet ((eth :src "zz")) :expect :xdp-pass)))', "is not a MAC address"),
    ('(defbpf-test t :program p :cases ((a :packet ((eth) (ipv4 :src "10.0.0.300")) :expect :xdp-pass)))', "is not an IPv4 address"),
    ('(defbpf-test t :program p :cases ((a :packet ((eth) (ipv6 :dst "fe80::1%eth0")) :expect :xdp-pass)))', "is not an IPv6 address"),
    ("(defbpf-test t :program p :cases ((a :packet ((eth) (tcp :flags (syn bogus))) :expect :xdp-pass)))", "unknown flag(s) bogus"),
    ('(defbpf-test t :program p :cases ((a :packet ((eth) (ipv4 :options "abc")) :expect :xdp-pass)))', "even number of hex"),
    ("(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-maps ((arr 9 1)))", "beyond :max-entries"),
    ("(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-maps ((events 0 1)))", "no key/value contents"),
    ("(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-maps ((arr 0 -1)))", "does not fit the map's value type"),
]


@pytest.mark.parametrize("extra, message", DECLARATION_ERRORS, ids=[m for _, m in DECLARATION_ERRORS])
def test_declaration_errors(extra, message):
    text = program("(return :xdp-pass)") + extra + "\n"
    found = problems(text)
    line, _ = position(text, extra.split("\n")[0])
    assert any(message in m and ln >= line for m, ln, _ in found), found


def test_context_name_may_not_shadow_a_map():
    text = program("(return :xdp-pass)").replace("(bpf-fn p (ctx)", "(bpf-fn p (counts)")
    assert any("context parameter `counts`" in m for m, _, _ in problems(text))


def test_tests_need_a_test_run_kind():
    text = program("(return :ok)", kind=":tracepoint", target="syscalls/sys_enter_execve")
    text += "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :ok)))\n"
    assert any("cannot be run on test packets" in m for m, _, _ in problems(text))

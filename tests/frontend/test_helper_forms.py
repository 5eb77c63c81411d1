"""Helpers and helper forms (redirect, redirect-map, tail-call, adjust-head,
adjust-tail, get-stackid): per-kind allow-lists from the tables, map kinds,
prog-array slots, and packet pointers retired by an adjust. Every error at
the offending form, naming what is allowed instead."""

from __future__ import annotations

import pytest

from tatara_build import tables

from .helpers import checked, position, problems

MAPS = """\
(defbpf-map ports :kind :devmap :max-entries 4)
(defbpf-map cpus :kind :cpumap :max-entries 4)
(defbpf-map socks :kind :xskmap :max-entries 4)
(defbpf-map byhash :kind :devmap-hash :max-entries 4)
(defbpf-map jump :kind :prog-array :max-entries 4 :programs ((0 leaf)))
(defbpf-map stacks :kind :stack-trace :max-entries 64)
(defbpf-map hits :kind :array :key u32 :value u64 :max-entries 4)
"""
USES = "(ports cpus socks byhash jump stacks hits)"


def source(body: str, kind: str = "xdp", target: str = "eth0", tests: str = "", extra: str = "") -> str:
    leaf = f'(defbpf-program leaf :kind :{kind} :attach (:target "{target}"))\n(bpf-fn leaf (ctx) (return :{next(iter(tables.PROGRAM_KINDS[kind].actions))}))\n'
    return (MAPS + extra + f'(defbpf-program p :kind :{kind} :attach (:target "{target}") :uses-maps {USES})\n'
            + f"(bpf-fn p (ctx)\n{body})\n" + leaf + tests)


def only(text: str) -> tuple[str, int, int]:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def test_every_helper_form_is_typed_and_accepted_where_the_tables_allow():
    text = source("""
  (tail-call ctx jump 0)
  (let ((a (adjust-tail ctx -4)) (b (adjust-head ctx 14)))
    (if (or (!= a 0) (!= b 0))
        (return :xdp-aborted)
        (if (= (ctx-field ctx :len) 0)
            (return (redirect (u32 1)))
            (return (redirect-map ports 0 :xdp-pass)))))""")
    module = checked(text)
    body = module.functions[0].body
    assert body[0].type.spell() == "unit"
    assert body[1].value.type.spell() == "i64"
    for m, kind in (("ports", "devmap"), ("cpus", "cpumap"), ("socks", "xskmap"), ("byhash", "devmap-hash")):
        assert not problems(source(f"(return (redirect-map {m} 1))")), kind
    decls = {m.name: m for m in module.maps}
    assert (decls["ports"].key, decls["ports"].value) == ("u32", "u64")
    assert (decls["jump"].key, decls["jump"].value) == ("u32", "u32")


def test_tc_redirect_is_an_i32_action_and_takes_ingress():
    text = source("(return (redirect (ctx-field ctx :ifindex) :ingress))", kind="tc")
    assert checked(text).functions[0].body[0].value.type.spell() == "i32"


@pytest.mark.parametrize("body, kind, message", [
    ("(return (redirect 1))", "kprobe", "(redirect …) (bpf_redirect) is not available to kprobe programs (only to xdp, tc)"),
    ("(return (redirect-map ports 0))", "tc", "(redirect-map …) (bpf_redirect_map) is not available to tc programs (only to xdp)"),
    ("(adjust-head ctx 1) (return :tc-act-ok)", "tc", "is not available to tc programs (only to xdp)"),
    ("(tail-call ctx jump 0) (return :allow)", "lsm", "(tail-call …) (bpf_tail_call) is not available to lsm programs"),
    ("(get-stackid ctx stacks) (return :xdp-pass)", "xdp", "only to kprobe, tracepoint, lsm, perf-event"),
    ("(call get-current-task) (return :xdp-pass)", "xdp",
     "helper `get-current-task` is not available to xdp programs"),
])
def test_a_form_or_helper_on_the_wrong_kind_names_the_kinds_that_may(body, kind, message):
    target = {"kprobe": "tcp_v4_connect", "lsm": "file_open"}.get(kind, "eth0")
    text = source(body, kind=kind, target=target)
    msg, line, col = only(text)
    assert message in msg
    assert (line, col) == position(text, body[len("(return "):] if body.startswith("(return (") else body)


@pytest.mark.parametrize("body, message", [
    ("(return (redirect-map hits 0))", "(redirect-map …) needs a devmap or devmap-hash or cpumap or xskmap map; `hits` is a array map"),
    ("(tail-call ctx ports 0) (return :xdp-pass)", "(tail-call …) needs a prog-array map; `ports` is a devmap map"),
    ("(return (redirect-map ports 0 :xdp-redirect))", "one of :xdp-aborted :xdp-drop :xdp-pass :xdp-tx; got :xdp-redirect"),
    ("(return (redirect 1 :ingress))", ":ingress (BPF_F_INGRESS) is for tc programs"),
    ("(call redirect 1) (return :xdp-pass)", "`redirect` is a form of its own: write (redirect IFINDEX [:ingress])"),
    ("(tail-call other jump 0) (return :xdp-pass)", "`other` is not the program context (`ctx`)"),
    ("(return (redirect-map nope 0))", "unknown map `nope`"),
    ("(adjust-head ctx (u64 1)) (return :xdp-pass)", "expected i32, found u64"),
    ("(tail-call ctx jump 4) (return :xdp-pass)", "slot 4 is beyond :max-entries 4 of `jump`: the tail call would"),
])
def test_misuse_is_an_error_at_the_form(body, message):
    msg, line, _ = only(source(body))
    assert message in msg
    assert line == 10


def test_get_stackid_needs_a_stack_trace_map():
    text = source("(get-stackid ctx hits) (return :ok)", kind="kprobe", target="tcp_v4_connect")
    assert "(get-stackid …) needs a stack-trace map; `hits` is a array map" in only(text)[0]
    bad = source("(get-stackid ctx stacks 2048) (return :ok)", kind="kprobe", target="tcp_v4_connect")
    assert "get-stackid flags 0x800 has bits the kernel refuses" in only(bad)[0]
    ok = source("(let ((id (get-stackid ctx stacks (u64 256)))) (return :ok))", kind="perf-event", target="cpu-clock")
    assert checked(ok).functions[0].body[0].value.type.spell() == "i64"


def test_a_map_not_in_uses_maps_is_refused():
    text = MAPS + """(defbpf-program p :kind :xdp :attach (:target "eth0") :uses-maps (hits))
(bpf-fn p (ctx) (return (redirect-map ports 0)))
(defbpf-program leaf :kind :xdp :attach (:target "eth0"))
(bpf-fn leaf (ctx) (return :xdp-pass))"""
    assert "map `ports` is not listed in :uses-maps of program `p`" in only(text)[0]


# --- adjust-head / adjust-tail retire packet pointers ------------------------


def test_a_header_bound_before_an_adjust_cannot_be_used_after_it():
    body = """
  (if-let (ip (header ctx :ipv4))
    (let ((ttl (field ip :ttl)))
      (adjust-head ctx 14)
      (if (= (field ip :ttl) ttl) (return :xdp-pass) (return :xdp-drop)))
    (return :xdp-pass))"""
    text = source(body)
    msg, line, col = only(text)
    assert "header `ip` was parsed before the packet was adjusted" in msg
    assert (line, col) == position(text, "ip :ttl) ttl)")
    # reading it into a let first is the way
    fixed = body.replace("(= (field ip :ttl) ttl)", "(= ttl (u8 1))")
    assert not problems(source(fixed))


def test_no_header_parse_after_an_adjust():
    text = source("(adjust-tail ctx -4)\n  (if-let (ip (header ctx :ipv4)) (return :xdp-drop) (return :xdp-pass))")
    msg, line, col = only(text)
    assert "(header …) after the packet was adjusted" in msg and (line, col) == position(text, "(header ctx :ipv4)")


def test_an_adjust_in_a_loop_retires_headers_for_the_whole_body():
    text = source("""
  (if-let (ip (header ctx :ipv4))
    (begin (loop (i 0 2) (let ((t (field ip :ttl))) (adjust-head ctx 1))) (return :xdp-pass))
    (return :xdp-pass))""")
    assert "header `ip` was parsed before the packet was adjusted" in only(text)[0]


# --- a tail-call that falls through retires packet pointers too (6.12's verifier) ----


def test_a_header_bound_before_a_tail_call_cannot_be_used_after_it():
    body = """
  (if-let (ip (header ctx :ipv4))
    (begin
      (tail-call ctx jump 0)
      (if (= (field ip :ttl) 1) (return :xdp-drop) (return :xdp-pass)))
    (return :xdp-pass))"""
    text = source(body)
    msg, line, col = only(text)
    assert msg.startswith("header `ip` was parsed before the tail-call at t.tlisp:13:7; its pointer is invalid after "
                          "a tail-call that falls through"), msg
    assert (line, col) == position(text, "ip :ttl) 1)")
    assert not problems(source(body.replace("(field ip :ttl)", "(u8 1)")))


def test_headers_parsed_after_a_tail_call_are_fresh():
    # the dispatcher pattern: try one parse, tail-call, try the next
    text = source("""
  (if-let (t (header ctx :tcp)) (tail-call ctx jump 0))
  (if-let (u (header ctx :udp)) (if (= (field u :dst-port) 53) (return :xdp-drop)))
  (loop (i 0 2) (if-let (ip (header ctx :ipv4)) (if (= (field ip :ttl) 1) (tail-call ctx jump 0))))
  (return :xdp-pass)""")
    assert problems(text) == []


def test_a_tail_call_in_a_loop_retires_headers_for_the_whole_body():
    text = source("""
  (if-let (ip (header ctx :ipv4))
    (loop (i 0 2) (if (= (field ip :ttl) 1) (tail-call ctx jump 0))))
  (return :xdp-pass)""")
    assert "header `ip` was parsed before the tail-call" in only(text)[0]


def test_helper_reads_keep_their_offsets_across_a_tail_call():
    # socket filters read through bpf_skb_load_bytes: offsets, no pointers to retire
    text = source("""
  (if-let (ip (header ctx :ipv4))
    (begin (tail-call ctx jump 0) (if (= (field ip :ttl) 1) (return :drop))))
  (return :keep)""", kind="socket-filter", target="lo")
    assert problems(text) == []


# --- prog-array slots ---------------------------------------------------------------


@pytest.mark.parametrize("slots, message, slot", [
    ("((0 leaf) (0 leaf))", "slot 0 of `jump2` is filled twice", 1),
    ("((4 leaf))", "slot 4 is beyond :max-entries 4 of `jump2`", 0),
    ("((1 lef))", "slot 1 of `jump2` names unknown program `lef`", 0),
])
def test_slot_errors(slots, message, slot):
    """Each at the slot it is about (the second of two that fill the same one)."""
    extra = f"(defbpf-map jump2 :kind :prog-array :max-entries 4 :programs {slots})\n"
    text = source("(return :xdp-pass)", extra=extra)
    at = [i for i, c in enumerate(slots) if c == "(" and i > 0][slot]  # the slot's own list
    assert only(text) == (message, MAPS.count("\n") + 1, extra.index(slots) + at + 1)


def test_a_prog_array_holds_one_program_kind():
    text = MAPS.replace("((0 leaf))", "((0 leaf) (1 probe))") + """\
(defbpf-program probe :kind :kprobe :attach (:target "tcp_v4_connect"))
(bpf-fn probe (ctx) (return :ok))
(defbpf-program leaf :kind :xdp :attach (:target "eth0"))
(bpf-fn leaf (ctx) (return :xdp-pass))"""
    msg = only(text)[0]
    assert "prog-array `jump` mixes program kinds (`leaf` is xdp, `probe` is kprobe)" in msg


def test_programs_only_on_prog_arrays_and_fixed_types_hold():
    extra = "(defbpf-map wrong :kind :array :key u32 :value u32 :max-entries 4 :programs ((0 leaf)))\n"
    assert only(source("(return :xdp-pass)", extra=extra)) == (
        ":programs is for prog-array maps; `wrong` is a array map", MAPS.count("\n") + 1, extra.index("(0 leaf)") + 1)
    extra = "(defbpf-map dev32 :kind :devmap :key u32 :value u32 :max-entries 4)\n"
    assert "devmap map `dev32` has the kernel's value type u64, not u32; leave :value out" in \
        only(source("(return :xdp-pass)", extra=extra))[0]


@pytest.mark.parametrize("entry, message", [
    ("(jump 0 1)", "prog-array map `jump` holds file descriptors: tests cannot write or compare its entries "
                   "(its slots are the map's :programs)"),
    ("(socks 0 3)", "xskmap map `socks` holds file descriptors: tests cannot write or compare its entries"),
])
def test_fd_maps_take_no_test_entries(entry, message):
    tests = f"(defbpf-test t :program p :maps-before ({entry}) :cases ((c :packet ((eth)) :expect :xdp-pass)))\n"
    assert only(source("(return :xdp-pass)", tests=tests))[0] == message


def test_a_devmap_is_seeded_with_an_ifindex():
    tests = "(defbpf-test t :program p :maps-before ((ports 0 1)) :cases ((c :packet ((eth)) :expect :xdp-redirect)))\n"
    assert not problems(source("(return (redirect-map ports 0))", tests=tests))


def test_every_helper_form_has_a_first_kernel_and_kinds():
    assert set(tables.HELPER_FORMS) <= set(tables.FORM_SINCE)
    assert set(tables.MAP_KINDS) == set(tables.MAP_KIND_SINCE)
    for name in tables.HELPER_FORMS:
        assert any(name in k.forms for k in tables.PROGRAM_KINDS.values()), name
    for kind in tables.PROGRAM_KINDS.values():
        assert set(kind.forms) <= set(tables.HELPER_FORMS)
        assert set(kind.helpers) <= set(tables.HELPERS)

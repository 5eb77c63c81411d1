"""Events: event-output on ring buffers and perf-event arrays, (current-comm),
one record type per event map, and `:expect-events` in tests. Every misuse
is one message at the form that has it."""

from __future__ import annotations

import pytest

from tatara_build import ir

from .helpers import checked, position, problems

MAPS = """\
(defbpf-map ring :kind :ring-buf :max-entries 4096)
(defbpf-map perf :kind :perf-event-array :max-entries 4)
(defbpf-map counts :kind :hash :key u32 :value u64 :max-entries 16)
"""


def tracer(body: str, kind: str = ":kprobe", target: str = "tcp_v4_connect") -> str:
    return MAPS + (f'(defbpf-program p :kind {kind} :attach (:target "{target}") :uses-maps (ring perf counts))\n'
                   f"(bpf-fn p (ctx)\n{body})\n")


def packets(body: str, tests: str = "") -> str:
    return MAPS + ('(defbpf-program p :kind :xdp :attach (:target "eth0") :uses-maps (ring perf counts))\n'
                   f"(bpf-fn p (ctx)\n{body})\n{tests}")


ACCEPTED = [
    tracer("(event-output ring (current-comm)) (event-output perf (current-comm)) (return :ok)"),
    tracer("(event-output ring (current-comm)) (return :ok)", ":tracepoint", "sched/sched_process_exec"),
    tracer("(event-output ring (current-comm)) (return :allow)", ":lsm", "file_open"),
    tracer("(event-output perf (current-comm)) (return :ok)", ":perf-event", "cpu-clock"),
    packets("(event-output ring (ctx-field ctx :len)) (event-output ring (u32 7)) (return :xdp-pass)"),
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_accepted(text):
    assert problems(text) == []


REJECTED = [
    # text, message, the snippet it points at
    (packets("(event-output ring (current-comm)) (return :xdp-pass)"),
     "helper `current-comm` is not available to xdp programs", "(current-comm)"),
    (tracer("(let ((c (current-comm))) (return :ok))"),
     "(current-comm) gives an array (array:u8:16), written straight where it is stored: use it as the value of "
     "(event-output MAP …) or as a struct field in (make …)", "(current-comm)"),
    (tracer("(map-set counts (u32 1) (current-comm)) (return :ok)"),
     "(current-comm) gives an array (array:u8:16), written straight where it is stored: use it as the value of "
     "(event-output MAP …) or as a struct field in (make …)", "(current-comm)"),
    (tracer("(event-output ring (begin (current-comm))) (return :ok)"),
     "(current-comm) gives an array (array:u8:16), written straight where it is stored: use it as the value of "
     "(event-output MAP …) or as a struct field in (make …)", "(current-comm)))"),
    (tracer("(event-output counts (u64 1)) (return :ok)"),
     "`event-output` is not supported on hash map `counts`; allowed: map-add, map-delete, map-get, map-lookup, map-set",
     "(event-output counts"),
    (tracer("(event-output ring #t) (return :ok)"),
     "event-output sends an integer, a struct or (current-comm); found bool", "#t"),
    (tracer("(event-output ring 5) (return :ok)"),
     "cannot infer the integer type of 5; write it with a width, e.g. (u32 5)", "5)"),
    (tracer("(event-output ring (u32 1)) (event-output ring (u64 1)) (return :ok)"),
     "event map `ring` carries u32 records (sent by `p` at t.tlisp:6:1); this sends u64: every record of one map "
     "has one type, so a reader can decode them", "(event-output ring (u64"),
    (tracer("(event-output ring (current-comm)) (event-output ring (call get-current-pid-tgid)) (return :ok)"),
     "event map `ring` carries array:u8:16 records (sent by `p` at t.tlisp:6:1); this sends u64: every record of "
     "one map has one type, so a reader can decode them", "(event-output ring (call"),
    (packets("(event-output ring (u32 1)) (return :xdp-pass)",
             "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-events ((ring -1)))"),
     "event of `ring`: -1 does not fit in u32 (0 to 4294967295)", "(ring -1)"),
    (packets("(event-output ring (u32 1)) (return :xdp-pass)",
             "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-events ((perf 1)))"),
     "program `p` never sends events to `perf` (no (event-output …) of it in its body)", "(perf 1)"),
    (packets("(event-output ring (u32 1)) (return :xdp-pass)",
             "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-events ((counts 1)))"),
     "hash map `counts` receives no events: :expect-events lists ring-buf and perf-event-array maps (use "
     ":expect-maps for map contents)", "(counts 1)"),
    (packets("(event-output ring (u32 1)) (return :xdp-pass)",
             "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-events ((rnig 1)))"),
     "expected events of map `rnig`, which program `p` does not use", "(rnig 1)"),
    (packets("(event-output ring (u32 1)) (return :xdp-pass)",
             "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-events (ring 1))"),
     "expected events as (map value …), e.g. (events 60 61), got `ring`", "ring 1))"),
    (packets("(event-output ring (u32 1)) (return :xdp-pass)",
             "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-events ((ring 1 -1)))"),
     "event of `ring`: -1 does not fit in u32 (0 to 4294967295)", "-1)))"),
    (packets("(event-output ring (u32 1)) (return :xdp-pass)",
             "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-events ring)"),
     "expected :expect-events ((map value) …), e.g. :expect-events ((events 60))", "ring)"),
]


@pytest.mark.parametrize("text, message, snippet", REJECTED, ids=[r[1][:60] for r in REJECTED])
def test_rejected_at_the_form(text, message, snippet):
    line, col = position(text, snippet)
    assert problems(text) == [(message, line, col)]


def test_expect_events_are_kept_in_order_and_empty_means_none():
    text = packets("(event-output ring (u32 1)) (return :xdp-pass)",
                   "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) "
                   ":expect-events ((ring 3) (ring 1) (ring 2)))\n"
                   "(defbpf-test u :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-events ())\n"
                   "(defbpf-test v :program p :cases ((a :packet ((eth)) :expect :xdp-pass)))\n")
    t, u, v = checked(text).tests
    assert [(e.map, e.value) for e in t.expect_events] == [("ring", 3), ("ring", 1), ("ring", 2)]
    assert (u.expect_events, v.expect_events) == ([], None)
    assert ir.from_json(ir.to_json(checked(text))).tests[0].expect_events == t.expect_events


def test_several_records_of_one_map_may_share_one_entry():
    def events(spelled: str) -> list:
        text = packets("(event-output ring (u32 1)) (return :xdp-pass)",
                       f"(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-events {spelled})\n")
        return [(e.map, e.value) for e in checked(text).tests[0].expect_events]

    assert events("((ring 3 1) (ring 2))") == events("((ring 3) (ring 1) (ring 2))") == [("ring", 3), ("ring", 1), ("ring", 2)]


STRUCTS = "(defbpf-struct ev (pid u32) (comm (array u8 16)))\n(defbpf-struct pk (src u32) (port u16))\n"


def test_struct_events_and_comm_fields_are_accepted():
    assert problems(STRUCTS + tracer("(event-output ring (make ev :pid (u32 1) :comm (current-comm))) "
                                     "(event-output perf (make ev :comm (current-comm))) (return :ok)")) == []


@pytest.mark.parametrize("text, message, snippet", [
    (STRUCTS + packets("(event-output ring (make ev :comm (current-comm))) (return :xdp-pass)"),
     "helper `current-comm` is not available to xdp programs", "(current-comm)"),
    (STRUCTS + packets("(event-output ring (make pk :src (u32 1))) (event-output ring (make ev)) (return :xdp-pass)"),
     "event map `ring` carries struct `pk` records (sent by `p` at t.tlisp:8:1); this sends struct `ev`: every "
     "record of one map has one type, so a reader can decode them", "(event-output ring (make ev"),
    (STRUCTS + packets("(event-output ring (make pk :src (u32 1))) (return :xdp-pass)",
                       "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) "
                       ":expect-events ((ring (make pk :sport 1))))"),
     "event of `ring`: struct `pk` has no field `:sport` (fields: :src, :port)", "(ring (make"),
    (STRUCTS + packets("(event-output ring (make pk :src (u32 1))) (return :xdp-pass)",
                       "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) "
                       ":expect-events ((ring 5)))"),
     "event of `ring`: this map holds struct `pk`: write (make pk :field value …)", "(ring 5)"),
    (STRUCTS + packets("(event-output ring (u32 1)) (return :xdp-pass)",
                       "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) "
                       ":expect-events ((ring (make pk :src 1))))"),
     "event of `ring`: its records are u32: write an integer", "(ring (make"),
], ids=["comm-on-xdp", "two-structs", "unknown-field", "int-for-struct", "struct-for-int"])
def test_struct_event_misuse(text, message, snippet):
    line, col = position(text, snippet)
    assert problems(text) == [(message, line, col)]


# --- a declared record type: (defbpf-map M :kind :ring-buf :value T …) -------------

DECLARED = STRUCTS + """\
(defbpf-map dring :kind :ring-buf :value pk :max-entries 4096)
(defbpf-map dperf :kind :perf-event-array :value u32 :max-entries 4)
(defbpf-map quiet :kind :ring-buf :value ev :max-entries 4096)
"""


def declared(body: str, tests: str = "") -> str:
    return DECLARED + ('(defbpf-program p :kind :xdp :attach (:target "eth0") :uses-maps (dring dperf quiet))\n'
                       f"(bpf-fn p (ctx)\n{body})\n{tests}")


def test_declared_record_types_type_the_sends_and_are_the_records_even_unsent():
    from tatara_build.check.events import event_types

    module = checked(declared("(event-output dring (make pk :src (u32 1))) (event-output dperf 7) (return :xdp-pass)",
                              "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) "
                              ":expect-events ((dring (make pk :port 2)) (dperf 7)))"))
    # the bare 7 takes the declared u32; `quiet` has its declared type though nothing sends to it
    assert event_types(module) == {"dring": "struct:pk", "dperf": "u32", "quiet": "struct:ev"}
    sends = [n for n in ir.walk(module.functions[0].body) if isinstance(n, ir.EventOutput)]
    assert [n.value.type.spell() for n in sends] == ["struct:pk", "u32"]


@pytest.mark.parametrize("text, message, snippet", [
    (declared("(event-output dring (u32 5)) (return :xdp-pass)"),
     "type mismatch: expected struct `pk`, found u32: event map `dring` declares :value struct `pk` (t.tlisp:3:1), "
     "the type of every record sent to it", "(u32 5)"),
    (declared("(event-output dring (make pk)) (event-output dperf (make ev)) (return :xdp-pass)"),
     "type mismatch: expected u32, found struct `ev`: event map `dperf` declares :value u32 (t.tlisp:4:1), "
     "the type of every record sent to it", "(make ev)"),
    (declared("(event-output dring (make pk)) (return :xdp-pass)",
              "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-events ((dring 5)))"),
     "event of `dring`: this map holds struct `pk`: write (make pk :field value …)", "(dring 5)"),
    (declared("(event-output dring (make pk)) (return :xdp-pass)",
              "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) "
              ":expect-maps ((dring 0 (make pk))))"),
     "ring-buf map `dring` has no key/value contents to compare", "(dring 0"),
    ("(defbpf-map r :kind :ring-buf :key u32 :value u64 :max-entries 4096)\n",
     "ring-buf map `r` takes no :key; :value (optional) is the type of its records", "(defbpf-map r"),
    ("(defbpf-map r :kind :perf-event-array :value flow :max-entries 4)\n",
     "map `r`: unknown :value type `flow` (an integer type or a defbpf-struct)", "(defbpf-map r"),
    ("(defbpf-map r :kind :stack-trace :value u64 :max-entries 4)\n",
     "stack-trace map `r` takes no :key or :value", "(defbpf-map r"),
], ids=["int-to-struct-map", "struct-to-int-map", "expect-int-of-struct", "expect-maps", "key", "unknown-struct",
        "stack-trace"])
def test_declared_record_type_misuse(text, message, snippet):
    line, col = position(text, snippet)
    assert problems(text) == [(message, line, col)]


FUNC_SENDS = MAPS + """\
(defbpf-func report ((x u32)) :returns u32
  (event-output ring x)
  (return x))
(defbpf-program p :kind :xdp :attach (:target "eth0") :uses-maps (ring perf counts))
(bpf-fn p (ctx)
"""


def test_a_functions_sends_count_for_the_program_that_calls_it():
    from tatara_build.check.events import event_sends, event_types

    tests = ("(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) "
             ":expect-events ((ring 9)))\n")
    module = checked(FUNC_SENDS + "(report (u32 9)) (return :xdp-pass))\n" + tests)
    assert event_types(module) == {"ring": "u32"}
    assert [(p, t.spell()) for p, t, _ in event_sends(module)["ring"]] == [("p", "u32")]
    text = FUNC_SENDS + "(report (u32 9)) (event-output ring (u64 1)) (return :xdp-pass))\n"
    line, col = position(text, "(event-output ring (u64")
    assert problems(text) == [("event map `ring` carries u32 records (sent by `p` at t.tlisp:5:3); this sends u64: "
                               "every record of one map has one type, so a reader can decode them", line, col)]

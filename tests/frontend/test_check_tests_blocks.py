"""Checks of `defbpf-test` blocks (check/packets.py), one failing input per rule with its full
message and where it points, and the largest values each field still takes."""

from __future__ import annotations

import pytest

from .helpers import position, problems, program

OK = "(a :packet ((eth)) :expect :xdp-pass)"


def test_block(cases: str = OK, extra: str = "", body: str = "(return :xdp-pass)", kind: str = ":xdp") -> str:
    return program(body, kind=kind) + f"(defbpf-test t :program p :cases ({cases}){extra})\n"


test_block.__test__ = False  # a builder, not a test


def messages(text: str) -> list[str]:
    return [m for m, _, _ in problems(text)]


@pytest.mark.parametrize("layer", [
    "(eth :type 65535)", "(vlan :id 4095 :pcp 7 :tpid 65535)", "(ipv4 :ttl 255 :tos 255 :id 65535 :ihl 15 :frag-offset 8191)",
    "(ipv4 :total-len 65535 :protocol 255)", "(ipv6 :hop-limit 255 :payload-len 65535 :next-header 255)",
    "(tcp :sport 65535 :dport 0 :seq 4294967295 :ack-seq 4294967295 :window 65535 :data-offset 15)",
    "(udp :len 65535)", "(icmp :type 255 :code 255)", '(ipv4 :options "0102030405060708")',
    '(eth :src "0a:BB:cc:00:11:ff")', '(ipv6 :src "::ffff:10.0.0.1")', '(raw :hex "")',
    "(tcp :flags (syn ack fin rst psh urg ece cwr))", "(ipv4 :flags (df mf))",
])
def test_the_largest_field_values_are_accepted(layer):
    assert messages(test_block(f"(a :packet ((eth) {layer}) :expect :xdp-pass)")) == []


@pytest.mark.parametrize("layer, message", [
    ("(vlan :id 4096)", "vlan :id: 4096 does not fit in 12 bits"),
    ("(vlan :pcp 8)", "vlan :pcp: 8 does not fit in 3 bits"),
    ("(ipv4 :ihl 16)", "ipv4 :ihl: 16 does not fit in 4 bits"),
    ("(ipv4 :frag-offset 8192)", "ipv4 :frag-offset: 8192 does not fit in 13 bits"),
    ("(tcp :seq 4294967296)", "tcp :seq: 4294967296 does not fit in 32 bits"),
    ("(tcp :sport -1)", "tcp :sport: -1 does not fit in 16 bits"),
    ('(tcp :sport "80")', "tcp :sport: expected an integer"),
    ("(tcp :flags 3)", "tcp :flags: expected a list of flags, e.g. (syn ack)"),
    ("(ipv4 :flags (df xx yy))", "ipv4 :flags: unknown flag(s) xx, yy; known: df mf"),
    ("(eth :src 2)", "eth :src: expected a string (mac)"),
    ('(eth :src "02:00:00:00:00:0g")', "eth :src: '02:00:00:00:00:0g' is not a MAC address like 02:00:00:00:00:01"),
    ('(eth :src "02:00:00:00:00:01:02")', "eth :src: '02:00:00:00:00:01:02' is not a MAC address like 02:00:00:00:00:01"),
    ('(raw :hex "0g")', "raw :hex: expected an even number of hex digits"),
    ('(ipv4 :src "fd00::1")', "ipv4 :src: 'fd00::1' is not an IPv4 address"),
    ('(ipv6 :dst "10.0.0.1")', "ipv6 :dst: '10.0.0.1' is not an IPv6 address"),
])
def test_each_bad_field_value_has_its_message_at_the_layer(layer, message):
    text = test_block(f"(a :packet ((eth) {layer}) :expect :xdp-pass)")
    found = problems(text)
    assert [m for m, _, _ in found] == [message]
    assert found[0][1:] == position(text, layer)


def test_a_case_naming_another_kinds_action_lists_the_kinds_actions():
    text = test_block("(a :packet ((eth)) :expect :tc-act-ok)")
    ((message, line, col),) = problems(text)
    assert message == "`:tc-act-ok` is not a xdp action" and (line, col) == position(text, ":tc-act-ok")
    from tatara_build.check import check
    from tatara_build.errors import SourceError
    from tatara_build.frontend import parse

    with pytest.raises(SourceError) as err:
        check(parse(text, "t.tlisp"))
    assert err.value.diagnostics[0].notes == ["known: :xdp-aborted :xdp-drop :xdp-pass :xdp-tx :xdp-redirect"]


def test_a_misspelt_expected_action_points_at_it_with_the_closest_action():
    from tatara_build.check import check
    from tatara_build.errors import SourceError
    from tatara_build.frontend import parse

    text = test_block("(a :packet ((eth)) :expect :xdp-dorp)")
    with pytest.raises(SourceError) as err:
        check(parse(text, "t.tlisp"))
    (diagnostic,) = err.value.diagnostics
    assert (diagnostic.span.line, diagnostic.span.col) == position(text, ":xdp-dorp")
    assert diagnostic.notes[0] == "did you mean `xdp-drop`?"


def test_duplicate_case_names_are_reported_once_per_repeat_and_other_cases_still_checked():
    text = test_block(f"{OK} {OK} (b :packet ((eth) (vlan :id 5000)) :expect :xdp-drop) {OK}")
    assert messages(text) == ["duplicate test case name `a`", "vlan :id: 5000 does not fit in 12 bits",
                              "duplicate test case name `a`"]


def test_every_test_block_is_checked_not_only_the_first():
    text = test_block() + "(defbpf-test u :program p :cases ((z :packet ((eth)) :expect :nope)))\n"
    assert messages(text) == ["`:nope` is not a xdp action"]
    text = test_block("(a :packet ((eth)) :expect :nope)") + "(defbpf-test u :program p :cases ((z :packet ((eth)) :expect :nope)))\n"
    assert messages(text) == ["`:nope` is not a xdp action"] * 2


def test_unknown_program_and_untestable_kind_skip_the_rest_of_that_block_only():
    text = program("(return :xdp-pass)") + (
        "(defbpf-test t :program ghost :cases ((a :packet ((eth) (vlan :id 9999)) :expect :nope)))\n"
        "(defbpf-test u :program p :cases ((a :packet ((eth)) :expect :nope)))\n")
    assert messages(text) == ["test `t` names unknown program `ghost`", "`:nope` is not a xdp action"]
    traced = program("(return :ok)", kind=":kprobe", target="do_sys_open") + (
        "(defbpf-test t :program p :cases ((a :packet ((eth) (vlan :id 9999)) :expect :nope)))\n")
    assert messages(traced) == ["kprobe programs cannot be run on test packets (BPF_PROG_TEST_RUN)"]


EXPECT_MAPS = [
    ("((arr 3 18446744073709551615))", []),
    ("((arr 4 1))", ["key 4 is beyond :max-entries 4 of `arr`"]),
    ("((counts 4294967295 0))", []),
    ("((counts 4294967296 0))", ["key 4294967296 does not fit the map's key type u32"]),
    ("((counts -1 0))", ["key -1 does not fit the map's key type u32"]),
    ("((arr 0 18446744073709551616))", None),  # the reader refuses the literal itself
    ("((arr 0 -1))", ["value -1 does not fit the map's value type u64"]),
    ("((counts 1 1) (counts 1 2))", ["`counts` key 1 is expected twice"]),
    ("((counts 1 1) (arr 1 1))", []),
    ("((events 0 1))", ["ring-buf map `events` has no key/value contents to compare"]),
    ("((ghost 0 1))", ["expected map `ghost` is not used by program `p` (nor by a program it tail-calls)"]),
]


@pytest.mark.parametrize("expects, expected", EXPECT_MAPS)
def test_expected_map_contents(expects, expected):
    text = test_block(extra=f" :expect-maps {expects}")
    if expected is None:
        assert problems(text)
    else:
        assert messages(text) == expected


def test_an_expected_map_the_program_does_not_list_is_refused_even_if_declared():
    text = test_block(extra=" :expect-maps ((spare 0 1))").replace(
        "(defbpf-program p", "(defbpf-map spare :kind :array :key u32 :value u64 :max-entries 4)\n(defbpf-program p")
    ((message, line, col),) = problems(text)
    assert message == "expected map `spare` is not used by program `p` (nor by a program it tail-calls)" and (line, col) == position(text, "(spare 0 1)")


def test_every_expected_map_entry_is_checked_and_each_problem_points_at_its_entry():
    entries = "((events 0 1) (ghost 0 1) (counts 4294967296 0) (arr 0 -1) (arr 9 1))"
    text = test_block(extra=f" :expect-maps {entries}")
    found = problems(text)
    assert [m for m, _, _ in found] == [
        "ring-buf map `events` has no key/value contents to compare",
        "expected map `ghost` is not used by program `p` (nor by a program it tail-calls)",
        "key 4294967296 does not fit the map's key type u32",
        "value -1 does not fit the map's value type u64",
        "key 9 is beyond :max-entries 4 of `arr`",
    ]
    snippets = ["(events 0 1)", "(ghost 0 1)", "(counts 4294967296 0)", "(arr 0 -1)", "(arr 9 1)"]
    assert [(ln, c) for _, ln, c in found] == [position(text, s) for s in snippets]


def test_test_packets_take_the_header_field_names_of_ports_too():
    from tatara_build import packets
    from tatara_build.frontend import parse

    def case_bytes(layer: str) -> bytes:
        module = parse(test_block(f"(a :packet ((eth) (ipv4) {layer}) :expect :xdp-pass)"), "t.tlisp")
        return packets.build_case(module.tests[0].cases[0])

    assert case_bytes("(tcp :src-port 7 :dst-port 443)") == case_bytes("(tcp :sport 7 :dport 443)")
    assert case_bytes("(udp :dst-port 5353)") == case_bytes("(udp :dport 5353)")
    assert case_bytes("(udp :dst-port 5353)") != case_bytes("(udp :dport 53)")


def test_a_port_given_under_both_names_is_an_error_at_the_second():
    text = test_block("(a :packet ((eth) (ipv4) (tcp :dst-port 81 :dport 80)) :expect :xdp-pass)")
    ((message, line, col),) = problems(text)
    assert message == "`:dst-port` and `:dport` name the same tcp field" and (line, col) == position(text, "80)")


def test_expect_may_give_the_actions_number_and_is_then_named_by_it():
    from tatara_build.check import check
    from tatara_build.frontend import parse

    module = check(parse(test_block("(a :packet ((eth)) :expect 1) (b :packet ((eth)) :expect 2)"), "t.tlisp"))
    assert [c.expect for c in module.tests[0].cases] == ["xdp-drop", "xdp-pass"]
    text = test_block("(a :packet ((eth)) :expect 7)")
    ((message, line, col),) = problems(text)
    assert message == "7 is not the value of a xdp action" and (line, col) == position(text, "7)")


def test_l3_kinds_packets_written_from_ip_on_are_framed_as_test_run_needs():
    from tatara_build import packets
    from tatara_build.check import check
    from tatara_build.frontend import parse

    def first_case(kind: str, target: str, layers: str, action: str) -> bytes:
        text = program("(return :" + action + ")", kind=kind, target=target) + \
            f"(defbpf-test t :program p :cases ((a :packet ({layers}) :expect :{action})))\n"
        return packets.build_case(check(parse(text, "t.tlisp")).tests[0].cases[0])

    framed = first_case(":cgroup-skb", "egress", "(eth) (ipv4) (udp)", "allow")
    assert first_case(":cgroup-skb", "egress", "(ipv4) (udp)", "allow") == framed
    assert first_case(":xdp", "eth0", "(ipv4) (udp)", "xdp-pass") == framed[14:]  # xdp sees what it is given


def test_a_dispatchers_test_may_seed_and_check_the_maps_of_the_programs_it_tail_calls():
    """A test runs the calling program; its handlers' maps are filled and
    written in that run, so `:maps-before`/`:expect-maps` may name them (a v6
    blocklist behind a tail-call was refused: `not used by program entry`)."""
    text = """(defbpf-map block :kind :hash :key u32 :value u32 :max-entries 4)
(defbpf-map spare :kind :hash :key u32 :value u32 :max-entries 4)
(defbpf-map jump :kind :prog-array :max-entries 1 :programs ((0 handler)))
(defbpf-program entry :kind :xdp :attach (:target "eth0") :license "GPL" :uses-maps (jump))
(defbpf-program handler :kind :xdp :attach (:target "eth0") :license "GPL" :uses-maps (block))
(bpf-fn entry (ctx) (tail-call ctx jump 0) (return :xdp-pass))
(bpf-fn handler (ctx) (map-set block 1 2) (return :xdp-drop))
(defbpf-test t :program entry :maps-before ((block 7 7)) :cases ((c :packet ((eth)) :expect :xdp-drop))
  :expect-maps ((block 1 2) (spare 1 1)))
"""
    ((message, line, col),) = problems(text)
    assert message == "expected map `spare` is not used by program `entry` (nor by a program it tail-calls)"
    assert (line, col) == position(text, "(spare 1 1)")

"""`set-field!` on packet headers and `set-ctx-field!`: the checker's rules
(read-only fields, widths, kinds that cannot write) with their messages and
columns, and what the frontend builds."""

from __future__ import annotations

import pytest

from tatara_build import tables
from tatara_build.check import check
from tatara_build.errors import SourceError
from tatara_build.frontend import parse

from .helpers import program


def one(body: str, kind: str = ":xdp", target: str = "eth0"):
    try:
        check(parse(program(body, kind=kind, target=target), "t.tlisp"))
    except SourceError as err:
        return [(d.message, d.span.col, d.notes) for d in err.diagnostics]
    return []


IP = "(if-let (ip (header ctx :ipv4)) {}) (return :xdp-pass)"
TC = "(if-let (ip (header ctx :ipv4)) {}) (return :tc-act-ok)"


def test_writable_header_fields_are_accepted_with_their_own_types():
    assert one(IP.format("(set-field! ip :ttl (- (field ip :ttl) 1))")) == []
    assert one(IP.format("(set-field! ip :dst 0x0a000063)")) == []
    assert one(IP.format("(set-field! ip :df #t)")) == []
    assert one("(if-let (t (header ctx :tcp)) (begin (set-field! t :syn #f) (set-field! t :dst-port 8080)))"
               " (return :xdp-pass)") == []
    assert one("(if-let (v (header ctx :vlan)) (set-field! v :id 4095)) (return :xdp-pass)") == []
    assert one("(if-let (ip6 (header ctx :ipv6)) (set-field! ip6 :src-lo (u64 1))) (return :xdp-pass)") == []
    assert one(TC.format("(set-field! ip :tos 4)"), ":tc") == []


def test_a_read_only_field_is_refused_naming_the_writable_ones():
    found = one(IP.format("(set-field! ip :ihl 6)"))
    assert found == [("ipv4 field `:ihl` is read-only: parsing, framing or checksums depend on it", 33,
                      ["writable ipv4 fields: :tos :id :df :ttl :src :dst"])]
    assert one(IP.format("(set-field! ip :checksum 0)"))[0][0].startswith("ipv4 field `:checksum` is read-only")
    assert one("(if-let (u (header ctx :udp)) (set-field! u :len 8)) (return :xdp-pass)")[0][0] \
        == "udp field `:len` is read-only: parsing, framing or checksums depend on it"


def test_unknown_field_gets_a_suggestion():
    assert one(IP.format("(set-field! ip :tll 1)")) == [
        ("unknown ipv4 field `:tll`", 33, ["did you mean `ttl`?", "known: " + " ".join(
            f":{f}" for f in tables.HEADERS["ipv4"].fields)])]


def test_values_must_fit_the_field_width_and_type():
    assert one("(if-let (v (header ctx :vlan)) (set-field! v :id 4096)) (return :xdp-pass)") == [
        ("4096 does not fit the 12-bit field vlan `:id` (0 to 4095)", 50, ["a computed value keeps its low bits only"])]
    assert one("(if-let (v (header ctx :vlan)) (set-field! v :pcp 8)) (return :xdp-pass)")[0][0] \
        == "8 does not fit the 3-bit field vlan `:pcp` (0 to 7)"
    assert one(IP.format("(set-field! ip :ttl 256)"))[0][0] == "integer 256 does not fit in u8 (0 to 255)"
    assert one(IP.format("(set-field! ip :ttl (u32 1))"))[0][0] == "type mismatch: expected u8, found u32"
    assert one(IP.format("(set-field! ip :df 1)"))[0][0] == "type mismatch: expected bool, found integer literal 1"


def test_kinds_without_packet_write_access_are_refused():
    for kind, target, ret in ((":socket-filter", "x", ":keep"), (":cgroup-skb", "egress", ":allow")):
        body = f"(if-let (ip (header ctx :ipv4)) (set-field! ip :ttl 1)) (return {ret})"
        [(message, col, notes)] = one(body, kind, target)
        assert message == (f"{kind[1:]} programs cannot write packet data (the kernel gives them read-only packet "
                           "access); packet writes are for xdp, tc")
        assert col == 33


def test_set_field_needs_a_header():
    assert one("(let ((x (u32 1))) (set-field! x :ttl 1) (return :xdp-pass))") == [
        ("(set-field! …) needs a parsed header bound by if-let, a struct value or a map value bound by if-let on map-lookup, found u32", 32, [])]


def test_ctx_field_writes_follow_the_kernels_write_access():
    assert one("(set-ctx-field! ctx :mark 7) (set-ctx-field! ctx :priority 1) (set-ctx-field! ctx :tc-classid 0x10001)"
               " (set-ctx-field! ctx :tc-index 3) (set-ctx-field! ctx :queue-mapping 0) (return :tc-act-ok)", ":tc") == []
    assert one("(set-ctx-field! ctx :mark 7) (set-ctx-field! ctx :priority 1) (return :allow)",
               ":cgroup-skb", "egress") == []
    assert one("(set-ctx-field! ctx :len 7) (return :tc-act-ok)", ":tc") == [
        ("context field `:len` of tc programs is read-only (the verifier refuses the write)", 1,
         ["writable: :mark :priority :tc-classid :tc-index :queue-mapping"])]
    assert one("(set-ctx-field! ctx :tc-classid 1) (return :allow)", ":cgroup-skb", "egress") == [
        ("cgroup-skb programs have no context field `:tc-classid`", 1,
         ["writable: :mark :priority", "readable: :len :protocol :mark :ifindex :priority"])]
    assert one("(set-ctx-field! ctx :mark (u32 1)) (return :xdp-pass)") == [
        ("xdp programs have no context field `:mark`", 1, ["writable: none", "readable: :len :ingress-ifindex"])]
    assert one("(set-ctx-field! ctx :mark (u64 1)) (return :tc-act-ok)", ":tc")[0][0] \
        == "type mismatch: expected u32, found u64"
    assert one("(set-ctx-field! c2 :mark 1) (return :tc-act-ok)", ":tc")[0][0] \
        == "`c2` is not the program context (`ctx`)"


@pytest.mark.parametrize("text, message", [
    ("(set-field! ip :ttl)", "wrong number of arguments to `set-field!`: expected (set-field! header :name value)"),
    ("(set-ctx-field! ctx mark 1)", "expected context field as a :keyword, got `mark`"),
])
def test_shapes(text, message):
    assert one(f"{text} (return :xdp-pass)")[0][0] == message


def test_every_writable_field_is_typed_and_fits_its_bytes():
    for spec in tables.HEADERS.values():
        for f in spec.fields.values():
            if f.writable:
                assert f.name != spec.checksum and f.name != spec.next_protocol
                assert tables.field_bits(f) <= f.size * 8


def test_load_reads_past_a_header_only_through_if_let():
    ok = "(if-let (t (header ctx :tcp)) (if-let (w (load t 0 u32)) (if (= w 1) (return :xdp-drop)))) (return :xdp-pass)"
    assert one(ok) == []
    assert one("(if-let (t (header ctx :tcp)) (let ((o (u32 4))) (if-let (b (load t (+ o 1) u8)) (return :xdp-drop))))"
               " (return :xdp-pass)") == []
    assert one("(if-let (t (header ctx :udp)) (if-let (b (load t 4095 u8)) (return :xdp-drop))) (return :xdp-pass)") == []
    assert one("(if-let (t (header ctx :udp)) (if-let (b (load t 4096 u8)) (return :xdp-drop))) (return :xdp-pass)") == [
        ("load offset 4096 is past the limit of 4095 bytes after the header (the verifier needs a bound)", 50, [])]
    assert one("(if-let (t (header ctx :udp)) (if (= (load t 0 u8) 1) (return :xdp-drop))) (return :xdp-pass)") == [
        ("(load …) can be past the packet's end; use it through (if-let (name …) then else)", 38, [])]
    assert one("(let ((x (u32 1))) (if-let (b (load x 0 u8)) (return :xdp-drop)) (return :xdp-pass))") == [
        ("(load …) reads past a parsed header bound by if-let, found u32", 37, [])]
    assert one("(if-let (t (header ctx :udp)) (if-let (b (load t (u16 1) u8)) (return :xdp-drop))) (return :xdp-pass)")[0][0] \
        == "type mismatch: expected u32, found u16"
    assert one("(if-let (t (header ctx :udp)) (if-let (b (load t 0 i8)) (return :xdp-drop))) (return :xdp-pass)")[0][0] \
        == "expected the type read, one of u8, u16, u32, u64, got `i8`"
    # the bound value has the type read
    assert one("(if-let (t (header ctx :udp)) (if-let (b (load t 0 u16)) (if (= b (u8 1)) (return :xdp-drop))))"
               " (return :xdp-pass)")[0][0] == "type mismatch: expected u16, found u8"

"""L3 is located once per program, at the innermost straight-line point
before every parse above L2 (not per `header` form, not before unrelated
earlier code); Ethernet and VLAN parses don't need it."""

from __future__ import annotations

import re

import pytest

from tatara_build import check, frontend
from tatara_build.backends import render

from .helpers import FIXTURES, SOURCES, ids, load


def program_bodies(text: str) -> list[str]:
    return re.findall(r'^SEC\("[^"]+"\)\n.*?^}$', text, re.S | re.M)


@pytest.mark.parametrize("source", SOURCES, ids=ids(SOURCES))
def test_at_most_one_l3_walk_per_program_and_none_in_parsers(source):
    (text,) = render(load(source), "c").values()
    for body in program_bodies(text):
        assert len(re.findall(r"= __l3(?:_\w+)?\(__data, __data_end", body)) <= 1
    parsers = re.findall(r"^static __always_inline void \*__parse_\w+\(.*?^}$", text, re.S | re.M)
    assert not any("__l3(" in p or "__l3_l3(" in p for p in parsers)


def test_the_walk_comes_after_code_before_the_first_parse():
    tc = next(p for p in FIXTURES if p.stem == "kind-tc")
    (text,) = render(load(tc), "c").values()
    (body,) = program_bodies(text)
    assert body.index("__set_marks(") < body.index("= __l3(") < body.index("__parse_tcp(")


def test_l2_only_parses_do_not_walk_to_l3(tmp_path):
    source = tmp_path / "eth-only.tlisp"
    source.write_text('(defbpf-program eth-only :kind :xdp :attach (:target "eth0") :license "GPL")\n'
                      "(bpf-fn eth-only (ctx)\n"
                      "  (if-let (eth (header ctx :eth)) (if (= (field eth :type) 2054) (return :xdp-drop)))\n"
                      "  (return :xdp-pass))\n")
    (text,) = render(load(source), "c").values()
    assert "__l3" not in text


def test_tc_pulls_what_its_parsers_may_read():
    """tc pulls eth + 2 VLAN tags + the longest L3 header (IPv4 with options)
    + the longest L4 header used, never more than the packet (skb->len); an
    L4 header over IPv6 may start up to 2047 bytes past IPv6's start (its
    extension headers), ICMP (IPv4 only) cannot."""
    from tatara_build.backends.base import pull_bytes

    assert pull_bytes({"eth"}) == 14
    assert pull_bytes({"vlan"}) == 14 + 8
    assert pull_bytes({"ipv6"}) == 14 + 8 + 60
    assert pull_bytes({"icmp"}) == 14 + 8 + 60 + 4
    assert pull_bytes({"tcp", "udp"}) == 14 + 8 + 2047 + 20
    src = ('(defbpf-program t :kind :tc :attach (:target "eth0") :license "GPL")\n'
           "(bpf-fn t (skb) (if-let (u (header skb :udp)) (return :tc-act-shot)) (return :tc-act-ok))\n")
    module = check.check(frontend.parse(src, "t.tlisp"))
    c = render(module, "c")["t.bpf.c"]
    assert "if ((void *)(long)ctx->data + 2077 > (void *)(long)ctx->data_end)\n" in c
    assert "bpf_skb_pull_data(ctx, ctx->len < 2077 ? ctx->len : 2077);" in c
    aya = render(module, "aya")["src/main.rs"]
    assert "if ctx.data() + 2077 > ctx.data_end() {" in aya and "core::cmp::min(ctx.len(), 2077)" in aya
    assert aya.index("bpf_skb_pull_data") < aya.index("let __data: usize = ctx.data();")


@pytest.mark.parametrize("dialect", ["c", "aya"])
def test_an_xdp_header_write_helper_is_named_for_its_header_and_field_alone(dialect):
    """XDP reaches the packet from L2, the plain case: its write helpers carry no access suffix
    (tc's are __set_…_l2_skb, as the goldens show), in the generated source users read."""
    source = ('(defbpf-program w :kind :xdp :attach (:target "eth0") :license "GPL")\n'
              "(bpf-fn w (ctx) (if-let (ip (header ctx :ipv4)) (set-field! ip :ttl 9)) (return :xdp-pass))\n")
    text = "\n".join(render(check.check(frontend.parse(source, "w.tlisp")), dialect).values())
    assert sorted(set(re.findall(r"__set_\w+", text))) == ["__set_ipv4_ttl"]


def test_an_xdp_ipv4_write_fixes_the_header_checksum_from_the_old_and_new_words():
    """XDP has no kernel checksum helper: the C backend updates it in the program (RFC 1624),
    folding the old and the new 16-bit word of the field into the checksum at byte 10."""
    source = ('(defbpf-program w :kind :xdp :attach (:target "eth0") :license "GPL")\n'
              "(bpf-fn w (ctx) (if-let (ip (header ctx :ipv4)) (set-field! ip :ttl 9)) (return :xdp-pass))\n")
    (text,) = render(check.check(frontend.parse(source, "w.tlisp")), "c").values()
    lines = [line.strip() for line in text.splitlines()]
    assert "static __always_inline __u32 __csum_fold(__u32 s)" in lines
    assert "static __always_inline void __csum_set(void *at, __u32 from, __u32 to, int zero_none)" in lines
    assert "__csum_set(__h + 10, ((__old >> 0) & 0xffff), ((__new >> 0) & 0xffff), 0);" in lines

"""packets.py against an independent encoder: scapy builds the same packet and the bytes must
be identical (VLAN tag layout, IPv4 lengths with options, every checksum, TCP options as the
segment's first payload bytes), plus the limits users can hit (40 bytes of IPv4 options, a
derived length that no longer fits, :truncate at the packet's end)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

scapy_l2 = pytest.importorskip("scapy.layers.l2")
from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import (  # noqa: E402
    ICMPv6EchoReply, ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting, PadN, RouterAlert,
)
from scapy.layers.l2 import ARP, Dot1Q, Ether  # noqa: E402

from tatara_build import ir, tables  # noqa: E402
from tatara_build.errors import SourceError, Span  # noqa: E402
from tatara_build.packets import build, build_case, checksum  # noqa: E402

MAC_SRC, MAC_DST = "02:00:00:00:00:01", "02:00:00:00:00:02"
SPAN = Span(file="t.tlisp", line=7, col=3, end_line=7, end_col=20)


def L(kind: str, **fields) -> ir.Layer:
    return ir.Layer(kind=kind, fields={k.replace("_", "-"): v for k, v in fields.items()}, span=SPAN)


def eth() -> Ether:
    return Ether(src=MAC_SRC, dst=MAC_DST)


def ip4(**kw) -> IP:
    return IP(src=kw.pop("src", "10.0.0.1"), dst=kw.pop("dst", "10.0.0.2"), id=kw.pop("id", 1), ttl=kw.pop("ttl", 64),
              **kw)


def ip6(**kw) -> IPv6:
    return IPv6(src="fd00::1", dst="fd00::2", hlim=64, **kw)


@pytest.mark.parametrize("pcp, vid", [(0, 1), (1, 0), (5, 100), (7, 4095), (4, 2048)])
def test_vlan_tci_packs_pcp_above_dei_and_the_id_below(pcp, vid):
    ours = build([L("eth"), L("vlan", pcp=pcp, id=vid), L("ipv4"), L("udp")])
    theirs = eth() / Dot1Q(prio=pcp, vlan=vid) / ip4() / UDP(sport=12345, dport=53)
    assert ours == bytes(theirs)
    assert struct.unpack("!H", ours[14:16])[0] == (pcp << 13) | vid


def test_qinq_outer_tpid_goes_into_the_ethertype_and_inner_tags_chain():
    ours = build([L("eth"), L("vlan", id=10, pcp=3, tpid=0x88A8), L("vlan", id=20), L("ipv6"), L("tcp")])
    theirs = Ether(src=MAC_SRC, dst=MAC_DST, type=0x88A8) / Dot1Q(vlan=10, prio=3) / Dot1Q(vlan=20) / ip6() / TCP(
        sport=12345, dport=80, flags=0, window=65535)
    assert ours == bytes(theirs)


def test_vlan_with_explicit_inner_type_and_no_next_layer():
    ours = build([L("eth"), L("vlan", id=3, type=0x0806)])
    assert ours == bytes(eth() / Dot1Q(vlan=3, type=0x0806))
    bare = build([L("eth"), L("vlan", id=3)])
    assert bare[16:18] == b"\x88\xb5"  # nothing follows: the local experimental ethertype


@pytest.mark.parametrize("options", [b"", b"\x01\x01\x01\x00", b"\x94\x04\x00\x00" * 2, bytes(range(40))],
                         ids=["none", "nop-eol", "router-alert-x2", "40-bytes"])
def test_ipv4_options_count_in_ihl_total_length_and_checksum(options):
    ours = build([L("eth"), L("ipv4", options=options.hex()), L("udp"), L("raw", hex="68656c6c6f")])
    theirs = eth() / ip4(options=options) / UDP(sport=12345, dport=53) / b"hello"
    assert ours == bytes(theirs)
    assert struct.unpack("!H", ours[16:18])[0] == 20 + len(options) + 8 + 5


def test_exactly_40_bytes_of_ipv4_options_is_the_limit():
    packet = build([L("ipv4", options="01" * 40)])
    assert packet[0] == 0x4F and len(packet) == 60
    with pytest.raises(SourceError) as err:
        build([L("ipv4", options="01" * 44)])
    assert "at most 40 (got 44)" in str(err.value)
    assert err.value.diagnostics[0].span == SPAN
    with pytest.raises(SourceError, match="multiple of 4 bytes"):
        build([L("ipv4", options="01" * 6)])


def test_ipv4_fields_flags_and_fragments_match_scapy():
    ours = build([L("eth"), L("ipv4", tos=0xB8, ttl=1, id=0xBEEF, flags=["df", "mf"], frag_offset=0x1FFF,
                                src="192.0.2.255", dst="198.51.100.7"), L("icmp", type=3, code=4)])
    theirs = eth() / ip4(tos=0xB8, ttl=1, id=0xBEEF, flags="DF+MF", frag=0x1FFF, src="192.0.2.255",
                         dst="198.51.100.7") / ICMP(type=3, code=4, id=0, seq=0)
    assert ours == bytes(theirs)


def test_ipv4_alone_takes_protocol_255_and_its_checksum():
    ours = build([L("ipv4", ttl=200)])
    assert ours == bytes(ip4(ttl=200, proto=255))


def test_tcp_header_fields_and_options_as_payload_with_a_data_offset():
    mss = b"\x02\x04\x05\xb4"  # MSS 1460
    ours = build([L("eth"), L("ipv4"), L("tcp", sport=443, dport=51000, seq=2**32 - 1, ack_seq=0x01020304,
                                         flags=["syn", "ack", "ece", "cwr"], window=1, data_offset=6),
                  L("raw", hex=mss.hex())])
    theirs = eth() / ip4() / TCP(sport=443, dport=51000, seq=2**32 - 1, ack=0x01020304, flags="SAEC", window=1,
                                 options=[("MSS", 1460)])
    assert ours == bytes(theirs)
    assert ours[34 + 12] >> 4 == 6


@pytest.mark.parametrize("flag, letter", [("fin", "F"), ("syn", "S"), ("rst", "R"), ("psh", "P"), ("ack", "A"),
                                          ("urg", "U"), ("ece", "E"), ("cwr", "C")])
def test_each_tcp_flag_is_its_own_bit(flag, letter):
    ours = build([L("eth"), L("ipv6"), L("tcp", flags=[flag])])
    assert ours == bytes(eth() / ip6() / TCP(sport=12345, dport=80, flags=letter, window=65535))


def test_udp_checksum_that_computes_to_zero_is_sent_as_ffff():
    # choose the last payload word so the ones' complement sum is 0xFFFF, i.e. a computed checksum of 0
    head = build([L("ipv4"), L("udp"), L("raw", hex="0000")])
    word = 0xFFFF - (~checksum(head[12:20] + struct.pack("!BBH", 0, 17, 10) + head[20:26] + bytes(2)) & 0xFFFF)
    ours = build([L("ipv4"), L("udp"), L("raw", hex=f"{word:04x}")])
    assert ours[26:28] == b"\xff\xff"
    assert ours == bytes(ip4() / UDP(sport=12345, dport=53) / struct.pack("!H", word))


def test_udp_over_ipv6_and_an_explicit_length_match_scapy():
    ours = build([L("eth"), L("ipv6"), L("udp", sport=5353, dport=5353), L("raw", hex="00" * 17)])
    assert ours == bytes(eth() / ip6() / UDP(sport=5353, dport=5353) / bytes(17))
    odd = build([L("ipv4"), L("udp", len=9), L("raw", hex="aa")])
    assert odd == bytes(ip4() / UDP(sport=12345, dport=53, len=9) / b"\xaa")


def test_icmp_echo_and_icmpv6_echo_match_scapy():
    v4 = build([L("eth"), L("ipv4"), L("icmp"), L("raw", hex="0102030405")])
    assert v4 == bytes(eth() / ip4() / ICMP(type=8, code=0, id=0, seq=0) / bytes.fromhex("0102030405"))
    v6 = build([L("eth"), L("ipv6", hop_limit=255), L("icmpv6"), L("raw", hex="ff")])
    assert v6 == bytes(eth() / IPv6(src="fd00::1", dst="fd00::2", hlim=255) / ICMPv6EchoRequest(id=0, seq=0) / b"\xff")


def test_icmp_largest_type_and_code_and_icmpv6_over_ipv6_with_payload():
    v4 = build([L("eth"), L("ipv4"), L("icmp", type=255, code=255), L("raw", hex="aabbccdd")])
    assert v4 == bytes(eth() / ip4() / ICMP(type=255, code=255, id=0, seq=0) / bytes.fromhex("aabbccdd"))
    v6 = build([L("ipv6"), L("icmpv6", type=129, code=200), L("raw", hex="00" * 9)])
    assert v6 == bytes(ip6() / ICMPv6EchoReply(code=200, id=0, seq=0) / bytes(9))
    assert build([L("icmp")]) == bytes(ICMP(type=8, code=0, id=0, seq=0))  # no IP layer: the message alone


def test_arp_reply_matches_scapy():
    ours = build([L("eth", src="02:aa:bb:cc:dd:ee"), L("arp", op=2, sender_ip="192.168.1.1", target_ip="192.168.1.2")])
    theirs = Ether(src="02:aa:bb:cc:dd:ee", dst=MAC_DST) / ARP(op=2, hwsrc="02:aa:bb:cc:dd:ee", psrc="192.168.1.1",
                                                                 hwdst="00:00:00:00:00:00", pdst="192.168.1.2")
    assert ours == bytes(theirs)
    assert build([L("arp")])[8:14] == bytes(6)  # no Ethernet layer: a zero sender MAC
    assert build([L("arp", op=65535)]) == bytes(ARP(op=65535, hwsrc="00:00:00:00:00:00", psrc="10.0.0.1",
                                                   hwdst="00:00:00:00:00:00", pdst="10.0.0.2"))


def test_ipv6_no_next_header_and_explicit_payload_length():
    assert build([L("ipv6")]) == bytes(ip6(nh=59))
    assert build([L("ipv6", payload_len=1, next_header=17)]) == bytes(ip6(nh=17, plen=1))


def test_ipv6_extension_headers_chain_pad_and_checksum_like_scapy():
    ours = build([L("eth"), L("ipv6"), L("ipv6-hop-by-hop"), L("ipv6-routing", segments_left=0),
                  L("ipv6-fragment", frag_offset=0, flags=["mf"], id=0xDEADBEEF), L("ipv6-dest-opts"),
                  L("tcp", flags=["syn"])])
    theirs = eth() / ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrFragment(m=1, id=0xDEADBEEF) \
        / IPv6ExtHdrDestOpt() / TCP(sport=12345, dport=80, flags="S", window=65535)
    assert ours == bytes(theirs)
    assert ours[20] == 0 and ours[54:56] == bytes([43, 0])  # IPv6 -> hop-by-hop -> routing


@pytest.mark.parametrize("options", [RouterAlert(), PadN(optdata=bytes(10)), RouterAlert() / PadN(optdata=bytes(9))],
                         ids=["router-alert", "padn-12", "two-options-odd"])
def test_ipv6_options_headers_pad_to_8_bytes_as_scapy(options):
    raw = bytes(options)
    ours = build([L("ipv6"), L("ipv6-hop-by-hop", options=raw.hex()), L("ipv6-dest-opts", options=raw.hex()), L("udp")])
    theirs = ip6() / IPv6ExtHdrHopByHop(options=[options]) / IPv6ExtHdrDestOpt(options=[options]) / UDP(
        sport=12345, dport=53)
    assert ours == bytes(theirs)
    assert (len(ours) - 40 - 8) % 8 == 0


def test_ipv6_fragment_offset_and_routing_data_limits():
    later = build([L("ipv6"), L("ipv6-fragment", frag_offset=0x1FFF, id=7), L("raw", hex="00" * 8)])
    assert later == bytes(ip6() / IPv6ExtHdrFragment(offset=0x1FFF, id=7, nh=59) / bytes(8))
    routed = build([L("ipv6"), L("ipv6-routing", type=4, segments_left=1, data="00" * 20), L("icmpv6")])
    assert routed[40:44] == bytes([58, 2, 4, 1]) and len(routed) == 40 + 24 + 8
    with pytest.raises(SourceError, match="multiple of 8 bytes"):
        build([L("ipv6"), L("ipv6-routing", data="00")])


@settings(max_examples=40, deadline=None)
@given(
    v6=st.booleans(), vlan=st.booleans(), udp=st.booleans(), sport=st.integers(0, 65535),
    dport=st.integers(0, 65535), payload=st.binary(max_size=31), options=st.integers(0, 10),
)
def test_random_stacks_match_scapy(v6, vlan, udp, sport, dport, payload, options):
    ours_layers = [L("eth")] + ([L("vlan", id=sport & 0xFFF, pcp=dport & 7)] if vlan else [])
    theirs = eth() / Dot1Q(vlan=sport & 0xFFF, prio=dport & 7) if vlan else eth()
    opts = bytes([1]) * (4 * options)
    if v6:
        ours_layers.append(L("ipv6"))
        theirs = theirs / ip6()
    else:
        ours_layers.append(L("ipv4", options=opts.hex()))
        theirs = theirs / ip4(options=opts)
    if udp:
        ours_layers.append(L("udp", sport=sport, dport=dport))
        theirs = theirs / UDP(sport=sport, dport=dport)
    else:
        ours_layers.append(L("tcp", sport=sport, dport=dport))
        theirs = theirs / TCP(sport=sport, dport=dport, flags=0, window=65535)
    ours_layers.append(L("raw", hex=payload.hex()))
    assert build(ours_layers) == bytes(theirs / payload)


def test_a_derived_length_that_overflows_is_a_source_error_at_its_layer():
    big = "00" * (65536 - 8)
    with pytest.raises(SourceError) as err:
        build([L("udp"), L("raw", hex=big)])
    assert "udp :len = 65536 does not fit in 16 bits" in str(err.value)
    assert err.value.diagnostics[0].span == SPAN
    assert len(build([L("udp"), L("raw", hex="00" * (65535 - 8))])) == 65535
    with pytest.raises(SourceError, match="ipv6 :payload-len = 65536"):
        build([L("ipv6"), L("raw", hex="00" * 65536)])
    with pytest.raises(SourceError, match="ipv4 :total-len = 65536"):
        build([L("ipv4"), L("raw", hex="00" * (65536 - 20))])


def test_truncate_at_the_boundaries():
    layers = [L("eth"), L("ipv4"), L("udp")]
    full = build(layers)
    at = lambda n: build_case(ir.TestCase(name="t", layers=layers, truncate=n, expect="xdp-pass", span=SPAN))  # noqa: E731
    assert at(len(full)) == full and at(0) == b"" and at(1) == full[:1]
    with pytest.raises(SourceError) as err:
        at(len(full) + 1)
    assert f"truncate {len(full) + 1} is outside the packet's {len(full)} bytes" in str(err.value)
    with pytest.raises(SourceError, match="outside"):
        at(-1)


def test_field_errors_are_the_checkers_and_name_the_layer_field_and_what_was_expected():
    """check_layer is the one validator of test packet fields (packets.build
    only builds what passed it), at the layer's span."""
    from tatara_build.check.packets import check_layer

    cases = [
        (L("vlan", pcp=8), "vlan :pcp: 8 does not fit in 3 bits"),
        (L("ipv4", ihl=16), "ipv4 :ihl: 16 does not fit in 4 bits"),
        (L("tcp", seq=2**32), "tcp :seq: 4294967296 does not fit in 32 bits"),
        (L("udp", sport="53"), "udp :sport: expected an integer"),
        (L("udp", sport=True), "udp :sport: expected an integer"),
        (L("ipv4", flags=["df", "xx"]), "ipv4 :flags: unknown flag(s) xx; known: "),
        (L("eth", dst="02:00:00:00:00"), "eth :dst: '02:00:00:00:00' is not a MAC address like 02:00:00:00:00:01"),
        (L("ipv6", src="fd00::zz"), "ipv6 :src: 'fd00::zz' is not an IPv6 address"),
        (L("raw", hex="0g"), "raw :hex: expected an even number of hex digits"),
        (L("udp", colour=1), "udp has no field `:colour`; known: sport, dport, len"),
        (L("tpc"), "unknown packet layer `tpc`"),
    ]
    for layer, message in cases:
        (diagnostic,) = check_layer(layer)
        assert diagnostic.message.startswith(message), (message, diagnostic.message)
        assert diagnostic.span == SPAN
    assert build([L("vlan", pcp=7, id=4095)])[:2] == b"\xef\xff"  # bit 12 (DEI) stays clear
    assert build([L("tcp", seq=2**32 - 1)])[4:8] == b"\xff" * 4
    assert build([L("tcp", flags="syn")])[13] == tables.TCP_FLAG_BITS["syn"]


@pytest.mark.parametrize("v6", [False, True])
def test_datagrams_over_32k_keep_unsigned_lengths_and_checksums(v6):
    payload = bytes(range(256)) * 160  # 40,960 bytes: lengths above 0x7FFF
    ip_ours, ip_theirs = (L("ipv6"), ip6()) if v6 else (L("ipv4", id=40000), ip4(id=40000))
    for l4_ours, l4_theirs in ((L("udp", sport=65535), UDP(sport=65535, dport=53)),
                               (L("tcp", window=40000), TCP(sport=12345, dport=80, flags=0, window=40000))):
        ours = build([L("eth"), ip_ours, l4_ours, L("raw", hex=payload.hex())])
        assert ours == bytes(eth() / ip_theirs / l4_theirs / payload)

"""packets.py: layers to bytes. Checksums are checked by an independent
re-computation (the ones' complement sum over a correct header is 0xFFFF)
and against a published vector; lengths and selectors by parsing the bytes."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tatara_build import ir, tables
from tatara_build.errors import SourceError, Span
from tatara_build.packets import build, build_case


def L(kind: str, **fields) -> ir.Layer:
    return ir.Layer(kind=kind, fields={k.replace("_", "-"): v for k, v in fields.items()})


def ones_sum(data: bytes) -> int:
    """Independent of packets.checksum: byte pairs summed with end-around carry."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + bytes([0, proto]) + length.to_bytes(2, "big")
    return src + dst + length.to_bytes(4, "big") + bytes([0, 0, 0, proto])


def test_ipv4_header_checksum_matches_published_vector():
    # The classic example header (Wikipedia, "IPv4 header checksum"): 0xB861.
    packet = build([L("ipv4", total_len=0x73, id=0, flags=["df"], ttl=64, protocol=17,
                      src="192.168.0.1", dst="192.168.0.199")])
    assert packet == bytes.fromhex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")


def test_eth_ipv4_tcp_syn_fields_lengths_and_checksums():
    packet = build([L("eth"), L("ipv4"), L("tcp", flags=["syn"], dport=80)])
    assert len(packet) == 14 + 20 + 20
    assert struct.unpack("!H", packet[12:14])[0] == tables.ETH_P_IP
    ip, tcp = packet[14:34], packet[34:]
    assert ip[0] == 0x45 and ip[9] == tables.IPPROTO_TCP
    assert struct.unpack("!H", ip[2:4])[0] == 40  # total length
    assert ones_sum(ip) == 0xFFFF
    assert struct.unpack("!HH", tcp[:4]) == (12345, 80)
    assert tcp[12] >> 4 == 5 and tcp[13] == tables.TCP_FLAG_BITS["syn"]
    assert ones_sum(pseudo(ip[12:16], ip[16:20], 6, len(tcp)) + tcp) == 0xFFFF


def test_ipv4_options_set_ihl_and_shift_the_tcp_header():
    packet = build([L("eth"), L("ipv4", options="0101010101010101"), L("tcp", flags=["syn", "ack"])])
    ip = packet[14:]
    assert ip[0] & 0xF == 7 and len(packet) == 14 + 28 + 20
    assert ones_sum(ip[:28]) == 0xFFFF
    assert ip[28 + 13] == tables.TCP_FLAG_BITS["syn"] | tables.TCP_FLAG_BITS["ack"]


def test_ipv6_udp_payload_length_and_checksum():
    packet = build([L("eth"), L("ipv6"), L("udp", dport=53), L("raw", hex="de ad be ef")])
    assert struct.unpack("!H", packet[12:14])[0] == tables.ETH_P_IPV6
    ip6, udp = packet[14:54], packet[54:]
    assert ip6[0] >> 4 == 6 and ip6[6] == tables.IPPROTO_UDP
    assert struct.unpack("!H", ip6[4:6])[0] == len(udp) == 12
    assert struct.unpack("!H", udp[4:6])[0] == 12 and udp[8:] == bytes.fromhex("deadbeef")
    assert ip6[8:24] == ipaddress.IPv6Address("fd00::1").packed
    assert ones_sum(pseudo(ip6[8:24], ip6[24:40], 17, len(udp)) + udp) == 0xFFFF


def test_icmp_and_icmpv6_checksums():
    v4 = build([L("eth"), L("ipv4"), L("icmp")])
    assert v4[14 + 9] == tables.IPPROTO_ICMP and ones_sum(v4[34:]) == 0xFFFF
    v6 = build([L("eth"), L("ipv6"), L("icmpv6")])
    assert v6[14 + 6] == tables.IPPROTO_ICMPV6
    assert ones_sum(pseudo(v6[22:38], v6[38:54], 58, len(v6[54:])) + v6[54:]) == 0xFFFF


def test_vlan_tags_chain_ethertypes():
    packet = build([L("eth"), L("vlan", id=7), L("vlan", id=9, tpid=tables.ETH_P_8021Q), L("ipv4"), L("udp")])
    assert struct.unpack("!H", packet[12:14])[0] == tables.ETH_P_8021Q
    assert struct.unpack("!HH", packet[14:18]) == (7, tables.ETH_P_8021Q)
    assert struct.unpack("!HH", packet[18:22]) == (9, tables.ETH_P_IP)


def test_arp_and_fragment_offset():
    arp = build([L("eth"), L("arp", op=2)])
    assert struct.unpack("!H", arp[12:14])[0] == tables.ETH_P_ARP
    assert struct.unpack("!HHBBH", arp[14:22]) == (1, tables.ETH_P_IP, 6, 4, 2)
    assert arp[22:28] == bytes.fromhex("020000000001")  # sender MAC = Ethernet source
    frag = build([L("eth"), L("ipv4", frag_offset=8, flags=["mf"]), L("tcp")])
    assert struct.unpack("!H", frag[20:22])[0] == 0x2000 | 8


def test_explicit_values_win_over_derived_ones():
    packet = build([L("eth", type=0x1234), L("ipv4", protocol=99, total_len=1000, ihl=6)])
    assert packet[12:14] == b"\x12\x34" and packet[14] == 0x46 and packet[23] == 99
    assert struct.unpack("!H", packet[16:18])[0] == 1000


def test_truncate_and_hex_cases():
    case = ir.TestCase(name="t", layers=[L("eth"), L("ipv4"), L("tcp", flags=["syn"])], truncate=40, expect="xdp-pass")
    full = build(case.layers)
    assert build_case(case) == full[:40]
    raw = ir.TestCase(name="r", packet_hex="00 11 22\n33", expect="xdp-pass")
    assert build_case(raw) == bytes.fromhex("00112233")


SPAN = Span(file="x.tlisp", line=3, col=5, end_line=3, end_col=9)


@pytest.mark.parametrize(
    "layer, message",
    [
        (ir.Layer(kind="tcp", fields={"colour": 1}, span=SPAN), "no field `:colour`"),
        (ir.Layer(kind="tcp", fields={"flags": ["syn", "nope"]}, span=SPAN), "nope"),
        (ir.Layer(kind="tcp", fields={"dport": 70000}, span=SPAN), "70000 does not fit in 16 bits"),
        (ir.Layer(kind="vlan", fields={"id": 4096}, span=SPAN), "fit in 12 bits"),
        (ir.Layer(kind="ipv4", fields={"ttl": -1}, span=SPAN), "fit in 8 bits"),
        (ir.Layer(kind="ipv4", fields={"src": "10.0.0.300"}, span=SPAN), "ipv4 :src"),
        (ir.Layer(kind="eth", fields={"src": "zz"}, span=SPAN), "MAC"),
    ],
)
def test_bad_fields_are_the_checkers_source_errors_at_the_layer(layer, message):
    from tatara_build.check.packets import check_layer

    (diagnostic,) = check_layer(layer)
    assert message in diagnostic.message
    assert diagnostic.span == SPAN


def test_packet_hex_is_checked_by_the_checker():
    from tatara_build.check.packets import check_packet_hex

    good = ir.TestCase(name="t", packet_hex="00 11 22\n33", expect="xdp-pass", span=SPAN)
    bad = ir.TestCase(name="t", packet_hex="0g", expect_packet_hex="001", expect="xdp-pass", span=SPAN)
    assert check_packet_hex(good) == []
    assert [(d.message, d.span) for d in check_packet_hex(bad)] == [
        (":packet-hex: expected an even number of hex digits", SPAN),
        (":expect-packet-hex: expected an even number of hex digits", SPAN)]


def test_ipv4_options_are_whole_words_at_the_layer():
    with pytest.raises(SourceError) as err:
        build([ir.Layer(kind="ipv4", fields={"options": "010101"}, span=SPAN)])
    assert "multiple of 4" in str(err.value)
    assert err.value.diagnostics[0].span == SPAN


def test_truncate_beyond_the_packet_is_an_error():
    case = ir.TestCase(name="t", layers=[L("eth")], truncate=100, expect="xdp-pass", span=SPAN)
    with pytest.raises(SourceError, match="outside"):
        build_case(case)


@settings(max_examples=60, deadline=None)
@given(
    sport=st.integers(0, 65535), dport=st.integers(0, 65535), seq=st.integers(0, 2**32 - 1),
    flags=st.lists(st.sampled_from(sorted(tables.TCP_FLAG_BITS)), unique=True),
    payload=st.binary(max_size=33), v6=st.booleans(),
)
def test_tcp_checksum_always_verifies(sport, dport, seq, flags, payload, v6):
    ip = L("ipv6") if v6 else L("ipv4")
    packet = build([L("eth"), ip, L("tcp", sport=sport, dport=dport, seq=seq, flags=flags),
                    L("raw", hex=payload.hex())])
    header = 40 if v6 else 20
    ipb, seg = packet[14:14 + header], packet[14 + header:]
    src, dst = (ipb[8:24], ipb[24:40]) if v6 else (ipb[12:16], ipb[16:20])
    assert ones_sum(pseudo(src, dst, 6, len(seg)) + seg) == 0xFFFF
    assert seg[20:] == payload


def test_describe_diff_names_the_length_and_each_differing_byte_up_to_the_limit():
    """What a failed :expect-packet shows: the lengths when they differ, then each differing
    byte (offset in decimal and hex, expected -> got), at most `limit` of them."""
    from tatara_build.packets import describe_diff

    assert describe_diff(b"\x01\x02", b"\x01\x02") == ""
    assert describe_diff(bytes(20), bytes(18) + b"\x00\xff\xee") == "length 20 expected, got 21; byte 19 (0x13): expected 00, got ff"
    assert describe_diff(bytes(12), bytes([1] * 12), limit=3) == (
        "byte 0 (0x0): expected 00, got 01; byte 1 (0x1): expected 00, got 01; byte 2 (0x2): expected 00, got 01; "
        "... 9 more differing bytes")
    assert describe_diff(bytes(9), bytes([7] * 9)).endswith("byte 7 (0x7): expected 00, got 07; ... 1 more differing bytes")
    assert "more differing" not in describe_diff(bytes(8), bytes([7] * 8))

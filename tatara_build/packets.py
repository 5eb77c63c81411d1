"""Test packets: IR `Layer`s (a `defbpf-test` case) to bytes.

Field names, kinds and defaults come from tables.PACKET_LAYERS. What the
user leaves out is derived from the neighbouring layers: ethertypes, IP
protocol / next header, lengths, IPv4 IHL, TCP data offset and every
checksum (IPv4 header, TCP/UDP/ICMPv6 with the pseudo-header, ICMP)."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass

from . import ir, tables
from .errors import SourceError

# What the next layer implies for the selector field of the one before it.
ETHERTYPE = {"vlan": tables.ETH_P_8021Q, "ipv4": tables.ETH_P_IP, "ipv6": tables.ETH_P_IPV6, "arp": tables.ETH_P_ARP}
IP_PROTOCOL = {"tcp": tables.IPPROTO_TCP, "udp": tables.IPPROTO_UDP, "icmp": tables.IPPROTO_ICMP,
               "icmpv6": tables.IPPROTO_ICMPV6, **{e.name: e.number for e in tables.IPV6_EXTENSIONS}}
NO_NEXT_HEADER = 59  # IPv6 "no next header"; IPv4 uses 255 (reserved)


def build_case(case: ir.TestCase) -> bytes:
    """The packet of one test case, `:truncate` applied."""
    if case.packet_hex is not None:
        packet = _hex(case.packet_hex)
    else:
        packet = build(case.layers)
    if case.truncate is not None:
        if not 0 <= case.truncate <= len(packet):
            raise SourceError(f"truncate {case.truncate} is outside the packet's {len(packet)} bytes", case.span)
        packet = packet[: case.truncate]
    return packet


def expected_packet(case: ir.TestCase) -> bytes | None:
    """The packet a case expects the program to leave (`:expect-packet`), or None."""
    if case.expect_packet_hex is not None:
        return _hex(case.expect_packet_hex)
    return build(case.expect_layers) if case.expect_layers else None


def describe_diff(expected: bytes, got: bytes, limit: int = 8) -> str:
    """Where two packets differ, byte by byte: `offset: expected -> got`."""
    if expected == got:
        return ""
    lines = []
    if len(expected) != len(got):
        lines.append(f"length {len(expected)} expected, got {len(got)}")
    diffs = [i for i in range(min(len(expected), len(got))) if expected[i] != got[i]]
    for i in diffs[:limit]:
        lines.append(f"byte {i} (0x{i:x}): expected {expected[i]:02x}, got {got[i]:02x}")
    if len(diffs) > limit:
        lines.append(f"... {len(diffs) - limit} more differing bytes")
    return "; ".join(lines)


def build(layers: list[ir.Layer]) -> bytes:
    """Encode the layers innermost first, so each knows its payload."""
    values = [_fields(layer) for layer in layers]
    payload = b""
    for i in range(len(layers) - 1, -1, -1):
        outer = range(i - 1, -1, -1)
        at = Encoding(
            fields=values[i], payload=payload,
            after=layers[i + 1].kind if i + 1 < len(layers) else None,
            after_fields=values[i + 1] if i + 1 < len(layers) else {},
            ip=next(((layers[j].kind, values[j]["src"], values[j]["dst"]) for j in outer
                     if layers[j].kind in ("ipv4", "ipv6")), None),
            eth_src=next((values[j]["src"] for j in outer if layers[j].kind == "eth"), None),
        )
        try:
            payload = ENCODERS[layers[i].kind](at)
        except SourceError as err:  # encoders know the field, the layer knows where
            for diagnostic in err.diagnostics:
                diagnostic.span = diagnostic.span or layers[i].span
            raise
    return payload


@dataclass
class Encoding:
    """What an encoder sees: its fields, the bytes after it, and what it
    needs of its neighbours."""

    fields: dict[str, object]
    payload: bytes
    after: str | None  # kind of the next layer
    after_fields: dict[str, object]
    ip: tuple[str, bytes, bytes] | None  # enclosing IP layer: kind, src, dst
    eth_src: bytes | None  # nearest outer Ethernet source address


# --- field values ---------------------------------------------------------


def _fields(layer: ir.Layer) -> dict[str, object]:
    """The layer's fields parsed by kind; absent fields take the table
    default (None = derived). check/packets.check_layer validated them."""
    spec = tables.PACKET_LAYERS.get(layer.kind)
    assert spec is not None and set(layer.fields) <= set(spec.fields), "the checker knows every layer and field"
    out: dict[str, object] = {}
    for name, field in spec.fields.items():
        raw = layer.fields.get(name, field.default)
        out[name] = None if raw is None else _parse(field.kind, raw, layer, name)
    return out


def _parse(kind: str, raw: object, layer: ir.Layer, name: str) -> object:
    if kind == "int":
        bits = tables.LAYER_FIELD_BITS.get((layer.kind, name), 32)
        assert isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 1 << bits, "checked: fits its bits"
        return raw
    if kind == "mac":
        return bytes(int(p, 16) for p in str(raw).split(":"))
    if kind == "ipv4":
        return ipaddress.IPv4Address(str(raw)).packed
    if kind == "ipv6":
        return ipaddress.IPv6Address(str(raw)).packed
    if kind == "hex":
        return _hex(str(raw))
    assert kind == "flags", f"a field kind without a parser: {kind}"
    names = [raw] if isinstance(raw, str) else list(raw)  # type: ignore[arg-type]
    return sum({tables.LAYER_FLAG_BITS[layer.kind][n] for n in names})


def _hex(text: str) -> bytes:
    """Hex byte pairs (white space between), as the checker let them through."""
    return bytes.fromhex("".join(text.split()))


def _int(value: int, bits: int, what: str) -> int:
    """A derived value (a length) that must still fit its field."""
    if not 0 <= value < 1 << bits:
        raise SourceError(f"{what} = {value} does not fit in {bits} bits")
    return value


# --- checksums --------------------------------------------------------------


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): ones' complement of the ones'
    complement sum of 16-bit big-endian words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(ip: tuple[str, bytes, bytes] | None, protocol: int, length: int) -> bytes:
    if ip is None:
        return b""
    kind, src, dst = ip
    if kind == "ipv4":
        return src + dst + struct.pack("!BBH", 0, protocol, length)
    return src + dst + struct.pack("!IxxxB", length, protocol)


# --- encoders: one per layer kind --------------------------------------------

Encoder = Callable[[Encoding], bytes]


def _selector(value: object, table: dict[str, int], after: str | None, default: int) -> int:
    """The given value, else what the next layer implies, else `default`."""
    if value is not None:
        return value  # type: ignore[return-value]
    return table.get(after or "", default)


def _eth(at: Encoding) -> bytes:
    f = at.fields
    ethertype = f["type"] if f["type"] is not None or at.after != "vlan" else at.after_fields["tpid"]
    ethertype = _selector(ethertype, ETHERTYPE, at.after, 0x88B5)  # 0x88B5: local experimental
    return f["dst"] + f["src"] + struct.pack("!H", ethertype) + at.payload


def _vlan(at: Encoding) -> bytes:
    f = at.fields
    tci = (f["pcp"] << 13) | f["id"]
    inner = f["type"] if f["type"] is not None or at.after != "vlan" else at.after_fields["tpid"]
    return struct.pack("!HH", tci, _selector(inner, ETHERTYPE, at.after, 0x88B5)) + at.payload


def _ipv4(at: Encoding) -> bytes:
    f, payload = at.fields, at.payload
    options = f["options"]
    assert isinstance(options, bytes)
    if len(options) % 4 or len(options) > 40:
        raise SourceError(f"ipv4 :options must be a multiple of 4 bytes, at most 40 (got {len(options)})")
    ihl = f["ihl"] if f["ihl"] is not None else 5 + len(options) // 4
    total = f["total-len"] if f["total-len"] is not None else 20 + len(options) + len(payload)
    flags_frag = f["flags"] | f["frag-offset"]
    protocol = _selector(f["protocol"], IP_PROTOCOL, at.after, 255)
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, f["tos"], _int(total, 16, "ipv4 :total-len"), f["id"], flags_frag,
        f["ttl"], protocol, 0, f["src"], f["dst"],
    ) + options
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def _ipv6(at: Encoding) -> bytes:
    f, payload = at.fields, at.payload
    length = f["payload-len"] if f["payload-len"] is not None else len(payload)
    nxt = _selector(f["next-header"], IP_PROTOCOL, at.after, NO_NEXT_HEADER)
    return struct.pack(
        "!IHBB16s16s", 6 << 28, _int(length, 16, "ipv6 :payload-len"), nxt, f["hop-limit"], f["src"], f["dst"],
    ) + payload


def _next_header(at: Encoding) -> int:
    return _selector(at.fields["next-header"], IP_PROTOCOL, at.after, NO_NEXT_HEADER)


def _ipv6_options(at: Encoding) -> bytes:
    """Hop-by-hop and destination options: next header, length in 8-byte
    units past the first 8, the options padded with Pad1 or PadN (RFC 8200 4.2)."""
    options = at.fields["options"]
    assert isinstance(options, bytes)
    pad = -(2 + len(options)) % 8
    options += b"\0" if pad == 1 else bytes([1, pad - 2]) + bytes(pad - 2) if pad else b""
    units = _int((2 + len(options)) // 8 - 1, 8, "ipv6 options header length (8-byte units past the first 8)")
    return bytes([_next_header(at), units]) + options + at.payload


def _ipv6_routing(at: Encoding) -> bytes:
    f = at.fields
    data = f["data"]
    assert isinstance(data, bytes)
    if (4 + len(data)) % 8:
        raise SourceError(f"ipv6-routing :data must make the header a multiple of 8 bytes (4 + {len(data)})")
    units = _int((4 + len(data)) // 8 - 1, 8, "ipv6-routing length (8-byte units past the first 8)")
    return bytes([_next_header(at), units, f["type"], f["segments-left"]]) + data + at.payload


def _ipv6_fragment(at: Encoding) -> bytes:
    f = at.fields
    return struct.pack("!BBHI", _next_header(at), 0, (f["frag-offset"] << 3) | f["flags"], f["id"]) + at.payload


def _tcp(at: Encoding) -> bytes:
    f = at.fields
    offset = f["data-offset"] if f["data-offset"] is not None else 5
    header = struct.pack(
        "!HHIIBBHHH", f["sport"], f["dport"], f["seq"], f["ack-seq"], offset << 4, f["flags"], f["window"], 0, 0,
    )
    segment = header + at.payload
    csum = checksum(_pseudo_header(at.ip, tables.IPPROTO_TCP, len(segment)) + segment)
    return segment[:16] + struct.pack("!H", csum) + segment[18:]


def _udp(at: Encoding) -> bytes:
    f = at.fields
    length = f["len"] if f["len"] is not None else 8 + len(at.payload)
    datagram = struct.pack("!HHHH", f["sport"], f["dport"], _int(length, 16, "udp :len"), 0) + at.payload
    csum = checksum(_pseudo_header(at.ip, tables.IPPROTO_UDP, len(datagram)) + datagram) or 0xFFFF
    return datagram[:6] + struct.pack("!H", csum) + datagram[8:]


def _icmp_message(at: Encoding, protocol: int | None) -> bytes:
    """ICMP (checksum over the message) or ICMPv6 (`protocol`: with the
    IPv6 pseudo-header)."""
    f = at.fields
    message = struct.pack("!BBHI", f["type"], f["code"], 0, 0)
    message += at.payload
    pseudo = _pseudo_header(at.ip, protocol, len(message)) if protocol else b""
    return message[:2] + struct.pack("!H", checksum(pseudo + message)) + message[4:]


# Plain functions, not closures built at import: bench/mutation.py can only change code that runs after import.
def _icmp(at: Encoding) -> bytes:
    return _icmp_message(at, None)


def _icmpv6(at: Encoding) -> bytes:
    return _icmp_message(at, tables.IPPROTO_ICMPV6)


def _arp(at: Encoding) -> bytes:
    f = at.fields
    return struct.pack(
        "!HHBBH6s4s6s4s", 1, tables.ETH_P_IP, 6, 4, f["op"],
        at.eth_src or bytes(6), f["sender-ip"], bytes(6), f["target-ip"],
    ) + at.payload


def _raw(at: Encoding) -> bytes:
    return at.fields["hex"] + at.payload


ENCODERS: dict[str, Encoder] = {
    "eth": _eth, "vlan": _vlan, "ipv4": _ipv4, "ipv6": _ipv6, "tcp": _tcp, "udp": _udp,
    "icmp": _icmp, "icmpv6": _icmpv6, "arp": _arp, "raw": _raw, "ipv6-hop-by-hop": _ipv6_options,
    "ipv6-dest-opts": _ipv6_options, "ipv6-routing": _ipv6_routing, "ipv6-fragment": _ipv6_fragment,
}

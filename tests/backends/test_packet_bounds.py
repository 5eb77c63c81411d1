"""Every packet access the C backend generates is provably in bounds under
every compiler of the matrix (tests/backends/compilers.py), for every header,
VLAN tag count, IPv4 option length and L4 header of tables.HEADERS.

For each packet kind, one object holds, per reachable header, a program that
parses it and stores a weighted sum of all its fields in an array map, and
one program per field that reads only that field (a lone read is the shape
clang 22 broke: it recomputed the IPv4-options L4 pointer after its check).
Each matrix cell compiles the object, the host kernel's verifier must accept
every program, and BPF_PROG_TEST_RUN on packets built here (independently of
tatara_build.packets) must find the header exactly where it is, with every
field read right, and must not find it in a packet cut one byte short, under
too many VLAN tags, behind another protocol or in a non-first IPv4 fragment."""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

import pytest

from tatara_build import check, frontend, tables
from tatara_build.backends import emit

from . import hostbpf
from .compilers import Cell, cells, require

# Per kind: the action returned when the header is found, and when it is not.
VERDICTS = {"xdp": ("xdp-drop", "xdp-pass"), "tc": ("tc-act-shot", "tc-act-ok"), "cgroup-skb": ("deny", "allow"),
            "socket-filter": ("drop", "keep")}
ATTACH = {"xdp": ' :attach (:target "eth0")', "tc": ' :attach (:target "eth0" :direction "ingress")',
          "cgroup-skb": ' :attach (:target "ingress")', "socket-filter": ""}
SKB_KINDS = {"tc", "cgroup-skb", "socket-filter"}  # test-run builds an skb (and checks its L3 header)
KINDS = [k for k, spec in tables.PROGRAM_KINDS.items() if spec.packet and spec.test_run]
U64 = (1 << 64) - 1
ETH_HLEN = 14  # BPF_PROG_TEST_RUN takes no shorter packet


def reachable(kind: str) -> list[str]:
    packet = tables.PROGRAM_KINDS[kind].packet
    return [h for h in tables.HEADERS if packet == "l2" or h not in tables.L2_HEADERS]


@dataclass(frozen=True)
class Probe:
    """One program: parse `header`, store a weighted sum of `fields` (all of
    them, or one) at out[index]."""

    kind: str
    header: str
    fields: tuple[str, ...]
    index: int

    @property
    def lone(self) -> bool:
        return len(self.fields) == 1 and len(tables.HEADERS[self.header].fields) > 1

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.header}" + (f"-{self.fields[0]}" if self.lone else "")

    def source(self) -> str:
        found, missing = VERDICTS[self.kind]
        terms = [f"(* (u64 (field h :{f})) {weight})" for weight, f in enumerate(self.fields, start=1)]
        total = f"(+ {' '.join(terms)})" if len(terms) > 1 else terms[0]
        return "\n".join([
            f'(defbpf-program {self.name} :kind :{self.kind}{ATTACH[self.kind]} :license "GPL" :uses-maps (out))',
            f"(bpf-fn {self.name} (ctx)",
            f"  (if-let (h (header ctx :{self.header}))",
            f"    (begin (map-set out {self.index} {total}) (return :{found}))",
            f"    (return :{missing})))"])

    def expected(self, raw: bytes) -> int:
        total = 0
        for weight, name in enumerate(self.fields, start=1):
            spec = tables.HEADERS[self.header].fields[name]
            value = int.from_bytes(raw[spec.offset:spec.offset + spec.size], "big") >> spec.shift
            if spec.mask is not None:
                value &= spec.mask
            if spec.type == "bool":
                value = int(value != 0)
            total = (total + value * weight) & U64
        return total


def probes(kind: str) -> list[Probe]:
    """Per header: all fields at once, then each field alone."""
    out: list[Probe] = []
    for header in reachable(kind):
        fields = tuple(tables.HEADERS[header].fields)
        for chosen in [fields] + ([(f,) for f in fields] if len(fields) > 1 else []):
            out.append(Probe(kind, header, chosen, len(out)))
    return out


def source(kind: str) -> str:
    every = probes(kind)
    head = f"(defbpf-map out :kind :array :key u32 :value u64 :max-entries {len(every)})"
    return "\n".join([head, *(p.source() for p in every)]) + "\n"


# --- packets, built by hand ----------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    packet: bytes
    at: int | None  # where the header starts in what the program sees; None: not found


# An skb test run pulls the IP header its Ethernet type announces (EINVAL
# when the packet is shorter): the shortest packet it takes, per ethertype.
SKB_MIN = {tables.ETH_P_IP: ETH_HLEN + 20, tables.ETH_P_IPV6: ETH_HLEN + 40}


def runnable(kind: str, packet: bytes) -> bool:
    """BPF_PROG_TEST_RUN accepts this packet for this kind."""
    if len(packet) < ETH_HLEN:
        return False
    if kind not in SKB_KINDS:
        return True
    return len(packet) >= SKB_MIN.get(int.from_bytes(packet[12:14], "big"), ETH_HLEN)


def _bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n))


def _ipv4(rng, options: int, proto: int, fragment: bool = False) -> bytes:
    head = bytearray(_bytes(rng, 20 + options))
    head[0] = 0x40 | (5 + options // 4)
    frag = rng.randrange(1, 0x2000) if fragment else 0
    struct.pack_into("!H", head, 6, (rng.randrange(8) << 13) | frag)  # random DF/MF bits, offset as asked
    head[9] = proto
    return bytes(head)


def _ipv6(rng, proto: int) -> bytes:
    head = bytearray(_bytes(rng, 40))
    head[0] = 0x60 | (head[0] & 0xF)
    head[6] = proto
    return bytes(head)


HOP_BY_HOP, ROUTING, FRAGMENT, DESTINATION = 0, 43, 44, 60


def _ext(rng, kind: int, nh: int, units: int = 0, offset: int = 0) -> bytes:
    """One IPv6 extension header announcing `nh`: (units + 1) * 8 bytes, or a
    fragment header (8 bytes, `offset` in 8-byte units, its reserved byte and
    M flag random: both are ignored)."""
    if kind == FRAGMENT:
        return struct.pack("!BBH", nh, rng.randrange(256), (offset << 3) | rng.randrange(2)) + _bytes(rng, 4)
    return bytes([nh, units]) + _bytes(rng, 8 * (units + 1) - 2)


def _chain(rng, kinds: list[int], proto: int, offsets: dict[int, int] | None = None) -> tuple[int, bytes]:
    """The IPv6 next header and the extension headers of `kinds`, in order,
    the last announcing `proto`; generic ones of random length."""
    out, nexts = b"", kinds[1:] + [proto]
    for i, (kind, nh) in enumerate(zip(kinds, nexts)):
        out += _ext(rng, kind, nh, rng.randrange(3), (offsets or {}).get(i, 0))
    return (kinds[0] if kinds else proto), out


def ipv6_extension_cases(rng, kind: str, prefix: str, l2: bytes, proto: int, min_len: int, skip: int) -> list[Case]:
    """L4 behind extension headers: found behind each kind, a chain of the
    bound, a first fragment; not behind a non-first fragment, a chain past
    the bound or past MAX_IPV6_EXTENSION_END, or a truncated one."""
    n = tables.MAX_IPV6_EXTENSIONS
    long_chain = ([HOP_BY_HOP, DESTINATION, ROUTING, FRAGMENT] + [DESTINATION] * n)[:n]
    found = {"hop-by-hop": [HOP_BY_HOP], "routing": [ROUTING], "destination": [DESTINATION],
             "first-fragment": [FRAGMENT], "two": [HOP_BY_HOP, ROUTING], "bound": long_chain}
    out = []
    for name, kinds in found.items():
        nh, chain = _chain(rng, kinds, proto)
        before = l2 + _ipv6(rng, nh) + chain
        out.append(Case(f"{prefix}-ext-{name}", before + _bytes(rng, min_len + 8), len(before) - skip))
        out.append(Case(f"{prefix}-ext-{name}-short", before + _bytes(rng, min_len - 1), None))
    nh, chain = _chain(rng, long_chain + [DESTINATION], proto)
    out.append(Case(f"{prefix}-ext-past-bound", l2 + _ipv6(rng, nh) + chain + _bytes(rng, 40), None))
    nh, chain = _chain(rng, [HOP_BY_HOP, FRAGMENT], proto, {1: rng.randrange(1, 0x2000)})
    out.append(Case(f"{prefix}-ext-later-fragment", l2 + _ipv6(rng, nh) + chain + _bytes(rng, 40), None))
    huge = _ext(rng, DESTINATION, proto, 255)  # L4 would start 2088 bytes after IPv6's start
    out.append(Case(f"{prefix}-ext-past-end", l2 + _ipv6(rng, DESTINATION) + huge + _bytes(rng, 40), None))
    nh, chain = _chain(rng, [HOP_BY_HOP, ROUTING], proto)
    out.append(Case(f"{prefix}-ext-truncated", l2 + _ipv6(rng, nh) + chain[:-3], None))
    return [c for c in out if runnable(kind, c.packet)]


TAGS = {0: [], 1: [tables.ETH_P_8021Q], 2: [tables.ETH_P_8021AD, tables.ETH_P_8021Q],
        3: [tables.ETH_P_8021AD, tables.ETH_P_8021Q, tables.ETH_P_8021Q]}
OPTIONS = (0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40)  # IHL 5..15


def options_for(tags: int) -> tuple[int, ...]:
    """Every IHL untagged; the extremes under tags (the verifier proves the
    rest; these runs check the reads land where the verifier was told)."""
    return OPTIONS if tags == 0 else (OPTIONS[0], OPTIONS[-1])
L3 = ("ipv4", "ipv6")
L4_PROTO = {h: p for h, spec in tables.HEADERS.items() for outer, p in spec.via if outer in L3}


def _l2(rng, tags: int, ethertype: int) -> bytes:
    """Ethernet + VLAN tags; the last selector is `ethertype`."""
    types = TAGS[tags] + [ethertype]
    out = _bytes(rng, 12) + struct.pack("!H", types[0])
    for inner in types[1:]:
        out += _bytes(rng, 2) + struct.pack("!H", inner)
    return out


def cases(kind: str, header: str) -> list[Case]:
    """Packets that carry the header (and the same cut one byte short), and
    packets that must not yield it."""
    rng = random.Random(f"{kind}-{header}")
    l2_kind = tables.PROGRAM_KINDS[kind].packet == "l2"
    skip = 0 if l2_kind else ETH_HLEN  # an l3 kind's program starts after Ethernet
    tag_counts = (0, 1, 2) if l2_kind else (0,)
    spec = tables.HEADERS[header]
    out: list[Case] = []

    def add(name: str, before: bytes, tail_len: int, found: bool = True) -> None:
        body = _bytes(rng, tail_len)
        if header == "ipv4" and found:
            body = _ipv4(rng, tail_len - 20, 17)  # tail_len = its own IHL * 4
        if header == "ipv6":
            body = _ipv6(rng, 59)
        packet = before + body + _bytes(rng, 8)
        out.append(Case(name, packet, len(before) - skip if found else None))
        short = before + body[:spec.min_len - 1]
        if found and runnable(kind, short):  # one byte short of its minimum: not found
            out.append(Case(f"{name}-short", short, None))

    if header == "eth":
        add("eth", b"", 14)
    elif header == "vlan":
        for tpid in (tables.ETH_P_8021Q, tables.ETH_P_8021AD):
            add(f"tpid{tpid:x}", _bytes(rng, 12) + struct.pack("!H", tpid), 4)
        out.append(Case("untagged", _l2(rng, 0, tables.ETH_P_IP) + _ipv4(rng, 0, 17), None))
    elif header == "ipv4":
        for tags in tag_counts:
            for options in options_for(tags):
                add(f"tags{tags}-ihl{5 + options // 4}", _l2(rng, tags, tables.ETH_P_IP), 20 + options)
    elif header == "ipv6":
        for tags in tag_counts:
            add(f"tags{tags}", _l2(rng, tags, tables.ETH_P_IPV6), 40)
    else:
        for outer, proto in spec.via:
            for tags in tag_counts:
                if outer == "ipv4":
                    for options in options_for(tags):
                        add(f"{outer}-tags{tags}-ihl{5 + options // 4}",
                            _l2(rng, tags, tables.ETH_P_IP) + _ipv4(rng, options, proto), spec.min_len)
                    out.append(Case(f"{outer}-tags{tags}-fragment", _l2(rng, tags, tables.ETH_P_IP)
                                    + _ipv4(rng, 0, proto, fragment=True) + _bytes(rng, 40), None))
                else:
                    add(f"{outer}-tags{tags}", _l2(rng, tags, tables.ETH_P_IPV6) + _ipv6(rng, proto), spec.min_len)
                    out += ipv6_extension_cases(rng, kind, f"{outer}-tags{tags}", _l2(rng, tags, tables.ETH_P_IPV6), proto, spec.min_len,
                                                skip)
            other = next(p for h, p in L4_PROTO.items() if p != proto and h != header)
            l3 = _ipv4(rng, 0, other) if outer == "ipv4" else _ipv6(rng, other)
            ethertype = tables.ETH_P_IP if outer == "ipv4" else tables.ETH_P_IPV6
            out.append(Case(f"{outer}-other-protocol", _l2(rng, 0, ethertype) + l3 + _bytes(rng, 40), None))
    if header in L3:  # the other IP version is not this header
        other = _ipv6(rng, 17) if header == "ipv4" else _ipv4(rng, 0, 17)
        ethertype = tables.ETH_P_IPV6 if header == "ipv4" else tables.ETH_P_IP
        out.append(Case("other-version", _l2(rng, 0, ethertype) + other + _bytes(rng, 8), None))
    if l2_kind and header not in tables.L2_HEADERS:  # beyond MAX_VLAN_TAGS the parser gives up
        ethertype = tables.ETH_P_IPV6 if header in ("ipv6", "icmpv6") else tables.ETH_P_IP
        l3 = _ipv6(rng, L4_PROTO.get(header, 59)) if ethertype == tables.ETH_P_IPV6 else \
            _ipv4(rng, 0, L4_PROTO.get(header, 17))
        out.append(Case("tags3", _l2(rng, 3, ethertype) + l3 + _bytes(rng, 40), None))
    return out


# --- the test --------------------------------------------------------------------

HOST = hostbpf.available()


@pytest.mark.skipif(HOST is not None, reason=str(HOST))
@pytest.mark.parametrize("cell", cells(), ids=lambda c: c.id)
@pytest.mark.parametrize("kind", KINDS)
def test_every_header_in_bounds_and_read_right(kind, cell: Cell, tmp_path):
    require(cell)
    (tmp_path / f"bounds-{kind}.tlisp").write_text(source(kind))
    module = check.check(frontend.load(tmp_path / f"bounds-{kind}.tlisp"))
    [c_file] = emit(module, "c", tmp_path / "src")
    obj = cell.compile(c_file, tmp_path / f"bounds-{kind}.o")
    found, missing = (tables.PROGRAM_KINDS[kind].actions[a].value & 0xFFFFFFFF for a in VERDICTS[kind])
    skip = 0 if tables.PROGRAM_KINDS[kind].packet == "l2" else ETH_HLEN
    failures = []
    with hostbpf.loaded(obj) as (root, insns):
        assert len(insns) == len(probes(kind)), "every program verified"
        for probe in probes(kind):
            every = cases(kind, probe.header)
            if probe.lone:  # one field alone: one packet that has it
                every = [next(c for c in every if c.at is not None)]
            for case in every:
                where = f"{probe.name}/{case.name}"
                got = hostbpf.run(root, probe.name.replace("-", "_"), case.packet)
                if case.at is None:
                    if got != missing:
                        failures.append(f"{where}: found a header that is not there ({got})")
                elif got != found:
                    failures.append(f"{where}: header not found ({got})")
                else:
                    want = probe.expected(case.packet[skip + case.at:])
                    value = hostbpf.map_sum(root, "out", probe.index.to_bytes(4, "little"))
                    if value != want:
                        failures.append(f"{where}: read {value:#x}, expected {want:#x}")
    assert not failures, f"{cell.id}:\n" + "\n".join(failures)


def test_cases_cover_every_header_tag_count_and_ihl():
    """The packets above really exercise what the docstring promises."""
    for kind in KINDS:
        for header in reachable(kind):
            names = [c.name for c in cases(kind, header)]
            assert any(c.at is not None for c in cases(kind, header)), (kind, header)
            assert header == "eth" or any(c.at is None for c in cases(kind, header)), (kind, header)
            if header in ("ipv4", "tcp", "udp", "icmp") and tables.PROGRAM_KINDS[kind].packet == "l2":
                assert {f"ihl{n}" for n in range(5, 16)} <= {part for n in names for part in n.split("-")}
                assert any("tags2" in n for n in names)
            if "ipv6" in dict(tables.HEADERS[header].via):
                ext = {c.name: c.at for c in cases(kind, header) if "-ext-" in c.name}
                assert ext["ipv6-tags0-ext-bound"] is not None and ext["ipv6-tags0-ext-past-bound"] is None
        assert {p.header for p in probes(kind) if not p.lone} == set(reachable(kind))

"""Header writes on the host kernel: one XDP and one tc program write every
writable field (tables.HEADERS) when a map says so; hypothesis draws
packets (VLAN or not, IPv4 with options or IPv6, TCP/UDP/ICMP/ICMPv6,
payloads, UDP without checksum) and which fields get which values. After
BPF_PROG_TEST_RUN (data_out) the fields hold the values, no other byte
changed but the checksums, and every IPv4/TCP/UDP/ICMP checksum verifies,
in both kinds (xdp: RFC 1624 in the program; tc: the kernel's csum
helpers). The C backend builds them; the aya spelling is golden-tested."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tatara_build import ir, packets, tables
from tatara_build.backends import emit

from . import hostbpf
from .compilers import cells, require
from .helpers import load

HOST = hostbpf.available()
pytestmark = pytest.mark.skipif(HOST is not None, reason=str(HOST))

WRITABLE = [(h, f) for h, spec in tables.HEADERS.items() for f, fs in spec.fields.items() if fs.writable]
L4 = {"tcp", "udp", "icmp", "icmpv6"}


def body(ret: str) -> str:
    """For each writable field i: when w[i] != 0, write w[i] - 1 there."""
    out = []
    for header in dict.fromkeys(h for h, _ in WRITABLE):
        writes = []
        for i, (h, f) in enumerate(WRITABLE):
            if h != header:
                continue
            spec = tables.HEADERS[h].fields[f]
            value = "(!= (- v 1) 0)" if spec.type == "bool" else f"(cast {spec.type} (- v 1))"
            writes.append(f"(let ((v (map-get w {i}))) (if (!= v 0) (set-field! x :{f} {value})))")
        out.append(f"(if-let (x (header ctx :{header})) (begin {' '.join(writes)}))")
    return " ".join(out) + f" (return :{ret})"


SOURCE = f"""
(defbpf-map w :kind :array :key u32 :value u64 :max-entries {len(WRITABLE)})
(defbpf-program wx :kind :xdp :attach (:target "eth0") :license "GPL" :uses-maps (w))
(bpf-fn wx (ctx) {body("xdp-pass")})
(defbpf-program wt :kind :tc :attach (:target "eth0") :license "GPL" :uses-maps (w))
(bpf-fn wt (ctx) {body("tc-act-ok")})
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("writes")
    (tmp / "writes.tlisp").write_text(SOURCE)
    module = load(tmp / "writes.tlisp")
    [c_file] = emit(module, "c", tmp / "out")
    cell = cells()[0]
    require(cell)
    obj = cell.compile(c_file, tmp / "out" / "writes.o")
    with hostbpf.loaded(obj) as (root, insns):
        yield root, insns


def set_writes(root: Path, writes: dict[int, int]) -> None:
    lines = [f"map update pinned {root}/m/w key {' '.join(str(b) for b in struct.pack('<I', i))} "
             f"value {' '.join(str(b) for b in struct.pack('<Q', writes[i] + 1 if i in writes else 0))}\n"
             for i in range(len(WRITABLE))]
    batch = root.parent / f"{root.name}.batch"
    batch.write_text("".join(lines))
    try:
        done = subprocess.run(["bpftool", "batch", "file", str(batch)], capture_output=True, text=True, timeout=60)
    finally:
        batch.unlink()
    assert done.returncode == 0, done.stderr


def L(kind: str, **fields) -> ir.Layer:
    return ir.Layer(kind=kind, fields={k.replace("_", "-"): v for k, v in fields.items()})


u8, u16, u32 = (st.integers(0, (1 << b) - 1) for b in (8, 16, 32))
ipv4 = st.builds(lambda a: ".".join(str(b) for b in a.to_bytes(4, "big")), u32)
ipv6 = st.builds(lambda a: ":".join(f"{x:x}" for x in struct.unpack("!8H", a.to_bytes(16, "big"))),
                 st.integers(0, (1 << 128) - 1))


@st.composite
def packet(draw):
    """(layers, offsets of each header present, zeroed UDP checksum?)"""
    layers = [L("eth")]
    if draw(st.booleans()):
        layers.append(L("vlan", id=draw(st.integers(0, 4095)), pcp=draw(st.integers(0, 7))))
    v6 = draw(st.booleans())
    if v6:
        layers.append(L("ipv6", src=draw(ipv6), dst=draw(ipv6), hop_limit=draw(u8)))
        l4 = draw(st.sampled_from(["tcp", "udp", "icmpv6"]))
    else:
        options = draw(st.sampled_from(["", "01010101", "0101010101010101"]))
        layers.append(L("ipv4", src=draw(ipv4), dst=draw(ipv4), ttl=draw(u8), tos=draw(u8), id=draw(u16),
                        options=options, flags=draw(st.sampled_from([[], ["df"]]))))
        l4 = draw(st.sampled_from(["tcp", "udp", "icmp"]))
    if l4 in ("tcp", "udp"):
        layers.append(L(l4, sport=draw(u16), dport=draw(u16)))
    else:
        layers.append(L(l4, type=draw(u8), code=draw(u8)))
    payload = draw(st.binary(max_size=13))
    if payload:
        layers.append(L("raw", hex=payload.hex()))
    return layers, (not v6 and l4 == "udp" and draw(st.booleans()))


def offsets(layers: list[ir.Layer], pkt: bytes) -> dict[str, int]:
    at, out = 0, {}
    for layer in layers:
        name = layer.kind
        if name == "raw":
            break
        out[name] = at
        at += {"eth": 14, "vlan": 4, "ipv6": 40, "tcp": 20, "udp": 8, "icmp": 4, "icmpv6": 4}.get(name, 0) \
            or (pkt[at] & 0xF) * 4
    return out


def bits_of(at: int, spec: tables.HeaderFieldSpec) -> set[int]:
    """The packet bits a field covers (bit 0: the first byte's MSB)."""
    mask = (spec.mask if spec.mask is not None else (1 << spec.size * 8) - 1) << spec.shift
    width = spec.size * 8
    return {(at + spec.offset) * 8 + width - 1 - b for b in range(width) if mask >> b & 1}


def read(pkt: bytes, at: int, spec: tables.HeaderFieldSpec) -> int:
    v = int.from_bytes(pkt[at + spec.offset: at + spec.offset + spec.size], "big")
    return (v >> spec.shift) & spec.mask if spec.mask is not None else v


def checksums_ok(pkt: bytes, at: dict[str, int], udp_zero: bool) -> None:
    l3 = "ipv4" if "ipv4" in at else "ipv6"
    ip = at[l3]
    if l3 == "ipv4":
        ihl = (pkt[ip] & 0xF) * 4
        assert packets.checksum(pkt[ip: ip + ihl]) == 0, "IPv4 header checksum"
        src, dst, length = pkt[ip + 12: ip + 16], pkt[ip + 16: ip + 20], len(pkt) - ip - ihl
    else:
        src, dst, length = pkt[ip + 8: ip + 24], pkt[ip + 24: ip + 40], len(pkt) - ip - 40
    l4 = next(h for h in at if h in L4)
    seg = pkt[at[l4]:]
    if l4 == "udp" and udp_zero:
        assert seg[6:8] == b"\0\0", "a UDP checksum of 0 (none) stays 0"
        return
    if l4 == "icmp":
        assert packets.checksum(seg) == 0, "ICMP checksum"
        return
    proto = {"tcp": 6, "udp": 17, "icmpv6": 58}[l4]
    assert packets.checksum(packets._pseudo_header((l3, src, dst), proto, length) + seg) == 0, f"{l4} checksum"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data(), drawn=packet())
def test_random_writes_keep_fields_and_checksums(loaded, data, drawn):
    root, _ = loaded
    layers, udp_zero = drawn
    pkt = bytearray(packets.build(layers))
    at = offsets(layers, bytes(pkt))
    if udp_zero:
        pkt[at["udp"] + 6: at["udp"] + 8] = b"\0\0"
    present = [i for i, (h, _) in enumerate(WRITABLE) if h in at]
    drawn_fields = data.draw(st.lists(st.sampled_from(present), unique=True, max_size=6))
    chosen, taken = [], set()  # fields sharing bits (tcp :flags and :syn) would overwrite each other
    for i in drawn_fields:
        h, f = WRITABLE[i]
        if not bits_of(at[h], tables.HEADERS[h].fields[f]) & taken:
            chosen.append(i)
            taken |= bits_of(at[h], tables.HEADERS[h].fields[f])
    writes = {}
    for i in chosen:
        h, f = WRITABLE[i]
        spec = tables.HEADERS[h].fields[f]
        writes[i] = data.draw(st.integers(0, 1) if spec.type == "bool" else
                              st.integers(0, (1 << tables.field_bits(spec)) - 1 - (spec.size == 8)))
    set_writes(root, writes)
    changed = set()  # bytes a write or a checksum fix may change
    for i in writes:
        h, f = WRITABLE[i]
        spec = tables.HEADERS[h].fields[f]
        changed.update(range(at[h] + spec.offset, at[h] + spec.offset + spec.size))
    for h in at:
        if tables.HEADERS.get(h) and tables.HEADERS[h].checksum:
            off = at[h] + tables.HEADERS[h].fields[tables.HEADERS[h].checksum].offset
            changed.update((off, off + 1))
    outs = {}
    for prog in ("wx", "wt"):
        ret, out = hostbpf.run_out(root, prog, bytes(pkt))
        assert ret == (2 if prog == "wx" else 0)
        assert len(out) == len(pkt)
        for i, value in writes.items():
            h, f = WRITABLE[i]
            assert read(out, at[h], tables.HEADERS[h].fields[f]) == value, f"{prog}: {h} :{f}"
        assert [i for i in range(len(pkt)) if out[i] != pkt[i] and i not in changed] == [], prog
        checksums_ok(out, at, udp_zero)
        outs[prog] = out
    # the two ways of fixing checksums agree up to ones' complement's two zeros
    assert [i for i in range(len(pkt)) if outs["wx"][i] != outs["wt"][i] and outs["wx"][i] not in (0, 0xFF)] == []


def test_verified_instructions_stay_reasonable(loaded):
    _, insns = loaded
    assert all(n < 200_000 for n in insns), insns

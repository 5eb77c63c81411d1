"""The aya dialect's XDP header writes (RFC 1624 checksums in the program)
and payload loads under the LLVM of the pinned toolchain (22), without
aya's crates: src/main.rs is exactly what the dialect renders, with a
stand-in for the few aya items an XDP program without maps uses (its
context, the action constants, the program attribute). Debian's rustc-web
and our LLVM link driver build it; the host verifier must accept it and
BPF_PROG_TEST_RUN must leave the packets the C backend leaves
(tests/backends/test_packet_writes.py checks those byte for byte)."""

from __future__ import annotations

import shutil

import pytest

from tatara_build import check, frontend, ir, packets
from tatara_build.backends.aya import AyaGenerator
from tatara_build.compile import BuildOptions, compile_generated

from . import hostbpf
from .test_aya_parsers import NOSTD_CRATE, rust_or_skip

SOURCE = """
(defbpf-program rw :kind :xdp :attach (:target "eth0") :license "GPL")
(bpf-fn rw (ctx)
  (if-let (ip (header ctx :ipv4))
    (begin
      (set-field! ip :ttl (- (field ip :ttl) 1))
      (set-field! ip :df #t)
      (set-field! ip :dst 0x0a000063)))
  (if-let (ip6 (header ctx :ipv6))
    (set-field! ip6 :src-lo (u64 0x1234)))
  (if-let (t (header ctx :tcp))
    (begin
      (set-field! t :dst-port 8080)
      (set-field! t :syn #f)
      (if-let (w (load t 0 u32))
        (if (= w 0x47455420) (return :xdp-drop)))))
  (if-let (u (header ctx :udp))
    (set-field! u :src-port 5353))
  (return :xdp-pass))
"""
STAND_IN = """
mod aya_ebpf {
    pub mod bindings {
        pub mod xdp_action {
            pub const XDP_DROP: u32 = 1;
            pub const XDP_PASS: u32 = 2;
        }
    }
    pub mod programs {
        #[repr(C)]
        pub struct XdpMd {
            pub data: u32,
            pub data_end: u32,
        }
        pub struct XdpContext(pub *const XdpMd);
        impl XdpContext {
            #[inline(always)]
            pub fn data(&self) -> usize {
                unsafe { (*self.0).data as usize }
            }
            #[inline(always)]
            pub fn data_end(&self) -> usize {
                unsafe { (*self.0).data_end as usize }
            }
        }
    }
}

#[no_mangle]
#[link_section = "xdp"]
pub extern "C" fn rw_entry(ctx: *const aya_ebpf::programs::XdpMd) -> u32 {
    rw(aya_ebpf::programs::XdpContext(ctx))
}
"""


def L(kind, **fields):
    return ir.Layer(kind=kind, fields={k.replace("_", "-"): v for k, v in fields.items()})


PACKETS = [
    [L("eth"), L("ipv4", ttl=64), L("tcp", dport=80, flags=["syn"])],
    [L("eth"), L("ipv4", ttl=9, options="01010101"), L("tcp", dport=80), L("raw", hex="474554202f")],
    [L("eth"), L("vlan"), L("ipv4"), L("udp", dport=53), L("raw", hex="abcdef")],
    [L("eth"), L("ipv6"), L("tcp", dport=443), L("raw", hex="0102030405")],
    [L("eth"), L("ipv6"), L("udp", dport=53)],
]


@pytest.mark.skipif(hostbpf.available() is not None, reason=str(hostbpf.available()))
def test_aya_writes_and_loads_match_the_c_backend(tmp_path, monkeypatch):
    rust_or_skip()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "rw.tlisp").write_text(SOURCE)
    module = check.check(frontend.load(tmp_path / "rw.tlisp"))
    main = AyaGenerator(module).files()["src/main.rs"]
    main = main.replace("#[aya_ebpf::macros::xdp]\n", "") + STAND_IN
    crate = tmp_path / "crate"
    shutil.copytree(NOSTD_CRATE, crate)
    (crate / "src" / "main.rs").write_text(main)
    compile_generated(crate, "nostd-xdp", tmp_path / "out", BuildOptions(linker="llvm", use_cache=False, cpu="v3"))

    from tatara_build.backends import emit
    from .compilers import cells

    [c_file] = emit(module, "c", tmp_path / "c")
    c_obj = cells()[0].compile(c_file, tmp_path / "c" / "rw.o")
    results = {}
    for name, obj, prog in (("aya", tmp_path / "out" / "nostd-xdp.o", "rw_entry"), ("c", c_obj, "rw")):
        with hostbpf.loaded(obj) as (root, insns):
            assert insns
            results[name] = [hostbpf.run_out(root, prog, packets.build(layers)) for layers in PACKETS]
    assert results["aya"] == results["c"]
    assert [r for r, _ in results["c"]] == [2, 1, 2, 2, 2]
    first = results["c"][0][1]
    assert first[22] == 63 and first[30:34] == bytes([10, 0, 0, 99]) and first[36:38] == (8080).to_bytes(2, "big")
    assert packets.checksum(first[14:34]) == 0

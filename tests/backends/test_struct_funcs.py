"""defbpf-funcs taking and returning structs, built by both dialects (aya
under the pinned LLVM, without aya's crates: the stand-in of
test_aya_writes plus XDP_TX) and run on this host's kernel: the verifier
accepts both and they give the same actions, the ones worked out here."""

from __future__ import annotations

import shutil

import pytest

from tatara_build import check, frontend, ir, packets
from tatara_build.backends import emit
from tatara_build.backends.aya import AyaGenerator
from tatara_build.compile import BuildOptions, compile_generated

from . import hostbpf
from .compilers import cells
from .test_aya_parsers import NOSTD_CRATE, rust_or_skip
from .test_aya_writes import STAND_IN

SOURCE = """
(defbpf-struct pt (src u32) (port u16) (ttl u8))
(defbpf-func mk ((src u32) (port u16) (ttl u8)) :returns pt (make pt :src src :port port :ttl ttl))
(defbpf-func older ((a pt) (b pt)) :returns pt
  (if (< (field a :ttl) (field b :ttl)) (return a) (return b)))
(defbpf-func score ((p pt)) :returns u32 (+ (u32 (field p :port)) (u32 (field p :ttl))))
(defbpf-program sf :kind :xdp :attach (:target "eth0") :license "GPL")
(bpf-fn sf (ctx)
  (if-let (ip (header ctx :ipv4))
    (if-let (t (header ctx :tcp))
      (let ((o (older (mk (field ip :src) (field t :dst-port) (field ip :ttl))
                      (mk (field ip :dst) (field t :src-port) (u8 32)))))
        (if (= (score o) 1064) (return :xdp-drop))
        (if (= (field o :src) 0x0a000001) (return :xdp-tx)))))
  (return :xdp-pass))
"""


def L(kind, **fields):
    return ir.Layer(kind=kind, fields=fields)


PACKETS = [  # (packet, action): drop 1, pass 2, tx 3
    # the packet's own (ttl 16 < 32) is older: score 1048 + 16
    ([L("eth"), L("ipv4", src="10.0.0.9", ttl=16), L("tcp", dport=1048, sport=7)], 1),
    # the made-up one (ttl 32) is older: its src is the packet's dst
    ([L("eth"), L("ipv4", dst="10.0.0.1", ttl=64), L("tcp", dport=1048, sport=7)], 3),
    ([L("eth"), L("ipv4", dst="10.0.0.2", ttl=64), L("tcp", dport=1048, sport=7)], 2),
    ([L("eth"), L("ipv4", src="10.0.0.9", ttl=16), L("udp", dport=1048)], 2),
]


@pytest.mark.skipif(hostbpf.available() is not None, reason=str(hostbpf.available()))
def test_struct_parameters_and_results_run_the_same_in_both_dialects(tmp_path, monkeypatch):
    rust_or_skip()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "sf.tlisp").write_text(SOURCE)
    module = check.check(frontend.load(tmp_path / "sf.tlisp"))
    main = AyaGenerator(module).files()["src/main.rs"]
    stand_in = STAND_IN.replace("rw_entry", "sf_entry").replace("rw(", "sf(").replace(
        "pub const XDP_PASS: u32 = 2;", "pub const XDP_PASS: u32 = 2;\n            pub const XDP_TX: u32 = 3;")
    crate = tmp_path / "crate"
    shutil.copytree(NOSTD_CRATE, crate)
    (crate / "src" / "main.rs").write_text(main.replace("#[aya_ebpf::macros::xdp]\n", "") + stand_in)
    compile_generated(crate, "nostd-xdp", tmp_path / "out", BuildOptions(linker="llvm", use_cache=False, cpu="v3"))
    [c_file] = emit(module, "c", tmp_path / "c")
    c_obj = cells()[0].compile(c_file, tmp_path / "c" / "sf.o")
    for obj, prog in ((tmp_path / "out" / "nostd-xdp.o", "sf_entry"), (c_obj, "sf")):
        with hostbpf.loaded(obj) as (root, insns):
            assert insns
            got = [hostbpf.run_out(root, prog, packets.build(layers))[0] for layers, _ in PACKETS]
        assert got == [action for _, action in PACKETS], (prog, got)

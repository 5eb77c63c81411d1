"""Built by both dialects (aya under the pinned LLVM, without aya's crates:
the stand-in of test_aya_writes plus XDP_TX) and run on this host's kernel:
defbpf-funcs taking and returning structs give the same actions in both,
the ones worked out here; and the aya dialect's packet re-read after a
tail-call that falls through compiles and parses the packet afresh."""

from __future__ import annotations

import shutil

import pytest

from tatara_build import check, frontend, ir, packets
from tatara_build.backends import emit
from tatara_build.backends.aya import AyaGenerator
from tatara_build.compile import BuildOptions, compile_generated

from . import hostbpf
from .compilers import cells, require
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


TAIL_SOURCE = """
(defbpf-map jump :kind :prog-array :max-entries 4 :programs ((0 leaf)))
(defbpf-program td :kind :xdp :attach (:target "eth0") :license "GPL" :uses-maps (jump))
(defbpf-program leaf :kind :xdp :attach (:target "eth0") :license "GPL")
(bpf-fn leaf (ctx) (return :xdp-pass))
(bpf-fn td (ctx)
  (if-let (t (header ctx :tcp)) (tail-call ctx jump 0))
  (if-let (u (header ctx :udp)) (if (= (field u :dst-port) 53) (return :xdp-drop)))
  (return :xdp-tx))
"""
# A prog-array whose tail-call always falls through (no map to jump into):
# enough to compile the dialect's packet re-reads and run what follows them.
PROG_ARRAY = """
    pub mod btf_maps {
        pub struct ProgramArray<const N: u32>;
        impl<const N: u32> ProgramArray<N> {
            pub const fn new() -> Self {
                ProgramArray
            }
            pub unsafe fn tail_call<C>(&self, _ctx: &C, _index: u32) -> Result<(), i64> {
                Err(-1)
            }
        }
    }
"""


@pytest.mark.skipif(hostbpf.available() is not None, reason=str(hostbpf.available()))
def test_aya_reads_the_packet_again_after_a_tail_call(tmp_path, monkeypatch):
    rust_or_skip()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "td.tlisp").write_text(TAIL_SOURCE)
    module = check.check(frontend.load(tmp_path / "td.tlisp"))
    main = AyaGenerator(module).files()["src/main.rs"]
    assert "let mut __l3: Option<(usize, u16)>" in main and "__l3 = crate::__l3(__data, __data_end);" in main
    main = "\n".join(line for line in main.split("\n") if not line.startswith("#[aya_ebpf::macros::"))
    stand_in = STAND_IN.replace("rw_entry", "td_entry").replace("rw(", "td(").replace(
        "pub const XDP_PASS: u32 = 2;", "pub const XDP_PASS: u32 = 2;\n            pub const XDP_TX: u32 = 3;"
    ).replace("mod aya_ebpf {", "mod aya_ebpf {" + PROG_ARRAY, 1)
    crate = tmp_path / "crate"
    shutil.copytree(NOSTD_CRATE, crate)
    (crate / "src" / "main.rs").write_text(main + stand_in)
    compile_generated(crate, "nostd-xdp", tmp_path / "out", BuildOptions(linker="llvm", use_cache=False, cpu="v3"))
    with hostbpf.loaded(tmp_path / "out" / "nostd-xdp.o") as (root, insns):
        got = [hostbpf.run_out(root, "td_entry", packets.build(layers))[0] for layers in (
            [L("eth"), L("ipv4"), L("tcp", dport=80)], [L("eth"), L("ipv4"), L("udp", dport=53)],
            [L("eth"), L("ipv6"), L("udp", dport=53)], [L("eth"), L("ipv4"), L("udp", dport=54)])]
    assert got == [3, 1, 1, 3]  # tcp falls through to :xdp-tx; udp/53 dropped after the re-read


def test_a_function_no_program_calls_is_not_emitted_so_c_still_compiles(tmp_path):
    # C's -Wunused-function under -Werror refused the object (exit 3) for a
    # function the file declares but nothing calls
    source = SOURCE + "(defbpf-func spare ((p pt)) :returns u32 (score p))\n"
    (tmp_path / "sf.tlisp").write_text(source)
    module = check.check(frontend.load(tmp_path / "sf.tlisp"))
    [c_file] = emit(module, "c", tmp_path / "c")
    assert "spare" not in c_file.read_text() and "score(" in c_file.read_text()
    assert "fn spare" not in AyaGenerator(module).files()["src/main.rs"]
    cell = cells()[0]
    require(cell)
    assert cell.compile(c_file, tmp_path / "c" / "sf.o").exists()

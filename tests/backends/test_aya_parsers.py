"""The aya backend's header parsers under the LLVM of the pinned toolchain
(22), as far as this machine can check them without aya's crates.

The parser functions are spelled by the aya dialect itself (its
`parser_plans` + `parser`, exactly what `render` writes into src/main.rs)
and wrapped in a no_std harness that stands in for aya: one XDP entry per
probe of test_packet_bounds, reading the fields with the dialect's own
`spell_field`. Debian's rustc-web (LLVM 22, prebuilt BPF core) and our LLVM
link driver build it at -mcpu v2 and v3; the host verifier must accept every
program and the test-run must read every field where the packet has it.
What this cannot check: aya's own glue (its program macros, context types
and map wrappers) — that needs the crates from crates.io or a vendor dir
(tests/backends/test_host_examples.py, TATARA_VENDOR_DIR)."""

from __future__ import annotations

import shutil

import pytest

from tatara_build import check, frontend, tables
from tatara_build.backends.aya import PIN_MACRO, AyaGenerator
from tatara_build.backends.base import above_l2
from tatara_build.compile import BuildOptions, compile_generated, toolchain
from tatara_build.errors import ToolchainError

from . import hostbpf
from .helpers import ROOT
from .test_packet_bounds import ETH_HLEN, cases, probes, source

NOSTD_CRATE = ROOT / "tests" / "fixtures" / "nostd-xdp"
KIND = "xdp"  # the one packet kind whose context the harness can spell without aya
MISSING = 0xFFFFFFFF

HARNESS_HEAD = """#![no_std]
#![no_main]
#![feature(asm_experimental_arch)]
#![allow(unused_mut, unused_parens, unused_unsafe, unused_variables, dead_code)]

#[repr(C)]
pub struct XdpMd {
    data: u32,
    data_end: u32,
}
"""
HARNESS_TAIL = """
#[no_mangle]
#[link_section = "license"]
pub static LICENSE: [u8; 4] = *b"GPL\\0";

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
"""


def harness(tmp_path) -> str:
    """src/main.rs: the dialect's parsers + one entry per probe."""
    (tmp_path / "bounds.tlisp").write_text(source(KIND))
    module = check.check(frontend.load(tmp_path / "bounds.tlisp"))
    gen = AyaGenerator(module)
    gen.functions()  # records which parsers the programs need
    packet = tables.PROGRAM_KINDS[KIND].packet
    out = [HARNESS_HEAD, *PIN_MACRO]
    for name, steps in gen.parser_plans(packet):
        out += gen.parser(name, packet, steps) + [""]
    for probe in probes(KIND):
        spec = tables.HEADERS[probe.header]
        args = gen.l3_args() if above_l2(probe.header) else "__data, __data_end"
        sums = [f"        s = s.wrapping_add(({gen.spell_field('h', spec.fields[f])} as u64).wrapping_mul({w}));"
                for w, f in enumerate(probe.fields, start=1)]
        out += ["#[no_mangle]", '#[link_section = "xdp"]',
                f"pub extern \"C\" fn {probe.name.replace('-', '_')}(ctx: *const XdpMd) -> u32 {{",
                "    let __data: usize = unsafe { (*ctx).data } as usize;",
                "    let __data_end: usize = unsafe { (*ctx).data_end } as usize;"]
        if above_l2(probe.header):
            out.append("    " + gen.line_locate_l3(gen.l3_locator(packet)))
        out += [f"    if let Some(h) = {gen.parser_name(probe.header, packet)}({args}) {{",
                "        let mut s: u64 = 0;", *sums, "        return (s ^ (s >> 32)) as u32;", "    }",
                f"    {MISSING:#x}", "}", ""]
    return "\n".join(out) + HARNESS_TAIL


def rust_or_skip():
    try:
        rust = toolchain.find_rust()
        toolchain.find_llvm(rust)
    except ToolchainError as err:
        pytest.skip(f"no BPF-capable rustc + matching LLVM here: {err}")


HOST = hostbpf.available()


@pytest.mark.skipif(HOST is not None, reason=str(HOST))
@pytest.mark.parametrize("cpu", ["v2", "v3"])
def test_aya_parsers_verify_and_read_right_under_llvm_22(cpu, tmp_path, monkeypatch):
    rust_or_skip()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    crate = tmp_path / "crate"
    shutil.copytree(NOSTD_CRATE, crate)
    (crate / "src" / "main.rs").write_text(harness(tmp_path))
    manifest = compile_generated(crate, "nostd-xdp", tmp_path / "out", BuildOptions(linker="llvm", use_cache=False, cpu=cpu))
    assert manifest.toolchain.llvm_version.startswith("22.")
    failures = []
    with hostbpf.loaded(tmp_path / "out" / "nostd-xdp.o") as (root, insns):
        assert len(insns) == len(probes(KIND)), "every program verified"
        for probe in probes(KIND):
            every = cases(KIND, probe.header)
            if probe.lone:
                every = [next(c for c in every if c.at is not None)]
            for case in every:
                got = hostbpf.run(root, probe.name.replace("-", "_"), case.packet)
                if case.at is None:
                    want = MISSING
                else:
                    total = probe.expected(case.packet[case.at:])
                    want = (total ^ (total >> 32)) & 0xFFFFFFFF
                if got != want:
                    failures.append(f"{probe.name}/{case.name}: returned {got:#x}, expected {want:#x}")
    assert ETH_HLEN == 14 and not failures, "\n".join(failures)


CONSTS_SOURCE = """\
(defbpf-const limit u32 5)
(defbpf-const neg i16 -3)
(defbpf-const on bool #f)
(defbpf-func over ((x u32)) :returns bool (> x limit))
(defbpf-func classify ((x u32)) :returns u32
  (let ((r (u32 0)))
    (if (over x) (set! r (+ r 1)))
    (if on (set! r (+ r 2)))
    (if (< neg (i16 0)) (set! r (+ r 4)))
    r))
(defbpf-program p :kind :xdp :attach (:target "eth0"))
(bpf-fn p (ctx) (if (= (classify (u32 7)) 0) (return :xdp-drop)) (return :xdp-pass))  ; called: so emitted
(defbpf-test t :program p :consts ((limit 10) (neg 3) (on #t)) :cases ((a :packet ((eth)) :expect :xdp-pass)))
"""


@pytest.mark.skipif(HOST is not None, reason=str(HOST))
def test_aya_consts_and_functions_read_the_loaders_values_under_llvm_22(tmp_path, monkeypatch):
    """The aya dialect's defbpf-const (`#[no_mangle] static` read with
    read_volatile) and defbpf-func (`#[inline(always)] fn`) spellings, in
    the no_std harness: the statics land in .rodata under the names the
    manifest records, and a copy with the test's `:consts` written there
    (as the VM does) gives the loader's answer, not the defaults'."""
    from tatara_build.compile import describe
    from tatara_build.vm.cases import const_patches

    rust_or_skip()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "consts.tlisp").write_text(CONSTS_SOURCE)
    module = check.check(frontend.load(tmp_path / "consts.tlisp"))
    gen = AyaGenerator(module)
    out = [HARNESS_HEAD]
    for const in module.consts:
        out += gen.const_lines(const) + [""]
    for lines in gen.subroutines():
        out += lines + [""]
    out += ["#[no_mangle]", '#[link_section = "xdp"]', 'pub extern "C" fn probe(ctx: *const XdpMd) -> u32 {',
            "    classify(7u32)", "}", ""]
    crate = tmp_path / "crate"
    shutil.copytree(NOSTD_CRATE, crate)
    (crate / "src" / "main.rs").write_text("\n".join(out) + HARNESS_TAIL)
    compile_generated(crate, "nostd-xdp", tmp_path / "out", BuildOptions(linker="llvm", use_cache=False))
    obj = tmp_path / "out" / "nostd-xdp.o"
    consts = {c.name: c for c in describe(obj, module).consts}
    assert {c.symbol: c.section for c in consts.values()} == {"LIMIT": ".rodata", "NEG": ".rodata", "ON": ".rodata"}
    data = bytearray(obj.read_bytes())
    for offset, value in const_patches(bytes(data), consts, module.tests[0]):
        data[offset:offset + len(value)] = value
    patched = tmp_path / "patched.o"
    patched.write_bytes(bytes(data))
    for path, want in ((obj, 1 + 4), (patched, 2)):  # 7 > 5, neg < 0; then 7 <= 10, on, neg > 0
        with hostbpf.loaded(path) as (root, insns):
            assert insns
            assert hostbpf.run(root, "probe", bytes(64)) == want, path.name

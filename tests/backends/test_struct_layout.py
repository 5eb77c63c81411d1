"""defbpf-struct layouts as the compilers see them: the C backend's object
carries BTF naming each struct and member at the offsets structs.py
computes (what the manifest records), with the gaps as `__padN` members;
the aya dialect's `#[repr(C)]` declarations give the same sizes and
offsets under rustc (compile-time asserts), keep a `make` value's gaps zero
through copies at opt-level 3, and name the structs the same in BTF."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tatara_build import structs
from tatara_build.backends import emit
from tatara_build.backends.aya import ZEROED_FN, AyaGenerator

from . import hostbpf
from .helpers import CLANG_FLAGS, FIXTURES, ROOT, load

SOURCES = [ROOT / "examples" / "flow-table.tlisp", *(p for p in FIXTURES if p.stem == "map-structs")]
STRUCT_LINE = re.compile(r"^\[(\d+)\] STRUCT '([a-z0-9_]+)' size=(\d+) vlen=(\d+)$")
MEMBER_LINE = re.compile(r"^\s+'([a-z0-9_]+)' type_id=\d+ bits_offset=(\d+)$")


def btf_structs(obj: Path) -> dict[str, tuple[int, list[tuple[str, int]]]]:
    """name -> (size, [(member, byte offset)]) from `bpftool btf dump`."""
    done = subprocess.run(["bpftool", "btf", "dump", "file", str(obj), "format", "raw"],
                          capture_output=True, text=True, check=True)
    out, current = {}, None
    for line in done.stdout.splitlines():
        m = STRUCT_LINE.match(line)
        if m:
            current = m.group(2)
            out[current] = (int(m.group(3)), [])
            continue
        m = MEMBER_LINE.match(line)
        if m and current is not None:
            out[current][1].append((m.group(1), int(m.group(2)) // 8))
        elif not line.startswith("\t"):
            current = None
    return out


def expected(layout: structs.Layout) -> tuple[int, list[tuple[str, int]]]:
    members, at, pads = [], 0, 0
    for name, t, size in structs.members(layout):
        if t is None:
            members.append((f"__pad{pads}", at))
            pads += 1
        else:
            members.append((name.replace("-", "_"), at))
        at += size
    return layout.size, members


@pytest.mark.skipif(shutil.which("bpftool") is None or shutil.which("clang") is None, reason="needs clang and bpftool")
@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_c_object_btf_names_every_struct_and_member_at_its_offset(source, tmp_path):
    module = load(source)
    [c_file] = emit(module, "c", tmp_path)
    obj = tmp_path / "s.o"
    subprocess.run(["clang", *CLANG_FLAGS, str(c_file), "-o", str(obj)], check=True)
    btf = btf_structs(obj)
    layouts = structs.layouts(module.structs)
    assert layouts
    for layout in layouts.values():
        assert btf[layout.name.replace("-", "_")] == expected(layout), layout.name


HARNESS_TAIL = """
#[unsafe(no_mangle)]
#[unsafe(link_section = "license")]
pub static LICENSE: [u8; 4] = *b"GPL\\0";

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
"""


def aya_harness(module) -> str:
    """The dialect's struct declarations and zeroing, rustc's own view of
    their layout as compile-time asserts, and per struct an XDP entry that
    builds a value the way `make` does (zeroed, then a field from the packet
    length), copies it into a global (which also puts the type in BTF, as a
    map's key or value does in aya; locals do not) and returns 1 plus the
    sum of the copy's gap bytes (1 when they are 0)."""
    gen = AyaGenerator(module)
    out = ["#![no_std]", "#![no_main]", "#![allow(unused_mut, unused_parens, unused_unsafe, unused_variables, dead_code)]",
           "", "#[repr(C)]", "pub struct XdpMd {", "    data: u32,", "    data_end: u32,", "}", ""]
    for decl in module.structs:
        out += gen.struct_decl_lines(decl) + [""]
    out += ZEROED_FN + [""]
    for layout in structs.layouts(module.structs).values():
        name = layout.name.replace("-", "_")
        out.append(f"const _: () = assert!(core::mem::size_of::<{name}>() == {layout.size});")
        out.append(f"const _: () = assert!(core::mem::align_of::<{name}>() == {layout.align});")
        out += [f"const _: () = assert!(core::mem::offset_of!({name}, {f.name.replace('-', '_')}) == {f.offset});"
                for f in layout.fields]
        first = layout.fields[0]
        setter = f"v.{first.name.replace('-', '_')} = len as {first.type};" if first.type in structs.tables.INT_TYPES \
            else ""
        gaps, at = [], 0
        for member, t, size in structs.members(layout):
            if t is None:
                gaps += range(at, at + size)
            at += size
        # byte 0 is read even without gaps: the copy (and so the type's BTF) stays
        sums = " + ".join(f"unsafe {{ core::ptr::read_volatile(p.add({i})) }} as u32" for i in gaps) or \
            "0 * unsafe { core::ptr::read_volatile(p) } as u32"
        out += [f"static mut SINK_{name.upper()}: {name} = unsafe {{ core::mem::zeroed() }};", ""]
        out += ["#[unsafe(no_mangle)]", '#[unsafe(link_section = "xdp")]',
                f'pub extern "C" fn probe_{name}(ctx: *const XdpMd) -> u32 {{',
                "    let len = unsafe { (*ctx).data_end - (*ctx).data };",
                "    " + gen.line_zeroed("v", f"struct:{layout.name}"),
                f"    {setter}",
                f"    unsafe {{ core::ptr::write_volatile(&raw mut SINK_{name.upper()}, v) }};  // a copy: gaps stay zero",
                f"    let p = &raw const SINK_{name.upper()} as *const u8;",
                f"    1 + {sums}", "}", ""]
    return "\n".join(out) + HARNESS_TAIL


@pytest.mark.skipif(hostbpf.available() is not None, reason=str(hostbpf.available()))
@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_aya_structs_have_the_c_layout_keep_zero_gaps_and_btf_names(source, tmp_path, monkeypatch):
    from tatara_build.compile import BuildOptions, compile_generated

    from .test_aya_parsers import NOSTD_CRATE, rust_or_skip

    rust_or_skip()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    module = load(source)
    crate = tmp_path / "crate"
    shutil.copytree(NOSTD_CRATE, crate)
    (crate / "src" / "main.rs").write_text(aya_harness(module))
    compile_generated(crate, "nostd-xdp", tmp_path / "out", BuildOptions(linker="llvm", use_cache=False))
    obj = tmp_path / "out" / "nostd-xdp.o"
    layouts = structs.layouts(module.structs)
    btf = btf_structs(obj)
    for layout in layouts.values():
        name = layout.name.replace("-", "_")
        assert btf.get(name) == expected(layout), (name, sorted(btf))
    with hostbpf.loaded(obj) as (root, _):
        for layout in layouts.values():
            assert hostbpf.run(root, f"probe_{layout.name.replace('-', '_')}", bytes(64)) == 1, layout.name

"""Our LLVM link driver: argument parsing, rlib (ar) reading, and a real
link of the tiny no_std crate tests/fixtures/nostd-xdp with Debian's
rustc-web (prebuilt BPF core) + llvm-22."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from tatara_build.compile import BuildOptions, compile_generated, toolchain
from tatara_build.compile.link import ar_members, bitcode_inputs, parse_args
from tatara_build.errors import ExitCode, ToolchainError

from .conftest import NOSTD_CRATE, is_root


def _rust_or_skip():
    try:
        rust = toolchain.find_rust()
        toolchain.find_llvm(rust)
        return rust
    except ToolchainError as err:
        pytest.skip(f"no BPF-capable rustc + matching LLVM here: {err}")


def test_parse_rustc_linker_command_line(tmp_path):
    symbols = tmp_path / "symbols"
    symbols.write_text("drop_syn\nSYN_DROPS\n")
    args = parse_args(["--export-symbols", str(symbols), str(tmp_path / "symbols.o"), str(tmp_path / "a.rcgu.o"),
                       "/sys/libcore-1.rlib", "-L", str(tmp_path / "raw-dylibs"), "--cpu", "generic",
                       "-o", str(tmp_path / "out"), "-O3", "--debug", "--btf"], default_cpu="v2")
    assert args.exports == ["drop_syn", "SYN_DROPS"]
    assert args.cpu == "v2"  # rustc's "generic" means: our configured CPU
    assert args.output == tmp_path / "out" and args.opt_level == "3" and args.debug
    assert [p.name for p in args.inputs] == ["symbols.o", "a.rcgu.o", "libcore-1.rlib"]
    assert parse_args(["-o", "x", "--cpu", "v1"]).cpu == "v1"


def test_parse_requires_output():
    with pytest.raises(ToolchainError, match="no output"):
        parse_args(["a.o"])


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    """A GNU ar archive with a long-name table, as rustc writes rlibs."""
    long_names = b"".join(name.encode() + b"/\n" for name, _ in members)
    out, offsets, pos = [b"!<arch>\n"], [], 0
    for name, _ in members:
        offsets.append(pos)
        pos += len(name) + 2

    def header(name: str, size: int) -> bytes:
        return f"{name:<16}{0:<12}{0:<6}{0:<6}{644:<8}{size:<10}`\n".encode()

    out += [header("/", 4), b"\0\0\0\0", header("//", len(long_names)), long_names + b"\n" * (len(long_names) & 1)]
    for (_, body), offset in zip(members, offsets):
        out += [header(f"/{offset}", len(body)), body + b"\n" * (len(body) & 1)]
    return b"".join(out)


def test_ar_members_and_bitcode_filter(tmp_path):
    bitcode = b"BC\xc0\xde" + b"\x01" * 11
    rlib = tmp_path / "libx.rlib"
    rlib.write_bytes(_ar([("lib.rmeta", b"\x7fELF meta"), ("x-123.x.abc-cgu.0.rcgu.o", bitcode)]))
    assert [n for n, _ in ar_members(rlib.read_bytes())] == ["lib.rmeta", "x-123.x.abc-cgu.0.rcgu.o"]
    loose = tmp_path / "crate.rcgu.o"
    loose.write_bytes(bitcode)
    elf_obj = tmp_path / "symbols.o"
    elf_obj.write_bytes(b"\x7fELF....")
    found = [(name, body) for name, body in bitcode_inputs([elf_obj, loose, rlib])]
    assert [n for n, _ in found] == ["crate.rcgu.o", "libx.rlib(x-123.x.abc-cgu.0.rcgu.o)"]
    assert all(body == bitcode for _, body in found)


@pytest.mark.slow
def test_nostd_crate_links_with_our_driver(tmp_path):
    _rust_or_skip()
    out = tmp_path / "out"
    manifest = compile_generated(NOSTD_CRATE, "nostd-xdp", out, BuildOptions(linker="llvm", use_cache=False))
    obj = out / "nostd-xdp.o"
    headers = subprocess.run(["llvm-objdump", "-h", str(obj)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"\sxdp\s", headers) and ".BTF" in headers and ".BTF.ext" in headers
    assert [(p.symbol, p.section, p.kind) for p in manifest.objects[0].programs] == [("pass_all", "xdp", "xdp")]
    assert "tatara-build LLVM driver" in manifest.toolchain.linker
    assert manifest.toolchain.llvm_version.startswith("22.")
    assert str(tmp_path).encode() not in obj.read_bytes()
    assert str(NOSTD_CRATE).encode() not in obj.read_bytes()
    dump = subprocess.run(["bpftool", "btf", "dump", "file", str(obj)], capture_output=True, text=True, check=True)
    assert "STRUCT 'Wrapper_u64_'" in dump.stdout and "<" not in dump.stdout  # btf.sanitize ran

    # Same object from another directory (paths remapped).
    again = compile_generated(NOSTD_CRATE, "nostd-xdp", tmp_path / "elsewhere" / "deeper",
                            BuildOptions(linker="llvm", use_cache=False))
    assert again.objects[0].sha256 == manifest.objects[0].sha256

    if is_root():
        _load_with_bpftool(obj)


def _load_with_bpftool(obj: Path) -> None:
    """Load (never attach) into a private bpffs; unmounting drops the pins."""
    with tempfile.TemporaryDirectory(prefix="tatara-bpffs-") as fs:
        mounted = subprocess.run(["mount", "-t", "bpf", "bpf", fs], capture_output=True)
        if mounted.returncode != 0:
            pytest.skip("cannot mount a private bpffs here")
        try:
            loaded = subprocess.run(["bpftool", "-d", "prog", "loadall", str(obj), f"{fs}/p"],
                                    capture_output=True, text=True)
            if "Operation not permitted" in loaded.stderr:
                pytest.skip("BPF loading not permitted here")
            assert loaded.returncode == 0, loaded.stderr[-2000:]
            assert re.search(r"processed \d+ insns", loaded.stderr)
            assert "BTF loading error" not in loaded.stderr  # the kernel accepted our BTF
            assert (Path(fs) / "p" / "pass_all").exists()
        finally:
            subprocess.run(["umount", fs], check=False)


@pytest.mark.slow
def test_llvm_major_mismatch_is_refused(tmp_path, monkeypatch):
    rust = _rust_or_skip()
    other = next((d for d in sorted(Path("/usr/lib").glob("llvm-*/bin"))
                  if d.parent.name != f"llvm-{rust.llvm[0]}" and (d / "llc").exists()), None)
    if other is None:
        pytest.skip("no second LLVM installed")
    monkeypatch.setenv("TATARA_LLVM_BIN", str(other))
    with pytest.raises(ToolchainError) as caught:
        compile_generated(NOSTD_CRATE, "nostd-xdp", tmp_path / "out", BuildOptions(linker="llvm", use_cache=False))
    assert caught.value.exit_code == ExitCode.TOOLCHAIN
    assert f"must be LLVM {rust.llvm[0]}" in caught.value.render()
    assert not (tmp_path / "out").exists()


def test_missing_rustc_names_the_way_out(tmp_path):
    with pytest.raises(ToolchainError) as caught:
        compile_generated(NOSTD_CRATE, "nostd-xdp", tmp_path / "out", BuildOptions(rustc="/nonexistent/rustc"))
    text = caught.value.render()
    assert "no rustc that can build for bpfel-unknown-none" in text
    assert "libstd-rust-web-dev-bpf" in text and "--backend c" in text


def test_forced_bpf_linker_missing(tmp_path, monkeypatch):
    _rust_or_skip()
    monkeypatch.setattr(toolchain, "find_bpf_linker", lambda: None)
    with pytest.raises(ToolchainError, match="bpf-linker is not on PATH"):
        compile_generated(NOSTD_CRATE, "nostd-xdp", tmp_path / "out", BuildOptions(linker="bpf-linker"))


def test_btf_name_fixing_keeps_offsets():
    import struct

    from tatara_build.compile import btf

    data = bytearray(b"\0PerCpuArray<u64, 1, 0>\0" + b"9lives\0" + b"x" * 200 + b"\0")
    btf._fix(data, 1)
    btf._fix(data, data.index(b"9lives"))
    btf._fix(data, data.index(b"xxx"))
    names = bytes(data).split(b"\0")
    assert names[1] == b"PerCpuArray_u64__1__0_" and names[2] == b"_lives"
    assert names[3] == b"x" * btf.MAX_NAME and len(data) == 1 + 23 + 7 + 201
    # a STRUCT (kind 4) with two members: the struct's and the members' names are collected
    types = struct.pack("<III", 10, (4 << 24) | 2, 16) + struct.pack("<III", 20, 1, 0) + struct.pack("<III", 30, 1, 64)
    types += struct.pack("<III", 0, 2 << 24, 1)  # a PTR: no name
    assert btf._identifier_name_offsets(types) == [10, 20, 30]

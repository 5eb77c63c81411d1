"""The C compile path on a hand-written program: object, manifest,
reproducibility across directories, cache, failure reports."""

from __future__ import annotations

import json

import pytest

from tatara_build.compile import BuildOptions, compile_generated
from tatara_build.pipeline import repro
from tatara_build.compile.run import LOG
from tatara_build.errors import ExitCode, ToolchainError

from .conftest import needs_clang

C = BuildOptions(backend="c")

pytestmark = needs_clang


def test_object_and_manifest(c_sources, tmp_path):
    out = tmp_path / "out"
    manifest = compile_generated(c_sources, "pass", out, C)
    obj = out / "pass.o"
    assert obj.is_file() and (out / "src" / "pass.bpf.c").is_file()
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["objects"][0]["sha256"] == manifest.objects[0].sha256
    info = manifest.objects[0]
    assert info.size == obj.stat().st_size
    assert [(p.symbol, p.section, p.kind) for p in info.programs] == [("pass_all", "xdp", "xdp")]
    assert info.maps == ["hits"]
    assert {".BTF", ".BTF.ext", "license", ".maps"} <= set(info.sections)
    assert manifest.toolchain.linker == "clang" and manifest.toolchain.target_cpu == "v3"
    assert "-fno-ident" in manifest.toolchain.flags


def test_no_build_paths_in_object(c_sources, tmp_path):
    out = tmp_path / "out"
    compile_generated(c_sources, "pass", out, C)
    data = (out / "pass.o").read_bytes()
    assert str(tmp_path).encode() not in data
    assert b"clang version" not in data  # -fno-ident


def test_repro_two_directories(c_sources):
    result = repro(c_sources, C, generated=(c_sources, "pass"))
    assert result.identical, (result.first.objects, result.second.objects)


def test_warm_build_uses_cache(c_sources, tmp_path, isolated_cache):
    first = compile_generated(c_sources, "pass", tmp_path / "a", C)
    assert any(isolated_cache.rglob("object.o"))
    LOG.runs.clear()
    second = compile_generated(c_sources, "pass", tmp_path / "b", C)
    assert not [r for r in LOG.runs if r.stage == "compile"], "warm build must not compile"
    assert second.objects[0].sha256 == first.objects[0].sha256


def test_no_cache_compiles(c_sources, tmp_path, isolated_cache):
    compile_generated(c_sources, "pass", tmp_path / "a", BuildOptions(backend="c", use_cache=False))
    assert not list(isolated_cache.rglob("object.o"))


def test_changed_source_misses_cache(c_sources, tmp_path):
    first = compile_generated(c_sources, "pass", tmp_path / "a", C)
    source = c_sources / "pass.bpf.c"
    source.write_text(source.read_text().replace("return XDP_PASS;", "return XDP_DROP;"))
    second = compile_generated(c_sources, "pass", tmp_path / "b", C)
    assert second.objects[0].sha256 != first.objects[0].sha256


def test_broken_c_names_stage_command_and_stderr(c_sources, tmp_path):
    (c_sources / "pass.bpf.c").write_text("int broken(void) { return undeclared_thing; }\n")
    out = tmp_path / "out"
    with pytest.raises(ToolchainError) as caught:
        compile_generated(c_sources, "pass", out, C)
    text = caught.value.render()
    assert caught.value.exit_code == ExitCode.TOOLCHAIN
    assert "compile failed" in text and "clang" in text and "-target bpf" in text
    assert "undeclared_thing" in text  # the stderr tail
    assert not out.exists(), "no partial OUT"
    assert not list(tmp_path.glob(".out.tmp-*")), "temp dir cleaned up"


def test_failed_rebuild_keeps_previous_out(c_sources, tmp_path):
    out = tmp_path / "out"
    good = compile_generated(c_sources, "pass", out, C)
    (c_sources / "pass.bpf.c").write_text("this is not C\n")
    with pytest.raises(ToolchainError):
        compile_generated(c_sources, "pass", out, C)
    assert json.loads((out / "manifest.json").read_text())["objects"][0]["sha256"] == good.objects[0].sha256


def test_missing_clang_is_a_toolchain_error(c_sources, tmp_path, monkeypatch):
    monkeypatch.setenv("TATARA_CLANG", "/nonexistent/clang-99")
    with pytest.raises(ToolchainError) as caught:
        compile_generated(c_sources, "pass", tmp_path / "out", C)
    assert "clang not found" in caught.value.render() and "apt-get install clang" in caught.value.render()


def test_missing_c_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ToolchainError, match="no pass.bpf.c"):
        compile_generated(empty, "pass", tmp_path / "out", C)


def test_unwritable_cache_does_not_fail_the_build(c_sources, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    manifest = compile_generated(c_sources, "pass", tmp_path / "out", C)
    assert (tmp_path / "out" / "pass.o").is_file() and manifest.objects[0].sha256


def test_program_kind_from_either_backends_section(tmp_path):
    from tatara_build.compile import describe

    src = tmp_path / "tc"
    src.mkdir()
    (src / "cls.bpf.c").write_text('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
                                   'SEC("classifier") int cls(struct __sk_buff *skb) { return 0; }\n'
                                   'SEC("tc") int tc_too(struct __sk_buff *skb) { return 0; }\n'
                                   'char LICENSE[] SEC("license") = "GPL";\n')
    compile_generated(src, "cls", tmp_path / "out", C)
    programs = describe(tmp_path / "out" / "cls.o").programs
    assert sorted((p.section, p.kind) for p in programs) == [("classifier", "tc"), ("tc", "tc")]


def test_warm_build_runs_no_tool(c_sources, tmp_path):
    """Tool versions are memoized per binary identity: a warm build starts no process."""
    compile_generated(c_sources, "pass", tmp_path / "a", C)
    LOG.runs.clear()
    from tatara_build.compile import toolchain

    toolchain._probe_memo.cache_clear()  # as a fresh process would: read from disk
    compile_generated(c_sources, "pass", tmp_path / "b", C)
    assert LOG.runs == []


def test_manifest_records_nix_provenance(c_sources, tmp_path, monkeypatch):
    monkeypatch.setenv("TATARA_PROVENANCE", json.dumps({"nixpkgs": "b7c2ada9", "rust-overlay": "29224977"}))
    manifest = compile_generated(c_sources, "pass", tmp_path / "out", C)
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest.nix == on_disk["nix"] == {"nixpkgs": "b7c2ada9", "rust-overlay": "29224977"}


@pytest.mark.parametrize("raw", ["not json", "[1, 2]"])
def test_bad_provenance_is_a_toolchain_error(c_sources, tmp_path, monkeypatch, raw):
    monkeypatch.setenv("TATARA_PROVENANCE", raw)
    with pytest.raises(ToolchainError, match="TATARA_PROVENANCE"):
        compile_generated(c_sources, "pass", tmp_path / "out", C)
    assert not (tmp_path / "out").exists()


def _fake_clang(directory, name: str, version: str):
    """An executable that prints a clang version banner (nothing else runs it)."""
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / name
    exe.write_text(f"#!/bin/sh\necho 'Debian clang version {version}'\n")
    exe.chmod(0o755)
    return exe


def test_the_pinned_llvm_major_is_the_pins_files():
    import json
    from pathlib import Path

    from tatara_build.compile.toolchain import PINNED_LLVM_MAJOR

    pins = json.loads((Path(__file__).resolve().parents[2] / "tatara_build" / "pins.json").read_text())
    assert pins["llvmMajor"] == PINNED_LLVM_MAJOR == 22


def test_clang_of_the_pinned_major_is_preferred_then_a_recorded_fallback(tmp_path, monkeypatch):
    from tatara_build.compile import toolchain
    from tatara_build.compile.toolchain import PINNED_LLVM_MAJOR as MAJOR

    monkeypatch.delenv("TATARA_CLANG", raising=False)
    bin_dir = tmp_path / "bin"
    _fake_clang(bin_dir, "clang", "14.0.6")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(toolchain, "CLANG_CANDIDATES", (f"clang-{MAJOR}", str(tmp_path / "nope/clang"), "clang"))
    fallback = toolchain.find_clang()
    assert fallback.major == 14 and fallback.path == bin_dir / "clang"
    assert fallback.choice.startswith(f"fallback: no clang {MAJOR}") and f"clang-{MAJOR}: not found" in fallback.choice
    _fake_clang(bin_dir, f"clang-{MAJOR}", f"{MAJOR}.1.8 (1~deb12u1)")
    pinned = toolchain.find_clang()
    assert pinned.major == MAJOR and pinned.path == bin_dir / f"clang-{MAJOR}"
    assert "pinned LLVM major" in pinned.choice
    named = toolchain.find_clang("clang")  # --clang still overrides
    assert named.major == 14 and "--clang" in named.choice
    # Nix's llvmPackages_22.clang is a plain `clang` of the pinned major
    (bin_dir / f"clang-{MAJOR}").unlink()
    _fake_clang(bin_dir, "clang", f"{MAJOR}.1.8")
    assert "pinned LLVM major" in toolchain.find_clang().choice


def test_the_manifest_records_which_clang_ran_and_why(c_sources, tmp_path):
    manifest = compile_generated(c_sources, "pass", tmp_path / "out", C)
    from tatara_build.compile import toolchain

    chosen = toolchain.find_clang()
    assert manifest.toolchain.compiler == chosen.version
    assert manifest.toolchain.compiler_choice == chosen.choice
    named = compile_generated(c_sources, "pass", tmp_path / "named", BuildOptions(backend="c", clang="clang"))
    assert "--clang" in named.toolchain.compiler_choice

"""The whole-output cache (compile/outputs.py): keyed by the source, the
code, the options and the toolchain, served without running a tool or
loading the frontend, and never served damaged."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tatara_build.compile import BuildOptions, outputs
from tatara_build.errors import ToolchainError

from .conftest import REPO, needs_clang

EXAMPLE = REPO / "examples" / "drop-syn.tlisp"
C = BuildOptions(backend="c")
IDENTITY = ({"clang": "clang version 99", "epoch": "0"}, ["-O2"])


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "drop-syn.tlisp"
    path.write_bytes(EXAMPLE.read_bytes())
    return path


@pytest.fixture
def fixed_tools(monkeypatch):
    """A toolchain identity that tests can change without installing one."""
    from tatara_build.compile import engine

    state = {"identity": IDENTITY}
    monkeypatch.setattr(engine, "identity", lambda options, compiler: state["identity"])
    return state


def test_key_changes_with_everything_the_output_depends_on(source, fixed_tools, monkeypatch):
    base = outputs.key_for(source, C)
    assert base is not None and base == outputs.key_for(source, C)  # stable
    changed = []
    changed.append(outputs.key_for(source, replace(C, backend="aya")))
    changed.append(outputs.key_for(source, replace(C, cpu="v2")))
    changed.append(outputs.key_for(source, replace(C, linker="llvm")))
    changed.append(outputs.key_for(source, replace(C, clang="/opt/clang")))
    changed.append(outputs.key_for(source, replace(C, source_date_epoch="1")))
    fixed_tools["identity"] = ({"clang": "clang version 100", "epoch": "0"}, ["-O2"])
    changed.append(outputs.key_for(source, C))
    fixed_tools["identity"] = IDENTITY
    real_digest = outputs.code_digest
    monkeypatch.setattr(outputs, "code_digest", lambda: "another tatara-build")
    changed.append(outputs.key_for(source, C))
    monkeypatch.setattr(outputs, "code_digest", real_digest)
    monkeypatch.setenv("TATARA_PROVENANCE", '{"nixpkgs": "abc"}')
    changed.append(outputs.key_for(source, C))
    monkeypatch.delenv("TATARA_PROVENANCE")
    source.write_bytes(source.read_bytes() + b"\n; a comment\n")
    changed.append(outputs.key_for(source, C))
    renamed = source.with_name("other.tlisp")
    source.rename(renamed)
    changed.append(outputs.key_for(renamed, C))
    assert None not in changed and base not in changed and len(set(changed)) == len(changed)


def test_no_key_when_the_build_must_run(source, fixed_tools, tmp_path, monkeypatch):
    assert outputs.key_for(source, replace(C, use_cache=False)) is None
    assert outputs.key_for(source, replace(C, engine="nix")) is None
    assert outputs.key_for(tmp_path / "absent.tlisp", C) is None
    import os

    fifo = tmp_path / "fifo.tlisp"
    os.mkfifo(fifo)
    assert outputs.key_for(fifo, C) is None  # never opened: it would block

    from tatara_build.compile import engine

    def no_clang(options, compiler):
        raise ToolchainError("toolchain: clang not found")

    monkeypatch.setattr(engine, "identity", no_clang)
    assert outputs.key_for(source, C) is None  # the build reports it, after any source error


def test_the_dialect_index_is_remembered_per_code(monkeypatch, isolated_cache):
    # --help and a cache hit learn the backends' names and compilers without the registry
    from tatara_build import memo
    from tatara_build.backends import dialects

    index = memo.dialect_index()
    assert {name: d["compiler"] for name, d in index.items()} == {n: d.compiler for n, d in dialects().items()}
    assert (isolated_cache / f"dialects-{memo.code_digest()[:16]}.json").is_file()  # one per code: no thrashing
    monkeypatch.setattr("tatara_build.backends.dialects", lambda: (_ for _ in ()).throw(AssertionError("asked")))
    assert memo.dialect_index() == index  # served from the memo
    monkeypatch.setattr(memo, "code_digest", lambda: "another tatara-build")
    with pytest.raises(AssertionError, match="asked"):
        memo.dialect_index()  # other code: the registry is asked again


def test_code_digest_covers_the_package_files():
    root = Path(outputs.__file__).resolve().parents[1]
    assert len(outputs.code_digest()) == 64 and outputs.code_digest() == __import__("tatara_build.memo").memo.code_digest()
    assert (root / "backends" / "aya_lock.toml").is_file()  # package data is part of the code


def test_the_code_digest_is_remembered_until_a_file_changes(monkeypatch, isolated_cache):
    # --help and a cache hit stat the package's files instead of hashing them
    import hashlib
    import json

    from tatara_build import memo

    first = memo.code_digest.__wrapped__()
    (saved,) = isolated_cache.glob("code-*.json")
    monkeypatch.setattr(hashlib, "sha256", lambda *a: (_ for _ in ()).throw(AssertionError("hashed")))
    assert memo.code_digest.__wrapped__() == first  # unchanged files: served from the memo
    data = json.loads(saved.read_text())
    data["files"][0][3] += 1  # as a write to that file would (its ctime)
    saved.write_text(json.dumps(data))
    with pytest.raises(AssertionError, match="hashed"):
        memo.code_digest.__wrapped__()
    monkeypatch.undo()
    assert memo.code_digest.__wrapped__() == first


@needs_clang
def test_a_hit_runs_no_tool_and_a_damaged_entry_is_rebuilt(source, tmp_path, monkeypatch, isolated_cache):
    from tatara_build.compile import clang, run, toolchain
    from tatara_build.pipeline import build

    out = tmp_path / "out"
    first = build(source, out, C)
    entries = list((isolated_cache / "outputs").glob("*/*"))
    assert len(entries) == 1
    assert (entries[0] / "tree" / "src" / "drop-syn.bpf.c").is_file()

    def no_tools(*args, **kwargs):
        raise AssertionError(f"a cache hit ran {args[:2]}")

    for module in (run, toolchain, clang):
        monkeypatch.setattr(module, "run", no_tools)
    (out / "drop-syn.o").write_bytes(b"stale")
    second = build(source, out, C)
    assert second == first
    assert (out / "drop-syn.o").read_bytes() != b"stale"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "drop-syn.o", "manifest.json", "src", "src/drop-syn.bpf.c"]

    # a flipped byte in the entry: not served, removed, and the next build stores a good one
    cached = entries[0] / "tree" / "drop-syn.o"
    data = bytearray(cached.read_bytes())
    data[100] ^= 0xFF
    cached.write_bytes(bytes(data))
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(isolated_cache.parent))
    third = build(source, out, C)
    assert third.objects[0].sha256 == first.objects[0].sha256
    assert (out / "drop-syn.o").read_bytes() != bytes(data)
    assert outputs.serve(entries[0].name, tmp_path / "again", make_quiet()) is not None


def make_quiet():
    from tatara_build.compile.progress import make_progress

    return make_progress(json_mode=True)


@needs_clang
def test_cli_hit_loads_neither_typer_nor_the_frontend(source, tmp_path, isolated_cache):
    out = tmp_path / "out"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("TATARA_")}
    env["XDG_CACHE_HOME"] = str(isolated_cache.parent)
    argv = [sys.executable, "-X", "importtime", "-m", "tatara_build", "build", str(source), "--backend", "c",
            "-o", str(out)]
    cold = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert cold.returncode == 0, cold.stderr[-3000:]
    warm = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert warm.returncode == 0, warm.stderr[-3000:]
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", warm.stderr, re.M))
    for package in ("typer", "pydantic", "rich", "sh", "tatara_build.frontend", "tatara_build.check",
                    "tatara_build.backends", "tatara_build.vm"):
        assert package not in modules, f"a cache hit imported {package}"
    said = [line for line in warm.stderr.splitlines() if not line.startswith("import time:")]
    assert said[0].startswith("tatara-build: cache hit ")
    object_lines = [line for line in cold.stderr.splitlines() if "sha256" in line and "import time" not in line]
    assert said[1:] == object_lines[-1:]  # the same line about the object as a real build

"""The aya build's shared cargo directory (issue 18): one per toolchain
and lock under the cache, builds take turns on it (fcntl), its paths are
remapped out of the object, and --no-cache builds stay private."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from tatara_build.compile import BuildOptions, cargo, compile_generated, toolchain
from tatara_build.errors import ToolchainError

from .conftest import NOSTD_CRATE

RUST = toolchain.Rust(Path("/usr/bin/rustc"), Path("/usr/bin/cargo"), "rustc 1.96.0", (22, 1, 8), Path("/usr"),
                      True, False)
LINKER = "tatara-build LLVM driver (llvm-link/opt/llc 22.1.8)"


def test_one_dir_per_toolchain_and_lock_under_the_cache(isolated_cache):
    base = cargo.shared_dir(RUST, LINKER, b"lock 1", False, "v3")
    assert base.parent == isolated_cache / "cargo"
    assert cargo.shared_dir(RUST, LINKER, b"lock 1", False, "v3") == base
    others = [
        cargo.shared_dir(RUST, LINKER, b"lock 2", False, "v3"),
        cargo.shared_dir(replace(RUST, version="rustc 1.97.0"), LINKER, b"lock 1", False, "v3"),
        cargo.shared_dir(replace(RUST, llvm=(22, 1, 9)), LINKER, b"lock 1", False, "v3"),
        cargo.shared_dir(replace(RUST, prebuilt_core=False), LINKER, b"lock 1", False, "v3"),
        cargo.shared_dir(RUST, "bpf-linker 0.9.15", b"lock 1", False, "v3"),
        cargo.shared_dir(RUST, LINKER, b"lock 1", True, "v3"),
        cargo.shared_dir(RUST, LINKER, b"lock 1", False, "v2"),
    ]
    assert base not in others and len(set(others)) == len(others)


HOLD = """
import sys
from pathlib import Path
from tatara_build.compile import cargo
with cargo.locked(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def _try_lock(directory: Path) -> bool:
    with open(directory / "lock", "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return True


def test_builds_take_turns_and_a_dead_holder_frees_the_dir(tmp_path):
    shared = tmp_path / "shared"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(shared)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not _try_lock(shared)  # a second build waits
    finally:
        holder.kill()  # dies holding it: the kernel releases the lock
        holder.wait(timeout=30)
    assert _try_lock(shared)
    with cargo.locked(shared):
        assert not _try_lock(shared)
    assert _try_lock(shared)


def test_config_remaps_every_shared_path(tmp_path):
    shared = tmp_path / "cache" / "cargo" / "abc"
    vendor = tmp_path / "vendor"
    job = cargo.CargoJob(tmp_path / "generated", tmp_path / "work", RUST, "llvm", None, vendor, "v3", "0", shared)
    text = cargo.cargo_config(job, shared / "crate", shared / "cargo-home", {}, shared / "target")
    flags = tomllib.loads(text)["target"]["bpfel-unknown-none"]["rustflags"]
    assert f"--remap-path-prefix={shared / 'crate'}=." in flags
    assert f"--remap-path-prefix={shared / 'cargo-home'}=/cargo" in flags
    assert f"--remap-path-prefix={shared / 'target'}=/target" in flags
    assert f"--remap-path-prefix={vendor}=/vendor" in flags
    # the same paths for every build: the rustflags, and so cargo's fingerprints, do not change
    again = cargo.cargo_config(replace(job, work=tmp_path / "other-work"), shared / "crate", shared / "cargo-home",
                               {}, shared / "target")
    assert again == text
    # recorded in the manifest with placeholders, not this machine's paths
    assert "--remap-path-prefix=<target>=/target" in cargo.rustflags("v3", "<crate>", "<cargo-home>", None)


@pytest.mark.slow
def test_shared_builds_match_private_ones(tmp_path, isolated_cache):
    try:
        toolchain.find_llvm(toolchain.find_rust())
    except ToolchainError as err:
        pytest.skip(f"no BPF-capable rustc + matching LLVM here: {err}")
    options = BuildOptions(linker="llvm")
    first = compile_generated(NOSTD_CRATE, "nostd-xdp", tmp_path / "a", options)
    [shared] = list((isolated_cache / "cargo").iterdir())
    assert (shared / "target").is_dir() and (shared / "crate" / "Cargo.toml").is_file()

    changed = tmp_path / "changed"
    subprocess.run(["cp", "-r", str(NOSTD_CRATE), str(changed)], check=True)
    main = changed / "src" / "main.rs"
    main.write_text(main.read_text() + "\n// touched\n")
    second = compile_generated(changed, "nostd-xdp", tmp_path / "b", options)
    assert list((isolated_cache / "cargo").iterdir()) == [shared]  # same toolchain and lock: same dir
    assert not (shared / "crate" / "target").exists()

    private = compile_generated(NOSTD_CRATE, "nostd-xdp", tmp_path / "c", replace(options, use_cache=False))
    assert private.objects[0].sha256 == first.objects[0].sha256  # the shared dir leaves no trace
    for out in ("a", "b"):
        data = (tmp_path / out / "nostd-xdp.o").read_bytes()
        assert str(shared).encode() not in data and str(isolated_cache).encode() not in data
    assert second.objects[0].sha256 == first.objects[0].sha256  # a comment changes no code

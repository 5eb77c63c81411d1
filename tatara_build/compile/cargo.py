"""Host engine for the aya backend: `cargo build --release --target
bpfel-unknown-none` on a copy of the generated crate, in a build directory
of our own (never in the user's tree), linked by bpf-linker or our driver.

That directory is, by default, shared by every build with the same
toolchain and the same Cargo.lock: $XDG_CACHE_HOME/tatara-build/cargo/<key>/
holds the crate copy, cargo's target dir and (offline) CARGO_HOME, so the
~30 dependency crates compile once and a changed program rebuilds only its
own crate. Builds using one directory take turns (an fcntl lock on its
`lock` file); its paths are the same for every build, so the rustflags (and
with them cargo's fingerprints) stay the same, and `--remap-path-prefix`
maps each of them to a fixed name: the object does not show where it was
built. Without the cache (--no-cache, repro) the build runs in a private
temporary directory, as before.

The copy gets its own `.cargo/config.toml`: the target's rustflags (CPU,
debug info, `--btf`, `bpf_target_arch`, path remapping for reproducible
objects), the vendor directory as source replacement for crates.io, and
`-Z build-std=core` only when the rustc has no prebuilt BPF core. RUSTFLAGS
from the environment is removed: it would replace the config's rustflags
and silently drop `--btf`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import Diagnostic, ToolchainError
from .run import failure, run
from .toolchain import TARGET, Llvm, Rust
from ..filelock import held

# Map names the build's own directories get inside the object's debug info.
REMAP_CRATE, REMAP_VENDOR, REMAP_CARGO_HOME, REMAP_TARGET = ".", "/vendor", "/cargo", "/target"
CARGO_BUILD = ["build", "--release", "--locked", "--target", TARGET]
_DROPPED_ENV = ("RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_TARGET_DIR",
                "CARGO_BUILD_TARGET", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER", "CARGO_BUILD_RUSTC_WRAPPER")


@dataclass(frozen=True)
class CargoJob:
    crate: Path  # the generated crate
    work: Path  # empty scratch directory for this build
    rust: Rust
    linker: str  # "bpf-linker" (real one on PATH) or "llvm" (our driver)
    llvm: Llvm | None  # for "llvm"
    vendor_dir: Path | None
    cpu: str
    source_date_epoch: str
    shared: Path | None = None  # the toolchain+lock's build dir (shared_dir), None: a private one


def shared_dir(rust: Rust, linker_id: str, lock: bytes, vendored: bool, cpu: str) -> Path:
    """The build directory shared by builds with this toolchain and lock:
    anything that makes cargo rebuild the dependencies (the toolchain, the
    pinned crates, where they come from, the CPU in the rustflags) picks
    another one, so such builds never evict each other's crates."""
    from .cache import cache_root

    ident = json.dumps({"rustc": rust.version, "llvm": rust.llvm_version, "cargo": str(rust.cargo),
                        "rustc_path": str(rust.rustc), "prebuilt_core": rust.prebuilt_core, "linker": linker_id,
                        "vendored": vendored, "cpu": cpu, "lock": hashlib.sha256(lock).hexdigest()},
                       sort_keys=True)
    return cache_root() / "cargo" / hashlib.sha256(ident.encode()).hexdigest()[:24]


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[Path]:
    """DIRECTORY, created, held under an exclusive fcntl lock on its `lock`
    file until the block ends (another build waits; the kernel drops the lock
    when a build dies, so a crash never leaves it stuck)."""
    with held(directory / "lock"):
        yield directory


def bpf_target_arch() -> str:
    """aya-ebpf's `bpf_target_arch` cfg: the host architecture, as aya-build does."""
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())


def check_vendor_dir(vendor: Path) -> Path:
    vendor = vendor.expanduser().resolve()
    if not vendor.is_dir() or not any(vendor.glob("*/.cargo-checksum.json")):
        raise ToolchainError(Diagnostic(
            f"build: {vendor} is not a cargo vendor directory (no */.cargo-checksum.json)",
            notes=["make one on a networked machine with `cargo vendor` in the generated crate "
                   "(tatara-build emit FILE --backend aya -o DIR)"]))
    return vendor


def rustflags(cpu: str, crate: Path | str, cargo_home: Path | str, vendor_dir: Path | str | None,
              target_dir: Path | str = "<target>") -> list[str]:
    """The flags we add for the BPF target (also recorded in the manifest)."""
    flags = ["-C", f"target-cpu={cpu}", "-C", "debuginfo=2", "-C", "link-arg=--btf",
             "--cfg", f'bpf_target_arch="{bpf_target_arch()}"',
             f"--remap-path-prefix={crate}={REMAP_CRATE}", f"--remap-path-prefix={cargo_home}={REMAP_CARGO_HOME}",
             f"--remap-path-prefix={target_dir}={REMAP_TARGET}"]
    if vendor_dir:
        flags.append(f"--remap-path-prefix={vendor_dir}={REMAP_VENDOR}")
    return flags


def cargo_config(job: CargoJob, crate: Path, cargo_home: Path, generated: dict,
                 target_dir: Path | None = None) -> str:
    target = generated.get("target", {}).get(TARGET, {})
    rustflags_ = [*target.get("rustflags", []),
                  *rustflags(job.cpu, crate, cargo_home, job.vendor_dir, target_dir or job.work / "target")]
    lines = ["[build]", f"target = {json.dumps(TARGET)}", "",
             f"[target.{TARGET}]", f"rustflags = {json.dumps(rustflags_)}", ""]
    if not job.rust.prebuilt_core:
        lines += ["[unstable]", 'build-std = ["core"]', ""]
    if job.vendor_dir:
        lines += ["[source.crates-io]", 'replace-with = "vendored-sources"', "",
                  "[source.vendored-sources]", f"directory = {json.dumps(str(job.vendor_dir))}", ""]
    lines += ["[net]", f"offline = {json.dumps(job.vendor_dir is not None)}", ""]
    return "\n".join(lines)


def _binary_name(crate: Path) -> str:
    manifest = tomllib.loads((crate / "Cargo.toml").read_text())
    bins = manifest.get("bin", [])
    return bins[0]["name"] if bins else manifest["package"]["name"]


def _env(job: CargoJob, cargo_home: Path, shim_dir: Path, link_config: Path, target_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(CARGO_HOME=str(cargo_home), CARGO_TARGET_DIR=str(target_dir), RUSTC=str(job.rust.rustc),
               SOURCE_DATE_EPOCH=job.source_date_epoch, TATARA_LINK_CONFIG=str(link_config),
               CARGO_TERM_COLOR="never", PATH=f"{shim_dir}{os.pathsep}{env.get('PATH', '')}")
    if not job.rust.nightly:
        env["RUSTC_BOOTSTRAP"] = "1"  # aya-ebpf uses nightly features
    return env


def _write_shim(job: CargoJob, shim_dir: Path) -> None:
    """`bpf-linker` for cargo: our driver, or the real one under its own name."""
    shim_dir.mkdir()
    if job.linker != "llvm":
        return  # the real bpf-linker is found on PATH
    package_root = Path(__file__).resolve().parents[2]
    shim = shim_dir / "bpf-linker"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH="{package_root}${{PYTHONPATH:+:$PYTHONPATH}}" '
                    f'exec "{sys.executable}" -m tatara_build.compile.link "$@"\n')
    shim.chmod(0o755)


def build(job: CargoJob) -> Path:
    """Build the crate; returns the linked object (inside job.work)."""
    if job.shared is None:
        return _build_in(job, job.work)
    with locked(job.shared) as base:
        return _build_in(job, base)


def _build_in(job: CargoJob, base: Path) -> Path:
    """The build with the crate copy, target dir and offline CARGO_HOME under
    BASE (job.work, or the locked shared dir); per-build files (shim, link
    config and report, the object) stay in job.work."""
    crate = base / "crate"
    if crate.exists():
        shutil.rmtree(crate)  # last build's program: its files must not linger
    # plain copies (mtime = now): cargo's fingerprint sees every copied file as changed
    shutil.copytree(job.crate, crate, ignore=shutil.ignore_patterns("target"), copy_function=shutil.copy)
    target_dir = base / "target"
    cargo_home = base / "cargo-home" if job.vendor_dir else Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    config_file = crate / ".cargo" / "config.toml"
    generated = tomllib.loads(config_file.read_text()) if config_file.exists() else {}
    config_file.parent.mkdir(exist_ok=True)
    config_file.write_text(cargo_config(job, crate, cargo_home, generated, target_dir))
    (crate / "rust-toolchain.toml").unlink(missing_ok=True)  # the toolchain is chosen explicitly
    shim_dir, link_config, report = job.work / "shim", job.work / "link-config.json", job.work / "link-report.json"
    _write_shim(job, shim_dir)
    link_config.write_text(json.dumps({"cpu": job.cpu, "report": str(report),
                                       "tools": {k: str(v) for k, v in (job.llvm.bin if job.llvm else {}).items()}}))
    env = _env(job, cargo_home, shim_dir, link_config, target_dir)
    cargo = [str(job.rust.cargo)]
    if job.vendor_dir is None:
        fetched = run("fetch", [*cargo, "fetch", "--locked"], cwd=crate, env=env, check=False, timeout=300)
        if fetched.exit_code != 0:
            raise _no_crates(fetched)
    built = run("compile", [*cargo, *CARGO_BUILD], cwd=crate, env=env, check=False)
    if built.exit_code != 0:
        linked = json.loads(report.read_text()) if report.exists() else {}
        if linked.get("error"):
            err = failure(built, "our LLVM link driver failed")
            err.diagnostics[0].notes.append("link driver:\n" + linked["error"])
            raise err
        raise failure(built, "cargo could not build the generated crate")
    output = target_dir / TARGET / "release" / _binary_name(crate)
    if not output.exists():
        raise ToolchainError(f"compile: cargo succeeded but {output.name} was not produced")
    if base == job.work:
        return output
    # copied out while the lock is held: the next build overwrites the shared one
    mine = job.work / output.name
    shutil.copyfile(output, mine)
    return mine


def _no_crates(fetched) -> ToolchainError:
    err = failure(fetched, "the crates pinned in Cargo.lock cannot be downloaded; "
                  "build offline with --vendor-dir DIR, or use --backend c")
    err.diagnostics[0].notes += [
        "cargo could not download them (no network, or crates.io unreachable); two ways out:",
        "  --vendor-dir DIR   (or TATARA_VENDOR_DIR): crates in `cargo vendor` layout, made on a networked machine",
        "  --backend c        build the same program through the libbpf C backend (needs only clang)",
    ]
    return err

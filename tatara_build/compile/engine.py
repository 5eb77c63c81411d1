"""The host engine's plan for one source file: which tools, which flags,
the toolchain identity that keys the cache, and how to run the compile."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import Diagnostic, ToolchainError
from . import cargo, clang, toolchain

if TYPE_CHECKING:  # pydantic: imported by the planners, not by a cache hit's `identity`
    from .manifest import Toolchain


@dataclass
class Plan:
    identity: dict  # everything about the tools that can change the object
    flags: list[str]
    toolchain: Toolchain
    run: Callable[[Path], Path]  # work dir -> built object
    stage: str = "compile"  # the progress line's name


def plan(src: Path, stem: str, options) -> Plan:
    """The planner of the compiler the backend's dialect names."""
    from ..backends import dialect

    compiler = dialect(options.backend).compiler
    planner = PLANNERS.get(compiler)
    if planner is None:
        raise ToolchainError(f"build: the {options.backend} backend's output has no compiler (it is for reading)")
    return planner(src, stem, options)


def identity(options, compiler: str) -> tuple[dict, list[str]]:
    """A plan's (identity, flags) without generated sources: what keys the
    whole-output cache before anything is emitted. Tool versions come from the
    on-disk probe memo (keyed by each binary's path, size and mtime), so a
    warm build starts no tool to learn them."""
    if compiler == "cargo":
        tools = _aya_tools(options)
        return tools.identity, tools.flags
    if compiler == "clang":
        cc = toolchain.find_clang(options.clang)
        return _c_identity(cc, options), clang.flags(options.cpu, Path("<src>"))
    raise ToolchainError(f"build: the {options.backend} backend's output has no compiler (it is for reading)")


def _c_identity(cc: toolchain.Clang, options) -> dict:
    return {"clang": cc.version, "epoch": options.source_date_epoch}


def _plan_c(src: Path, stem: str, options) -> Plan:
    from .manifest import Toolchain

    source = src / f"{stem}.bpf.c"
    if not source.is_file():
        raise ToolchainError(f"build: the C backend produced no {source.name}")
    cc = toolchain.find_clang(options.clang)
    flags = clang.flags(options.cpu, Path("<src>"))

    def compile_object(work: Path) -> Path:
        return clang.compile_c(cc, source, work / f"{stem}.o", cpu=options.cpu,
                               source_date_epoch=options.source_date_epoch)

    return Plan(
        identity=_c_identity(cc, options), flags=flags,
        toolchain=Toolchain(compiler=cc.version, compiler_choice=cc.choice, llvm_version=_clang_llvm(cc.version),
                            linker="clang",
                            target_cpu=options.cpu, flags=flags),
        run=compile_object,
    )


def _clang_llvm(version_line: str) -> str | None:
    words = [w for w in version_line.split() if w[:1].isdigit()]
    return words[0] if words else None


@dataclass
class _AyaTools:
    rust: toolchain.Rust
    linker: str
    llvm: toolchain.Llvm | None
    linker_id: str
    vendor: Path | None
    cargo_version: str
    identity: dict
    flags: list[str]


def _aya_tools(options) -> _AyaTools:
    rust = toolchain.find_rust(options.rustc)
    linker, llvm, linker_id = _choose_linker(options.linker, rust)
    vendor = options.vendor_dir
    if vendor is None and os.environ.get("TATARA_VENDOR_DIR"):
        vendor = Path(os.environ["TATARA_VENDOR_DIR"])
    vendor = cargo.check_vendor_dir(vendor) if vendor is not None else None
    cargo_version = toolchain.probe([rust.cargo, "-V"]).strip() or str(rust.cargo)
    flags = ["cargo", *cargo.CARGO_BUILD, "rustflags:",
             *cargo.rustflags(options.cpu, "<crate>", "<cargo-home>", "<vendor>" if vendor else None)]
    ident = {"rustc": rust.version, "llvm": rust.llvm_version, "cargo": cargo_version, "linker": linker_id,
             "prebuilt_core": rust.prebuilt_core, "epoch": options.source_date_epoch}
    return _AyaTools(rust, linker, llvm, linker_id, vendor, cargo_version, ident, flags)


def _plan_aya(src: Path, stem: str, options) -> Plan:
    from .manifest import Toolchain

    if not (src / "Cargo.toml").is_file():
        raise ToolchainError(f"build: the aya backend produced no Cargo.toml in {src.name}/")
    tools = _aya_tools(options)
    lock = src / "Cargo.lock"
    # dependencies compile once per toolchain and lock (cargo.shared_dir); --no-cache builds in private
    shared = cargo.shared_dir(tools.rust, tools.linker_id, lock.read_bytes() if lock.is_file() else b"",
                              tools.vendor is not None, options.cpu) if options.use_cache else None
    job_args = dict(crate=src, rust=tools.rust, linker=tools.linker, llvm=tools.llvm, vendor_dir=tools.vendor,
                    cpu=options.cpu, source_date_epoch=options.source_date_epoch, shared=shared)

    def compile_object(work: Path) -> Path:
        return cargo.build(cargo.CargoJob(work=work, **job_args))

    return Plan(
        identity=tools.identity,
        flags=tools.flags,
        toolchain=Toolchain(compiler=tools.rust.version, llvm_version=tools.rust.llvm_version,
                            linker=tools.linker_id, target_cpu=options.cpu, cargo=tools.cargo_version,
                            flags=tools.flags),
        run=compile_object, stage="compile+link",
    )


PLANNERS: dict[str, Callable] = {"clang": _plan_c, "cargo": _plan_aya}


def _choose_linker(choice: str, rust: toolchain.Rust) -> tuple[str, toolchain.Llvm | None, str]:
    """("bpf-linker" | "llvm", tools for our driver, a description for the manifest)."""
    real = toolchain.find_bpf_linker()
    if choice == "bpf-linker" or (choice == "auto" and real is not None):
        if real is None:
            raise ToolchainError(Diagnostic("toolchain: --linker bpf-linker, but bpf-linker is not on PATH",
                                            notes=["install it (cargo install bpf-linker, built for LLVM "
                                                   f"{rust.llvm[0]}), or use our driver: --linker llvm"]))
        version = toolchain.probe([real, "--version"]).strip() or "bpf-linker"
        return "bpf-linker", None, version
    llvm = toolchain.find_llvm(rust)
    return "llvm", llvm, f"tatara-build LLVM driver (llvm-link/opt/llc {llvm.version_str})"

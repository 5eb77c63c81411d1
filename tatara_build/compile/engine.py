"""The host engine's plan for one source file: which tools, which flags,
the toolchain identity that keys the cache, and how to run the compile."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import Diagnostic, ToolchainError
from . import cargo, clang, toolchain
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


def _plan_c(src: Path, stem: str, options) -> Plan:
    source = src / f"{stem}.bpf.c"
    if not source.is_file():
        raise ToolchainError(f"build: the C backend produced no {source.name}")
    cc = toolchain.find_clang(options.clang)
    flags = clang.flags(options.cpu, Path("<src>"))

    def compile_object(work: Path) -> Path:
        return clang.compile_c(cc, source, work / f"{stem}.o", cpu=options.cpu,
                               source_date_epoch=options.source_date_epoch)

    return Plan(
        identity={"clang": cc.version, "epoch": options.source_date_epoch}, flags=flags,
        toolchain=Toolchain(compiler=cc.version, llvm_version=_clang_llvm(cc.version), linker="clang",
                            target_cpu=options.cpu, flags=flags),
        run=compile_object,
    )


def _clang_llvm(version_line: str) -> str | None:
    words = [w for w in version_line.split() if w[:1].isdigit()]
    return words[0] if words else None


def _plan_aya(src: Path, stem: str, options) -> Plan:
    if not (src / "Cargo.toml").is_file():
        raise ToolchainError(f"build: the aya backend produced no Cargo.toml in {src.name}/")
    rust = toolchain.find_rust(options.rustc)
    linker, llvm, linker_id = _choose_linker(options.linker, rust)
    vendor = options.vendor_dir
    if vendor is None and os.environ.get("TATARA_VENDOR_DIR"):
        vendor = Path(os.environ["TATARA_VENDOR_DIR"])
    vendor = cargo.check_vendor_dir(vendor) if vendor is not None else None
    cargo_version = toolchain.probe([rust.cargo, "-V"]).strip() or str(rust.cargo)
    flags = ["cargo", *cargo.CARGO_BUILD, "rustflags:",
             *cargo.rustflags(options.cpu, "<crate>", "<cargo-home>", "<vendor>" if vendor else None)]
    job_args = dict(crate=src, rust=rust, linker=linker, llvm=llvm, vendor_dir=vendor, cpu=options.cpu,
                    source_date_epoch=options.source_date_epoch)

    def compile_object(work: Path) -> Path:
        return cargo.build(cargo.CargoJob(work=work, **job_args))

    return Plan(
        identity={"rustc": rust.version, "llvm": rust.llvm_version, "cargo": cargo_version, "linker": linker_id,
                  "prebuilt_core": rust.prebuilt_core, "epoch": options.source_date_epoch},
        flags=flags,
        toolchain=Toolchain(compiler=rust.version, llvm_version=rust.llvm_version, linker=linker_id,
                            target_cpu=options.cpu, cargo=cargo_version, flags=flags),
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

"""The toolchain pins, written once in pins.json beside this file and read
by both sides: here (the aya backend's nightly and aya-ebpf version, the
C backend's preferred LLVM major) and by nix/pins.nix (`builtins.fromJSON`),
so the Python package and the Nix build cannot disagree. Bump them together:
the nightly's LLVM major must equal bpf-linker's (bitcode from a newer LLVM
is unreadable: "Invalid record", bpf-linker#387), and aya-ebpf's version must
be the one backends/aya_lock.toml holds (a test checks both)."""

from __future__ import annotations

import json
from pathlib import Path

PINS: dict = json.loads((Path(__file__).with_name("pins.json")).read_text(encoding="utf-8"))

NIGHTLY_DATE: str = PINS["nightly"]  # rust-overlay's nightly: 1.99.0-nightly on LLVM 22
NIGHTLY = f"nightly-{NIGHTLY_DATE}"  # rust-toolchain.toml's channel
RUST_VERSION: str = PINS["rustVersion"]
LLVM_MAJOR: int = PINS["llvmMajor"]
AYA_EBPF_VERSION: str = PINS["ayaEbpf"]
NIX_KERNEL: str = PINS["kernel"]  # nixpkgs' linuxKernel.packages attribute the NixOS VM test boots

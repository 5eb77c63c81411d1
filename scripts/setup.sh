#!/usr/bin/env bash
# Idempotent setup for a fresh Debian bookworm machine (as root): the Debian
# packages tatara-build drives, then a venv with the package and test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

# clang-22 (bookworm-security): the C backend's compiler, the LLVM major of the
# pinned nightly and of nixpkgs' llvmPackages_22; clang (14, Debian's default)
# stays for the compiler matrix; llvm/libbpf-dev: C backend; bpftool: loader;
# qemu/busybox/cpio: the VM; gcc/libelf-dev/zlib1g-dev/libc6-dev (+ libbpf-dev):
# the VM guest's static libbpf tool (vm/tool.py); rustc-web + bpf core + llvm-22: the Rust link
# driver test; rustfmt-web: the generated Rust is checked with rustfmt;
# nix-bin: parsing and evaluating the Nix library in tests;
# debian-archive-keyring: the VM kernels come from Debian's suites (5.10 to 7.2).
PACKAGES=(python3-venv clang clang-22 llvm libbpf-dev bpftool qemu-system-x86 busybox-static
          gcc libc6-dev libelf-dev zlib1g-dev cpio zstd nix-bin rustc-web cargo-web libstd-rust-web-dev-bpf llvm-22 llvm-22-tools
          rustfmt-web debian-archive-keyring)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/tatara-build ] || [ pyproject.toml -nt .venv/.installed ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi

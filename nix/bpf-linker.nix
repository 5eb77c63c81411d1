# bpf-linker built against the LLVM of the pinned nightly, not nixpkgs' own
# rustc (its default `llvmPackagesForLinker ? rustc.llvmPackages`): the pinned
# nightly is LLVM 22 (pins.nix), and bpf-linker 0.10.x/0.11.x both have an
# `llvm-22` feature, selected from this package set's major version.
{ pkgs, toolchain }:
pkgs.bpf-linker.override {
  llvmPackagesForLinker = toolchain.llvmPackages;
}

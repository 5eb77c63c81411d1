# Every version the Nix build depends on, in one place shared with the
# Python package: tatara_build/pins.json (tatara_build/pins.py reads the
# same file). Bump them together there: the nightly's LLVM major must equal
# bpf-linker's (bitcode from a newer LLVM is unreadable: "Invalid record",
# bpf-linker#387).
#   nightly      rust-overlay (rev in flake.lock) has every nightly up to
#                2026-08-03 as 1.99.0-nightly on LLVM 22 (22.1.8 by
#                mid-July); LLVM 23 came later.
#   rustVersion  that nightly's version
#   llvmMajor    its LLVM major (bpf-linker's and the C backend's clang)
#   ayaEbpf      aya-ebpf's version: its pinned closure lives in the aya
#                backend's Cargo.lock (aya_lock.toml); this is only recorded
#                in the manifest's provenance
#   kernel       the kernel the NixOS VM test boots (the programs' `:kernel "6.1"`)
builtins.fromJSON (builtins.readFile ../tatara_build/pins.json)

# Every version the Nix build depends on, in one place. Bump them together:
# the nightly's LLVM major must equal bpf-linker's (bitcode from a newer LLVM
# is unreadable: "Invalid record", bpf-linker#387).
{
  # rust-overlay (rev in flake.lock) has every nightly up to 2026-08-03 as
  # 1.99.0-nightly on LLVM 22 (22.1.8 by mid-July); LLVM 23 came later.
  nightly = "2026-07-30";
  rustVersion = "1.99.0-nightly";
  llvmMajor = 22;

  # aya-ebpf's pinned closure lives in the aya backend's Cargo.lock; this is
  # only recorded in the manifest's provenance.
  ayaEbpf = "0.2.1";

  # Kernel the NixOS VM test boots (the programs' `:kernel "6.1"`).
  kernel = "linux_6_1";
}

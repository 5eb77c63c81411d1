# The tatara-build Nix library, crane style: one small function per file,
# wired here; flake.nix only picks outputs from this set.
{
  pkgs, # nixpkgs with rust-overlay applied
  src ? ../., # the tatara-build source tree
  provenance ? { }, # recorded in every manifest (flake input revs)
  pins ? import ./pins.nix,
  # The Rust nightly and its LLVM (toolchain.nix's attributes), to replace the pin.
  toolchain ? import ./toolchain.nix { inherit pkgs pins; },
}:
let
  bpf-linker = import ./bpf-linker.nix { inherit pkgs toolchain; };
  tatara-build = import ./tatara-build.nix { inherit pkgs src; };
  mkVendorDir = import ./vendor.nix { inherit pkgs; };
  mkBpfCrate = import ./crate.nix { inherit pkgs tatara-build; };
  libraryLock = import ./library-lock.nix { inherit pkgs toolchain; };

  # The aya backend's pinned closure of aya-ebpf =0.2.1 ([[package]] entries
  # with checksums, which it copies into every generated Cargo.lock), and
  # the repo's copy of the nightly's library/Cargo.lock: plain files, so
  # evaluation never reads a derivation's output (no import-from-derivation).
  ayaLock = src + "/tatara_build/backends/aya_lock.toml";
  repoLibraryLock = if builtins.pathExists ./rust-library-Cargo.lock then ./rust-library-Cargo.lock else null;

  mkBpfObject = import ./object.nix {
    inherit pkgs tatara-build toolchain bpf-linker mkBpfCrate mkVendorDir ayaLock repoLibraryLock;
    checkLibraryLock = libraryLock.mkCheck;
    provenance = provenance // { aya-ebpf = pins.ayaEbpf; };
  };

  # One package per examples/<stem>.tlisp, named <stem> (what
  # `tatara-build build --engine nix` asks for).
  exampleFiles = builtins.filter (f: builtins.match "[a-z][a-z0-9-]*[.]tlisp" f != null)
    (builtins.attrNames (builtins.readDir (src + "/examples")));
  stem = f: builtins.head (builtins.match "(.*)[.]tlisp" f);
  examples = builtins.listToAttrs (map (f: {
    name = stem f;
    value = mkBpfObject { src = src + "/examples/${f}"; };
  }) exampleFiles);

  vmTest = import ./vm-test.nix {
    inherit pkgs tatara-build pins;
    objects = builtins.mapAttrs (name: object: {
      inherit object;
      source = src + "/examples/${name}.tlisp";
    }) examples;
  };

  devShell = pkgs.mkShell {
    packages = [
      toolchain.rust
      bpf-linker
      toolchain.llvmPackages.clang
      pkgs.libbpf
      pkgs.bpftools
      pkgs.qemu
      tatara-build
    ];
    # For `tatara-build build --backend c` with the wrapped clang.
    hardeningDisable = [ "all" ];
  };
in
{
  inherit pins toolchain bpf-linker tatara-build mkVendorDir mkBpfCrate mkBpfObject examples vmTest devShell;
  # `nix build .#rust-library-lock`: the nightly's library/Cargo.lock, to
  # create or refresh nix/rust-library-Cargo.lock.
  rust-library-lock = libraryLock.fromToolchain;
  # `mkBpfObject { libraryLock = libraryLockFromRustSrc; }`: no copy needed,
  # but evaluation reads rust-src (import-from-derivation; see library-lock.nix).
  libraryLockFromRustSrc = libraryLock.fromRustSrc;
}

{
  description = "tatara-build: tatara-lisp eBPF programs to reproducible, verifier-checked BPF objects";

  # Pinned by rev and narHash in flake.lock; pins.nix holds the nightly date,
  # its LLVM major (bpf-linker is built against the same) and the kernel.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs = { self, nixpkgs, rust-overlay }:
    let
      # BPF objects are built and VM-tested for x86_64 kernels.
      systems = [ "x86_64-linux" ];
      forAll = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);

      # Input revs go into every manifest.json.
      provenance = {
        nixpkgs = nixpkgs.rev or "unknown";
        nixpkgs-narHash = nixpkgs.narHash or "unknown";
        rust-overlay = rust-overlay.rev or "unknown";
        rust-overlay-narHash = rust-overlay.narHash or "unknown";
      };

      # nixpkgs with rust-overlay, imported once per system.
      pkgsFor = forAll (system: import nixpkgs { inherit system; overlays = [ rust-overlay.overlays.default ]; });

      # The library (nix/default.nix) on any package set: ours, or a
      # caller's, given rust-overlay if it lacks `rust-bin`.
      mkLib = { pkgs, toolchain ? null }:
        import ./nix ({
          pkgs = if pkgs ? rust-bin then pkgs else pkgs.extend rust-overlay.overlays.default;
          src = ./.;
          inherit provenance;
        } // (if toolchain != null then { inherit toolchain; } else { }));

      tatara = builtins.mapAttrs (_: pkgs: mkLib { inherit pkgs; }) pkgsFor;
      forSystems = f: builtins.mapAttrs (_: f) tatara;
    in
    {
      # nix build .#drop-syn  ->  result/drop-syn.o, result/manifest.json
      # nix build / nix profile install  ->  the tatara-build CLI
      packages = forSystems (t: t.examples // {
        default = t.tatara-build;
        inherit (t) tatara-build rust-library-lock;
      });

      apps = forSystems (t: {
        default = {
          type = "app";
          program = "${t.tatara-build}/bin/tatara-build";
        };
      });

      devShells = forSystems (t: { default = t.devShell; });

      # nix flake check: every example object builds, then the NixOS VM on
      # the pinned kernel loads them all and runs their packet tests.
      checks = forSystems (t: t.examples // { vm-verifier = t.vmTest; });

      # nix fmt
      formatter = builtins.mapAttrs (_: pkgs: pkgs.nixfmt) pkgsFor;

      # `tatara-build` in any package set (the CLI only; objects need the
      # pinned nightly, see lib).
      overlays.default = final: prev: {
        tatara-build = import ./nix/tatara-build.nix { pkgs = final; src = ./.; };
      };

      # In your own flake, with your nixpkgs (rust-overlay is added if absent):
      #   tatara.lib.mkBpfObject { inherit pkgs; src = ./my.tlisp; }              # aya
      #   tatara.lib.mkBpfObject { inherit pkgs; src = ./my.tlisp; backend = "c"; }
      # or once per package set:  t = tatara.lib.mkLib { inherit pkgs; };  t.mkBpfObject { … }
      # `toolchain` (see nix/toolchain.nix) replaces the pinned nightly.
      lib = {
        inherit mkLib;
        mkBpfObject = { pkgs, toolchain ? null, ... }@args:
          (mkLib { inherit pkgs toolchain; }).mkBpfObject (builtins.removeAttrs args [ "pkgs" "toolchain" ]);
      };
    };
}

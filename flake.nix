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

      # Input revs go into every manifest.json.
      provenance = {
        nixpkgs = nixpkgs.rev or "unknown";
        nixpkgs-narHash = nixpkgs.narHash or "unknown";
        rust-overlay = rust-overlay.rev or "unknown";
        rust-overlay-narHash = rust-overlay.narHash or "unknown";
      };

      tataraFor = system: import ./nix {
        pkgs = import nixpkgs { inherit system; overlays = [ rust-overlay.overlays.default ]; };
        src = ./.;
        inherit provenance;
      };
      forSystems = f: builtins.listToAttrs (map (system: {
        name = system;
        value = f (tataraFor system);
      }) systems);
    in
    {
      # nix build .#drop-syn  ->  result/drop-syn.o, result/manifest.json
      packages = forSystems (t: t.examples // {
        default = t.examples.drop-syn;
        inherit (t) tatara-build;
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

      # In your own flake:
      #   tatara.lib.mkBpfObject { src = ./my.tlisp; }            # aya
      #   tatara.lib.mkBpfObject { src = ./my.tlisp; backend = "c"; }
      lib.mkBpfObject = { system ? "x86_64-linux", ... }@args:
        (tataraFor system).mkBpfObject (builtins.removeAttrs args [ "system" ]);
    };
}

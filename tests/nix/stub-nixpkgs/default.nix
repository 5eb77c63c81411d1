# `import nixpkgs { system; overlays; }` for flake.nix, backed by the stub.
args: import ../stub-pkgs.nix args

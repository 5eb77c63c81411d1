# A stand-in for the few nixpkgs attributes nix/ uses, so the library can be
# evaluated offline: every builder returns its arguments (under `args`) plus
# an outPath, which lets the tests read exactly what a derivation would run.
{ system ? "x86_64-linux", overlays ? [ ] }:
let
  drv = name: args: args // { inherit args; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  pkg = name: version: drv "${name}-${version}" { inherit name version; };

  lib = {
    hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
    removePrefix = p: s:
      let n = builtins.stringLength p;
      in if lib.hasPrefix p s then builtins.substring n (builtins.stringLength s - n) s else s;
    makeBinPath = ps: builtins.concatStringsSep ":" (map (p: "${p}/bin") ps);
    escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
    licenses.mit = "mit";
    platforms.linux = [ system ];
  };

  llvmPackages = major: minor: {
    llvm = pkg "llvm" "${toString major}.${minor}";
    clang = pkg "clang-wrapper" "${toString major}.${minor}";
  };

  base = {
    inherit lib system;
    stdenv.mkDerivation = args: drv "${args.pname}-${args.version}" args;
    mkShell = args: drv "shell" args;
    runCommand = name: env: script: drv name (env // { inherit name script; });
    # Like nixpkgs' own, it reads the lock while evaluating: given a file
    # inside a derivation's output that is import-from-derivation, which
    # `allow-import-from-derivation = false` turns into an error.
    # Its output path, like the real one's, depends on the lock's contents.
    rustPlatform.importCargoLock = args:
      let crates = map (p: "${p.name}-${p.version}") (builtins.fromTOML (builtins.readFile args.lockFile)).package;
      in drv "cargo-vendor-${builtins.hashString "sha256" (builtins.toJSON crates)}" (args // { inherit crates; });
    testers.runNixOSTest = args: drv "nixos-test-${args.name}" args;

    llvmPackages_21 = llvmPackages 21 "1.8";
    llvmPackages_22 = llvmPackages 22 "1.8";
    bpf-linker = pkg "bpf-linker" "0.10.4" // {
      override = args: pkg "bpf-linker" "0.10.4" // { overrideArgs = args; };
    };
    bpftools = pkg "bpftools" "7.6";
    qemu = pkg "qemu" "10.1";
    nixfmt = pkg "nixfmt" "1.0";
    libbpf = pkg "libbpf" "1.6";
    linuxHeaders = pkg "linux-headers" "6.16";
    linuxKernel.packages = {
      linux_6_1 = { kernel = pkg "linux" "6.1.150"; };
      linux_6_12 = { kernel = pkg "linux" "6.12.50"; };
    };

    python3Packages = {
      buildPythonApplication = args: drv "${args.pname}-${args.version}" args;
      toPythonModule = p: p;
      setuptools = pkg "setuptools" "80";
      typer = pkg "typer" "0.16";
      pydantic = pkg "pydantic" "2.11";
      sh = pkg "sh" "2.2";
      rich = pkg "rich" "14";
    };
  };
  # Overlays see the same set as `final` and `prev` (enough for rust-overlay's stub).
  apply = pkgs: overlays: builtins.foldl' (pkgs: overlay: pkgs // overlay pkgs pkgs) pkgs overlays;
  withExtend = pkgs: pkgs // { extend = overlay: withExtend (apply pkgs [ overlay ]); };
in
withExtend (apply base overlays)

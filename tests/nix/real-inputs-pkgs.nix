# nixpkgs as far as these machines can have it: the real `lib` (the public
# nix-community/nixpkgs.lib tree), real overlays (rust-overlay), and
# stand-ins only for the builders and packages nixpkgs would provide. Every
# stand-in makes a real derivation (never built: its builder is /bin/false),
# so Nix itself computes the derivation graph: store paths, fixed-output
# fetches with their hashes, and which derivation depends on which.
# Used by test_real_inputs.py; the caller passes `lib`.
{ lib, system ? "x86_64-linux", overlays ? [ ], config ? { } }:
let
  platform = lib.systems.elaborate system;

  # Attribute values a derivation can take (with __structuredAttrs, nested
  # sets become JSON); functions are dropped.
  envOf = attrs: lib.filterAttrs (n: v: !(builtins.isFunction v)) (builtins.removeAttrs attrs [ "passthru" "meta" ]);

  mkDrv = args:
    let
      name = args.name or "${args.pname}-${args.version}";
      drv = derivation ((envOf args) // {
        inherit name system;
        builder = "/bin/false";
        __structuredAttrs = true;
      });
    in
    drv // (args.passthru or { }) // {
      meta = args.meta or { };
      passthru = args.passthru or { };
      version = args.version or (builtins.parseDrvName name).version;
      pname = args.pname or (builtins.parseDrvName name).name;
      overrideAttrs = f: mkDerivation (args // f args);
    };

  # Both nixpkgs forms: an attribute set, or `finalAttrs: { … }`.
  mkDerivation = argsOrFun:
    if builtins.isFunction argsOrFun then mkDrv (lib.fix argsOrFun) else mkDrv argsOrFun;

  # A named package with a version, for the packages our flake only refers to.
  pkg = pname: version: extra: mkDerivation ({ inherit pname version; } // extra);

  stdenvFor = cc: {
    inherit mkDerivation system cc;
    hostPlatform = platform;
    buildPlatform = platform;
    targetPlatform = platform;
    inherit (platform) isLinux isDarwin;
    shell = "/bin/sh";
  };

  llvmPackagesFor = version: lib.makeScope lib.callPackageWith (self: {
    llvm = pkg "llvm" version { };
    libllvm = self.llvm;
    clang = pkg "clang-wrapper" version { };
    lld = pkg "lld" version { };
    inherit version;
  });

  nixpkgsFun = final: {
    inherit lib system config;
    path = "/nonexistent-nixpkgs"; # not used on the paths our flake takes
    callPackage = lib.callPackageWith final;
    callPackages = lib.callPackagesWith final;
    newScope = extra: lib.callPackageWith (final // extra);
    extend = overlay: import ./real-inputs-pkgs.nix { inherit lib system config; overlays = overlays ++ [ overlay ]; };

    stdenv = stdenvFor (pkg "gcc-wrapper" "15.2.0" { } // {
      # What rust-overlay's rustc component copies from the cc-wrapper.
      bintools = pkg "binutils-wrapper" "2.44" { } // {
        expandResponseParams = "expand-response-params";
        shell = "/bin/sh";
        suffixSalt = "x86_64_unknown_linux_gnu";
        wrapperName = "BINTOOLS_WRAPPER";
        coreutils_bin = "coreutils";
      };
    });
    stdenvNoCC = stdenvFor null;
    pkgsTargetTarget = final;
    pkgsHostHost = final;
    pkgsBuildHost = final;
    buildPackages = final;

    fetchurl = { url ? null, urls ? [ ], sha256 ? "", hash ? "", name ? baseNameOf (if url != null then url else builtins.head urls), ... }:
      derivation {
        inherit name system;
        builder = "/bin/false";
        urls = if url != null then [ url ] else urls;
        outputHashMode = "flat";
        outputHashAlgo = if hash != "" then "" else "sha256";
        outputHash = if hash != "" then hash else sha256;
      };

    runCommand = name: env: script: mkDerivation (env // { inherit name; buildCommand = script; });
    runCommandLocal = final.runCommand;
    symlinkJoin = args: mkDerivation (args // { buildCommand = "lndir ${toString args.paths}"; });
    writeShellScriptBin = name: text: final.runCommand name { inherit text; } "";
    mkShell = args: mkDerivation ({ name = args.name or "nix-shell"; } // args);

    # The few nixpkgs packages rust-overlay's builders mention.
    bash = pkg "bash" "5.3" { };
    curl = pkg "curl" "8.15.0" { };
    gnutar = pkg "gnutar" "1.35" { };
    autoPatchelfHook = pkg "auto-patchelf-hook" "0" { };
    makeWrapper = pkg "make-wrapper" "0" { };
    bintools = pkg "binutils-wrapper" "2.44" { };
    lndir = pkg "lndir" "1.0.5" { };
    zlib = pkg "zlib" "1.3.1" { };
    gccForLibs = pkg "gcc" "15.2.0" { } // { lib = pkg "gcc-lib" "15.2.0" { }; libgcc = pkg "libgcc" "15.2.0" { }; };
    libiconv = pkg "libiconv" "1.17" { };
    rustc = pkg "rustc" "1.95.0" { };

    # What nix/ asks of nixpkgs (see nix/README.md for where each was confirmed).
    llvmPackages_22 = llvmPackagesFor "22.1.8";
    bpf-linker = lib.makeOverridable
      ({ llvmPackagesForLinker ? final.rustc.llvmPackages or (llvmPackagesFor "21.1.8") }:
        pkg "bpf-linker" "0.11.1" { nativeBuildInputs = [ llvmPackagesForLinker.llvm ]; })
      { };
    bpftools = pkg "bpftools" "7.6.0" { };
    qemu = pkg "qemu" "10.1.0" { };
    libbpf = pkg "libbpf" "1.6.2" { };
    linuxHeaders = pkg "linux-headers" "6.16" { };
    nixfmt = pkg "nixfmt" "1.1.0" { };
    linuxKernel.packages.linux_6_1 = { kernel = pkg "linux" "6.1.150" { }; };
    testers.runNixOSTest = test: mkDerivation {
      name = "vm-test-run-${test.name}";
      # What the NixOS test driver receives: the script, the node's
      # kernel and packages (the node module applied to no arguments).
      testScript = test.testScript;
      nodePackages = (test.nodes.machine { }).environment.systemPackages;
      kernel = (test.nodes.machine { }).boot.kernelPackages.kernel;
      pythonPackages = test.extraPythonPackages final.python3Packages;
    };
    rustPlatform.importCargoLock = { lockFile, ... }:
      # As nixpkgs' does: read the lock while evaluating, fetch each registry
      # crate by its checksum.
      let
        packages = (builtins.fromTOML (builtins.readFile lockFile)).package;
        registry = builtins.filter (p: (p.source or "") == "registry+https://github.com/rust-lang/crates.io-index") packages;
        crate = p: final.fetchurl {
          name = "crate-${p.name}-${p.version}.tar.gz";
          url = "https://crates.io/api/v1/crates/${p.name}/${p.version}/download";
          sha256 = p.checksum;
        };
      in
      mkDerivation { name = "cargo-vendor-dir"; crates = map crate registry; };
    python3Packages = {
      buildPythonApplication = mkDerivation;
      toPythonModule = p: p;
      setuptools = pkg "python3.13-setuptools" "80.9.0" { };
      typer = pkg "python3.13-typer" "0.16.0" { };
      pydantic = pkg "python3.13-pydantic" "2.11.7" { };
      sh = pkg "python3.13-sh" "2.2.2" { };
      rich = pkg "python3.13-rich" "14.1.0" { };
    };
  };
in
lib.fix (lib.foldl' (f: overlay: lib.extends overlay f) nixpkgsFun overlays)

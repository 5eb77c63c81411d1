# mkBpfObject: one .tlisp file -> $out/<stem>.o + manifest.json + src/, by
# running the same command as the host engine:
#   tatara-build build FILE --backend aya --engine host --linker bpf-linker
#                           --vendor-dir <crates vendored by Nix>
# Nix only supplies the pinned toolchain and the crates; the CLI does the rest.
{
  pkgs, tatara-build, toolchain, bpf-linker, mkBpfCrate, mkVendorDir,
  # The aya backend's pinned Cargo.lock (aya-ebpf's closure) and the repo's
  # copy of the nightly's library/Cargo.lock (or null): both plain files,
  # so vendoring reads no derivation output while evaluating.
  ayaLock,
  repoLibraryLock ? null,
  # library-lock.nix: compares a library lock with the nightly's at build time.
  checkLibraryLock,
  provenance ? { },
}:
let
  # "…/drop-syn.tlisp" or "/nix/store/<hash>-drop-syn.tlisp" -> "drop-syn"
  stemOf = src:
    let m = builtins.match "(.*/)?([0-9a-z]{32}-)?([^/]+)[.]tlisp" (toString src);
    in if m == null then throw "mkBpfObject: src `${toString src}` is not a .tlisp file; pass `name`"
       else builtins.elemAt m 2;
in
{
  src,
  # Objects are named after the file stem (drop-syn.tlisp -> drop-syn.o).
  name ? stemOf src,
  backend ? "aya",
  # Cargo.lock of the generated crate: the aya backend copies its pinned lock
  # into every crate it emits.
  cargoLock ? ayaLock,
  # The nightly's library/Cargo.lock for build-std (see library-lock.nix), a
  # path in the caller's tree; checked against rust-src when building.
  libraryLock ? repoLibraryLock,
  extraFlags ? [ ],
}:
let
  checkName = n:
    if builtins.match "[a-z][a-z0-9-]*" n != null then n
    else throw "mkBpfObject: name `${n}` must match [a-z][a-z0-9-]* (it names the object file)";
  stem = checkName name;

  # Without a library lock the check below fails the build with what to do;
  # the vendor directory then holds the crate's dependencies only.
  vendorDir = mkVendorDir {
    name = "${stem}-vendor";
    lockFiles = [ cargoLock ] ++ (if libraryLock != null then [ libraryLock ] else [ ]);
  };
  libraryLockCheck = checkLibraryLock libraryLock;

  # bpf-linker reads rustc's LLVM bitcode: it needs the same LLVM major
  # (a newer major's bitcode is unreadable, bpf-linker#387).
  checkLinkerLlvm = ''
    rustc_llvm=$(rustc -vV | sed -n 's/^LLVM version: //p')
    linker_llvm=${toolchain.llvmPackages.llvm.version}
    if [ "''${rustc_llvm%%.*}" != "''${linker_llvm%%.*}" ]; then
      echo "rustc uses LLVM $rustc_llvm but bpf-linker was built with LLVM $linker_llvm:" \
           "the majors must match; bump llvmMajor in nix/pins.nix together with the nightly" >&2
      exit 1
    fi
  '';

  backends = {
    aya = {
      nativeBuildInputs = [ toolchain.rust bpf-linker ];
      buildInputs = [ ];
      flags = [ "--linker" "bpf-linker" "--vendor-dir" "${vendorDir}" ];
      # Name the toolchain explicitly (the build engine would otherwise probe
      # Debian packages and PATH).
      env = {
        TATARA_RUSTC = "${toolchain.rust}/bin/rustc";
        TATARA_CARGO = "${toolchain.rust}/bin/cargo";
      };
      # The library lock check is a build input: a missing or stale copy fails
      # the build there, with what to do (library-lock.nix).
      preBuild = checkLinkerLlvm + "test -e ${libraryLockCheck}\n";
      pins = {
        nightly = toolchain.nightly;
        rust = toolchain.rustVersion;
        llvm = toolchain.llvmPackages.llvm.version;
        bpf-linker = bpf-linker.version;
      };
    };
    # The C backend needs no crates; clang is the cc-wrapper's, whose
    # hardening flags break `-target bpf` (disabled below).
    c = {
      nativeBuildInputs = [ toolchain.llvmPackages.clang ];
      buildInputs = [ pkgs.libbpf pkgs.linuxHeaders ];
      flags = [ ];
      env = { };
      preBuild = "";
      pins.clang = toolchain.llvmPackages.clang.version;
    };
  };
  chosen = backends.${backend} or (throw "mkBpfObject: unknown backend `${backend}` (aya or c)");

  buildCmd = builtins.concatStringsSep " " ([
    "tatara-build" "build" "${stem}.tlisp" "--backend" backend "--engine" "host"
  ] ++ chosen.flags ++ map pkgs.lib.escapeShellArg extraFlags ++ [ "-o" "\"$NIX_BUILD_TOP/out\"" ]);
in
pkgs.stdenv.mkDerivation {
  pname = stem;
  version = "${backend}-${tatara-build.version}";
  inherit src;
  dontUnpack = true;
  dontConfigure = true;
  # Objects are installed byte for byte: no stripping or patching.
  dontFixup = true;

  nativeBuildInputs = [ tatara-build ] ++ chosen.nativeBuildInputs;
  inherit (chosen) buildInputs;

  # cc-wrapper hardening (zerocallusedregs, stack protector, fortify, pic)
  # adds flags clang rejects or miscompiles for `-target bpf` (nixpkgs#325587).
  hardeningDisable = [ "all" ];

  # The build engine records TATARA_PROVENANCE (JSON) in manifest.json:
  # the flake input revs and the toolchain pins.
  env = chosen.env // {
    TATARA_PROVENANCE = builtins.toJSON (provenance // chosen.pins // { inherit backend; });
  };

  buildPhase = ''
    runHook preBuild
    export HOME=$TMPDIR XDG_CACHE_HOME=$TMPDIR/cache
    # The host engine's default, so both engines give the same object.
    export SOURCE_DATE_EPOCH=0
    ${chosen.preBuild}
    cp $src ${stem}.tlisp
    ${buildCmd}
    runHook postBuild
  '';

  # The CLI writes OUT atomically via a sibling temp dir, which cannot live
  # in /nix/store, so it builds under $NIX_BUILD_TOP and is copied.
  installPhase = ''
    runHook preInstall
    cp -r "$NIX_BUILD_TOP/out" $out
    runHook postInstall
  '';

  passthru = {
    inherit vendorDir backend libraryLockCheck;
    crate = mkBpfCrate { inherit src backend; name = stem; };
    object = "${stem}.o";
  };

  meta.description = "BPF object ${stem}.o built by tatara-build (${backend} backend)";
}

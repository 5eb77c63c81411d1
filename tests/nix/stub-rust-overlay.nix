# rust-overlay's `rust-bin.nightly.<date>.minimal.override { extensions; }`,
# recording the date and the extensions asked for. It offers the nightlies
# 2026-07-01 .. 2026-08-03: at the locked rust-overlay rev those are all
# 1.99.0-nightly on LLVM 22 (later ones moved to LLVM 23), so pinning any
# other date fails evaluation here, as it would break bpf-linker there.
let
  pad = n: if n < 10 then "0${toString n}" else toString n;
  dates = builtins.genList (d: "2026-07-${pad (d + 1)}") 31
    ++ builtins.genList (d: "2026-08-${pad (d + 1)}") 3;
  nightly = date: {
    minimal.override = args: {
      name = "rust-minimal-nightly-${date}";
      inherit date;
      inherit (args) extensions;
      targets = args.targets or [ ];
      outPath = "/nix/store/00000000000000000000000000000000-rust-nightly-${date}";
      # A real (never built) derivation, so that reading a file from it
      # while evaluating is import-from-derivation, as with rust-overlay's.
      passthru.availableComponents.rust-src = derivation {
        name = "rust-src-nightly-${date}";
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" "echo the stub rust-src is never built; exit 1" ];
      };
    };
  };
in
{
  rev = "292249772330735cb32b90dedf44feddec40e7d0";
  narHash = "sha256-DauSP0ACycrq3MEEmDz/Scsxhs9TPBTexwKbTuE8Bw8=";
  overlays.default = final: prev: {
    rust-bin.nightly = builtins.listToAttrs (map (date: { name = date; value = nightly date; }) dates);
  };
}

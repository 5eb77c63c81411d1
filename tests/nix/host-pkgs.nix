# Just enough of nixpkgs to *really build* nix/object.nix and nix/crate.nix
# with Nix 2.8 and this machine's tools (no nixpkgs can be fetched here):
# derivations run the same phases with bash, PATH made of the inputs' bin/
# plus /usr/bin. `hostPath` entries are plain strings, so nothing is copied.
{ system ? "x86_64-linux" }:
let
  binPath = inputs: builtins.concatStringsSep ":" (map (p: "${p}/bin") inputs ++ [ "/usr/bin" "/bin" ]);
  run = name: attrs: script: derivation (attrs // {
    inherit name system;
    builder = "/bin/bash";
    # The final `:` keeps bash from exec'ing the script's last command:
    # Nix 2.8 without a sandbox then often reports a builder that exits at
    # once as "failed due to signal 9" (4 of 8 `mkdir -p` builds here).
    args = [ "-euo" "pipefail" "-c" "runHook() { :; }; cd \"$NIX_BUILD_TOP\"\n${script}\n:" ];
  });
  lib = {
    escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
  };
in
{
  inherit lib;
  stdenv.mkDerivation = args:
    let
      plain = builtins.removeAttrs args [ "passthru" "meta" "env" "nativeBuildInputs" "buildInputs" "pname" "version" ];
    in
    run "${args.pname}-${args.version}"
      (plain // (args.env or { }) // { PATH = binPath (args.nativeBuildInputs or [ ]); })
      "${args.buildPhase}\n${args.installPhase}"
    // (args.passthru or { });
  runCommand = name: env: script:
    run name ((builtins.removeAttrs env [ "nativeBuildInputs" "passthru" ]) // {
      PATH = binPath (env.nativeBuildInputs or [ ]);
    }) script;
  libbpf = "/usr";
  linuxHeaders = "/usr";
}

# One `cargo vendor`-layout directory from several Cargo.lock files: the
# generated crate's (aya-ebpf and its closure) and the nightly's
# library/Cargo.lock (build-std). Every crate is fetched by its lock checksum
# (importCargoLock); a crate in both locks is linked once.
{ pkgs }:
{ name ? "tatara-vendor", lockFiles }:
let
  vendored = map (lockFile: pkgs.rustPlatform.importCargoLock { inherit lockFile; }) lockFiles;
in
pkgs.runCommand name { passthru = { inherit lockFiles vendored; }; } ''
  mkdir -p $out
  for dir in ${builtins.concatStringsSep " " (map toString vendored)}; do
    for crate in "$dir"/*; do
      base=$(basename "$crate")
      [ "$base" = Cargo.lock ] && continue
      [ -e "$out/$base" ] || ln -s "$(readlink -f "$crate")" "$out/$base"
    done
  done
''

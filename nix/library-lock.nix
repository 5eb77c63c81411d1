# `-Z build-std=core` makes cargo resolve the standard library's own
# workspace, so its crates are vendored too, from the nightly's
# library/Cargo.lock. That file lives in rust-src, a derivation: reading it
# while evaluating would be import-from-derivation, which Hydra and many CI
# setups forbid. So the lock is kept in the repository as data for the
# pinned nightly (nix/rust-library-Cargo.lock), vendored from there, and
# compared with rust-src's copy by `check` at build time.
{ pkgs, toolchain }:
let
  inherit (toolchain) nightly;
  # The file inside rust-src (a store path string: building it is fine,
  # reading it during evaluation is not).
  fromRustSrc = "${toolchain.rustSrc}/lib/rustlib/src/rust/library/Cargo.lock";
  update = "nix build .#rust-library-lock && cp --no-preserve=mode result nix/rust-library-Cargo.lock";
in
{
  # For callers who allow import-from-derivation: `mkBpfObject { libraryLock
  # = <this>; }` reads the lock out of rust-src while evaluating, no copy needed.
  inherit fromRustSrc;

  # The nightly's lock as a package: how the repository's copy is made.
  fromToolchain = pkgs.runCommand "rust-library-Cargo.lock-${nightly}" { } ''
    cp ${fromRustSrc} $out
  '';

  # A derivation that fails the build, with what to do, unless `lockFile`
  # (a path, or null when there is no copy) is the nightly's own lock.
  mkCheck = lockFile:
    pkgs.runCommand "rust-library-lock-check-${nightly}" { } (
      if lockFile == null then ''
        echo "error: no copy of nightly ${nightly}'s library/Cargo.lock (needed to vendor the" >&2
        echo "standard library's crates for -Z build-std without import-from-derivation)." >&2
        echo "Make it on a machine that can fetch the toolchain: ${update}" >&2
        echo "(or pass mkBpfObject a libraryLock)" >&2
        exit 1
      '' else ''
        if ! cmp -s ${lockFile} ${fromRustSrc}; then
          echo "error: ${baseNameOf (toString lockFile)} is not nightly ${nightly}'s library/Cargo.lock" >&2
          echo "(bumped the nightly in nix/pins.nix without its lock?). Differences:" >&2
          diff -u ${lockFile} ${fromRustSrc} | head -n 40 >&2 || true
          echo "Update it: ${update}" >&2
          exit 1
        fi
        echo "${nightly}" > $out
      '');
}

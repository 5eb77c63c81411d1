# The pinned Rust nightly from rust-overlay, with rust-src for
# `-Z build-std=core`: the nightly manifests carry no rust-std for
# bpfel-unknown-none, so core is built from source and the target is not
# listed in `targets`.
{ pkgs, pins ? import ./pins.nix }:
let
  rust = pkgs.rust-bin.nightly.${pins.nightly}.minimal.override {
    extensions = [ "rust-src" ];
  };
  rustSrc = rust.passthru.availableComponents.rust-src;
in
{
  inherit rust rustSrc;
  inherit (pins) nightly rustVersion llvmMajor;
  llvmPackages = pkgs."llvmPackages_${toString pins.llvmMajor}";
}

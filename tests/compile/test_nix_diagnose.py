"""`--engine nix`: the failures of `nix build` that mean this machine's Nix
cannot build at all, as Nix 2.8 prints them (recorded on a fresh machine),
each mapped to a reason and what to do; anything else is left to the
generic "the flake could not be evaluated or built"."""

from __future__ import annotations

import pytest

from tatara_build.compile.nix import HOST_ENGINE, diagnose

CACHE_WARNINGS = """\
warning: error: unable to download 'https://cache.nixos.org/nix-cache-info': Couldn't resolve host name (6); retrying in 252 ms
warning: unable to download 'https://cache.nixos.org/nix-cache-info': Couldn't resolve host name (6)
"""

CASES = {
    "no build users": (
        "warning: the group 'nixbld' specified in 'build-users-group' does not exist\n" + CACHE_WARNINGS
        + "error: the group 'nixbld' specified in 'build-users-group' does not exist\n",
        "group 'nixbld', which does not exist here", "export NIX_CONFIG='build-users-group ='"),
    "no daemon": (
        "error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': No such file or directory\n"
        "(use '--show-trace' to show detailed location information)\n",
        "the Nix daemon is not running (no socket at /nix/var/nix/daemon-socket/socket)", "nix-daemon"),
    "store not writable": (
        "error: could not set permissions on '/nix/var/nix/profiles/per-user' to 755: Operation not permitted\n",
        "cannot write the Nix store (/nix/var/nix/profiles/per-user)", "start nix-daemon"),
    "sandbox": (
        "building '/nix/store/l7c4wzv86rrksii7b8rbkr5af6sky4wp-demo.drv'...\n"
        "       >        Error                  Error   D       executing '/bin/sh': No such file or directory\n",
        "the builder /bin/sh is not inside Nix's build sandbox", "NIX_CONFIG='sandbox = false'"),
    "offline inputs": (
        "error: unable to download 'https://github.com/NixOS/nixpkgs/archive/b7c2ada94fe99c15b0dbcf4d11fd7850b957a436.tar.gz': "
        "Couldn't resolve host name (6)\n",
        "could not download https://github.com/NixOS/nixpkgs/archive/", "substituters ="),
}


@pytest.mark.parametrize("case", CASES)
def test_a_nix_that_cannot_build_is_named_with_what_to_do(case: str) -> None:
    stderr, reason, todo = CASES[case]
    found = diagnose(stderr)
    assert found is not None
    said, notes = found
    assert reason in said
    assert any(todo in note for note in notes) and notes[-1] == HOST_ENGINE


def test_cache_warnings_alone_do_not_hide_a_flake_error() -> None:
    """Unreachable caches are only warnings on the way to the real error."""
    stderr = CACHE_WARNINGS + "error: flake 'path:/x' does not provide attribute 'packages.x86_64-linux.demo'\n"
    assert diagnose(stderr) is None

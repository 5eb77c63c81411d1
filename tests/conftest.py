"""What every test directory shares: the one Nix configuration tests use.

A fresh machine (and CI) has no /etc/nix/nix.conf and no `nixbld` group,
and Nix's defaults there (sandbox on, build users when root, cache.nixos.org
as substituter) cannot build offline. So no test reads the machine's Nix
configuration: `nix_env` points NIX_CONF_DIR at an empty directory, turns
off the per-user files, and states every setting the tests need in
NIX_CONFIG. A test that runs `nix`/`nix-build`/`nix-instantiate` passes
these variables (or uses the autouse fixture in tests/nix/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Each setting and why the tests need it.
NIX_SETTINGS = {
    # No `nixbld` group on a fresh machine: build as the calling user in a
    # single-user store instead of Nix's root default of build users.
    "build-users-group": "",
    # The stand-in nixpkgs (tests/nix/host-pkgs.nix) and the test flakes
    # build with /bin/bash and this machine's /usr/bin, which a sandbox hides.
    "sandbox": "false",
    # Offline: never ask cache.nixos.org (each try costs seconds of retries).
    "substituters": "",
    "experimental-features": "nix-command flakes",
}


def nix_config_text(settings: dict[str, str]) -> str:
    return "".join(f"{key} = {value}\n" for key, value in settings.items())


@pytest.fixture(scope="session")
def nix_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment variables that give Nix the tests' configuration and
    nothing of the machine's (merge them over os.environ)."""
    root = tmp_path_factory.mktemp("nix-config")
    conf_dir = root / "etc-nix"  # empty: /etc/nix/nix.conf is not read
    conf_dir.mkdir()
    registry = root / "registry.json"  # no global flake registry download
    registry.write_text('{"flakes": [], "version": 2}\n')
    return {
        "NIX_CONF_DIR": str(conf_dir),
        "NIX_USER_CONF_FILES": "",
        "NIX_CONFIG": nix_config_text({**NIX_SETTINGS, "flake-registry": str(registry)}),
        # Nix's fetcher and evaluation caches.
        "XDG_CACHE_HOME": str(root / "cache"),
    }


@pytest.fixture
def nix_build_env(nix_env: dict[str, str]) -> dict[str, str]:
    """`nix_env` for a test that really builds: with build-users-group empty,
    Nix builds in the calling user's single-user store, which must be theirs
    (root on CI); skips with that reason otherwise."""
    if not (os.access("/nix/store", os.W_OK) and os.access("/nix/var/nix", os.W_OK)):
        pytest.skip("building with Nix needs a single-user store this user can write (/nix/store, /nix/var/nix)")
    return nix_env

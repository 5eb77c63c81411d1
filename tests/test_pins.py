"""The toolchain pins are written once, in tatara_build/pins.json: the
Python side (aya backend, C toolchain choice) and nix/pins.nix both read
it, and the one other file that must agree (the aya backend's fixed
Cargo.lock) is checked against it here."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tatara_build import pins
from tatara_build.backends import aya
from tatara_build.compile import toolchain

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_user_of_a_pin_reads_pins_json():
    data = json.loads((ROOT / "tatara_build" / "pins.json").read_text())
    assert aya.AYA_EBPF_VERSION == data["ayaEbpf"]
    assert aya.NIGHTLY == f"nightly-{data['nightly']}"
    assert toolchain.PINNED_LLVM_MAJOR == data["llvmMajor"]
    assert pins.PINS == data


def test_the_fixed_aya_lock_holds_the_pinned_aya_ebpf():
    lock = tomllib.loads((ROOT / "tatara_build" / "backends" / "aya_lock.toml").read_text())["package"]
    assert [p["version"] for p in lock if p["name"] == "aya-ebpf"] == [pins.AYA_EBPF_VERSION]


def test_no_other_file_spells_the_pinned_versions():
    """A bump touches pins.json only (and the lock, checked above)."""
    spelled = []
    for path in [*(ROOT / "tatara_build").rglob("*.py"), *(ROOT / "nix").glob("*.nix"), ROOT / "flake.nix"]:
        text = path.read_text()
        if pins.NIGHTLY_DATE in text or f'"{pins.AYA_EBPF_VERSION}"' in text:
            spelled.append(path.relative_to(ROOT).as_posix())
    assert spelled == []


@pytest.mark.skipif(shutil.which("nix-instantiate") is None, reason="nix not installed")
def test_nix_pins_evaluate_to_pins_json(tmp_path):
    ran = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", str(ROOT / "nix" / "pins.nix")],
                         capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NIX_STATE_DIR": str(tmp_path / "state"),
                              "NIX_CONF_DIR": str(tmp_path)})
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == json.loads((ROOT / "tatara_build" / "pins.json").read_text())

"""The aya host engine's environment handling: the crates cannot be had,
vendor directory checks, the cargo config we write into the build copy."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tatara_build.compile import BuildOptions, compile_generated, cargo, toolchain
from tatara_build.errors import ExitCode, ToolchainError

LOCK = """\
version = 4

[[package]]
name = "needs-crates"
version = "0.1.0"
dependencies = ["itoa"]

[[package]]
name = "itoa"
version = "1.0.11"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "49f1f14873335454500d59611f1cf4a4b0f786f9ac11f4312a78e4cf2566695b"
"""


@pytest.fixture
def crate_with_dependency(tmp_path) -> Path:
    crate = tmp_path / "crate"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "needs-crates"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                      '[dependencies]\nitoa = "=1.0.11"\n')
    (crate / "Cargo.lock").write_text(LOCK)
    (crate / "src" / "main.rs").write_text("#![no_std]\n#![no_main]\n")
    return crate


def test_unreachable_crates_name_both_ways_out(crate_with_dependency, tmp_path, monkeypatch):
    try:
        toolchain.find_rust()
    except ToolchainError as err:
        pytest.skip(str(err))
    monkeypatch.setenv("CARGO_HTTP_PROXY", "http://127.0.0.1:9")  # unreachable even on a networked machine
    monkeypatch.delenv("TATARA_VENDOR_DIR", raising=False)
    with pytest.raises(ToolchainError) as caught:
        compile_generated(crate_with_dependency, "needs-crates", tmp_path / "out", BuildOptions(use_cache=False))
    text = caught.value.render()
    assert caught.value.exit_code == ExitCode.TOOLCHAIN
    assert "fetch failed" in text and "--vendor-dir DIR" in text and "--backend c" in text
    assert "cargo fetch --locked" in text  # the command
    assert not (tmp_path / "out").exists()


def test_vendor_dir_must_have_cargo_layout(crate_with_dependency, tmp_path):
    not_vendor = tmp_path / "not-vendor"
    not_vendor.mkdir()
    with pytest.raises(ToolchainError, match="not a cargo vendor directory"):
        compile_generated(crate_with_dependency, "needs-crates", tmp_path / "out", BuildOptions(vendor_dir=not_vendor))


def _job(tmp_path: Path, vendor: Path | None, prebuilt: bool = True) -> cargo.CargoJob:
    rust = toolchain.Rust(Path("/usr/bin/rustc"), Path("/usr/bin/cargo"), "rustc 1.96.0", (22, 1, 8), Path("/usr"),
                          prebuilt, False)
    return cargo.CargoJob(tmp_path, tmp_path / "work", rust, "llvm", None, vendor, "v3", "0")


def test_cargo_config_for_vendored_build(tmp_path):
    vendor = tmp_path / "vendor"
    generated = {"target": {"bpfel-unknown-none": {"rustflags": ["-C", "panic=abort"]}},
                 "unstable": {"build-std": ["core"]}}
    text = cargo.cargo_config(_job(tmp_path, vendor), tmp_path / "crate", tmp_path / "home", generated)
    config = tomllib.loads(text)
    flags = config["target"]["bpfel-unknown-none"]["rustflags"]
    assert flags[:2] == ["-C", "panic=abort"]  # the generated crate's own flags are kept
    assert "link-arg=--btf" in flags and "target-cpu=v3" in flags
    assert f"--remap-path-prefix={tmp_path / 'crate'}=." in flags
    assert f"--remap-path-prefix={vendor}=/vendor" in flags
    assert config["source"]["crates-io"]["replace-with"] == "vendored-sources"
    assert config["source"]["vendored-sources"]["directory"] == str(vendor)
    assert config["net"]["offline"] is True
    assert "unstable" not in config  # prebuilt core: no build-std


def test_cargo_config_build_std_without_prebuilt_core(tmp_path):
    config = tomllib.loads(cargo.cargo_config(_job(tmp_path, None, prebuilt=False), tmp_path, tmp_path, {}))
    assert config["unstable"]["build-std"] == ["core"]
    assert "source" not in config and config["net"]["offline"] is False

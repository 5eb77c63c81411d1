"""Kernel pins and their cache, without booting: which pin a version
selects, the private apt configuration, a dropped pin (exit 3 naming the pin
to bump), and the sha256 check on every use (a bad cache entry is fetched
again, never booted). The cache tests install a real .deb built here."""

from __future__ import annotations

import hashlib
import os
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tatara_build import tables
from tatara_build.errors import ExitCode, ToolchainError, UsageError
from tatara_build.vm import debian, kernels

HEX64 = set("0123456789abcdef")


def test_pins_cover_every_kernel_line_with_hashes_and_a_suite():
    assert tuple(kernels.KERNELS) == tables.KERNEL_LINES == tuple(kernels.LINE_SUITES)
    for line, pin in kernels.KERNELS.items():
        assert pin.suite in kernels.LINE_SUITES[line]
        assert pin.version.startswith(line + ".") and pin.image.startswith("./")
        for digest in (pin.deb_sha256, pin.vmlinuz_sha256, pin.vmlinux_sha256):
            assert digest is None or (len(digest) == 64 and set(digest) <= HEX64)
        assert pin.no_packet_test_run <= set(tables.PROGRAM_KINDS)
    # the file round-trips through the updater's writer unchanged
    data = json.loads(kernels.PINS_FILE.read_text())
    assert {k: v.to_json() for k, v in kernels.load_pins().items()} == data


def test_a_version_selects_its_lines_pin_and_lists_expand():
    assert kernels.pin_for("6.12.5") is kernels.KERNELS["6.12"]
    assert kernels.pin_for("6.1") is kernels.KERNELS["6.1"]
    assert kernels.pin_for("6.13") is None and kernels.pin_for("6.1x") is None
    assert kernels.parse_list("all") == list(tables.KERNEL_LINES)
    assert kernels.parse_list("5.10, 6.1,5.10") == ["5.10", "6.1"]
    assert kernels.parse_list(None) == []


def test_unknown_kernels_are_usage_errors_and_sources_are_never_paths(tmp_path):
    image = tmp_path / "bzImage"
    image.write_bytes(b"kernel")
    for spec, message in (("6.13", "no pinned kernel for 6.13"), ("nope", "unknown kernel 'nope'")):
        with pytest.raises(UsageError, match=message) as err:
            kernels.validate(spec)
        assert err.value.exit_code == ExitCode.USAGE
    kernels.validate(str(image))  # --kernel PATH is fine
    assert kernels.resolve(str(image)).sha256 == hashlib.sha256(b"kernel").hexdigest()
    with pytest.raises(UsageError):
        kernels.resolve_version(str(image))  # a source's :kernel names a version only


def test_private_apt_configuration_stays_under_the_cache(tmp_path):
    suite = debian.suite("bullseye-security", tmp_path)
    assert suite.home == tmp_path / "apt" / "bullseye-security"
    line = (suite.home / "sources.list").read_text()
    assert line == (f"deb [signed-by={debian.KEYRING}] http://deb.debian.org/debian-security "
                    "bullseye-security main\n")
    options = suite.options()[1::2]  # the values after each -o
    assert {o.split("=")[0] for o in options} == {
        "Dir::Etc::sourcelist", "Dir::Etc::sourceparts", "Dir::State::Lists", "Dir::Cache", "APT::Get::List-Cleanup"}
    assert all(str(tmp_path) in o or o.endswith(("=/nonexistent", "=0")) for o in options)
    with pytest.raises(ToolchainError, match="not a Debian suite"):
        debian.suite("sid main\ndeb http://evil", tmp_path)


@pytest.fixture
def fake_pin(tmp_path, monkeypatch):
    """A real .deb holding ./boot/vmlinuz-test, pinned like Debian's."""
    if not shutil.which("dpkg-deb"):
        pytest.skip("dpkg-deb missing")
    root = tmp_path / "pkg"
    (root / "boot").mkdir(parents=True)
    (root / "DEBIAN").mkdir()
    (root / "boot" / "vmlinuz-test").write_bytes(b"not really a kernel")
    (root / "DEBIAN" / "control").write_text("Package: linux-image-test\nVersion: 1.0-1\nArchitecture: amd64\n"
                                             "Maintainer: t <t@example.org>\nDescription: test\n")
    deb = tmp_path / "linux-image-test_1.0-1_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True, capture_output=True)
    pin = kernels.KernelPin("9.9", "sid", "linux-image-test", "1.0-1", "./boot/vmlinuz-test",
                            kernels.sha256_file(deb), hashlib.sha256(b"not really a kernel").hexdigest())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(kernels.KERNELS, "9.9", pin)
    fetched = []

    def fetch(suite, package, version, into):
        fetched.append((suite, package, version))
        into.mkdir(parents=True)
        return Path(shutil.copy(deb, into))

    monkeypatch.setattr(kernels, "fetch_deb", fetch)
    return pin, fetched


def test_cached_kernel_is_checked_on_every_use_and_a_bad_entry_fetched_again(fake_pin):
    pin, fetched = fake_pin
    first = kernels.resolve("9.9.3")
    assert first.image.read_bytes() == b"not really a kernel" and fetched == [("sid", "linux-image-test", "1.0-1")]
    assert kernels.resolve("9.9").image == first.image and len(fetched) == 1  # served from the cache
    first.image.write_bytes(b"tampered")
    again = kernels.resolve("9.9")
    assert again.image.read_bytes() == b"not really a kernel" and len(fetched) == 2
    assert [p.name for p in again.image.parent.parent.iterdir()] == [again.image.parent.name]  # no temp dirs left


def test_a_deb_that_does_not_match_its_pin_is_never_installed(fake_pin, monkeypatch):
    pin, _ = fake_pin
    monkeypatch.setitem(kernels.KERNELS, "9.9", kernels.KernelPin(**{**pin.__dict__, "deb_sha256": "0" * 64}))
    with pytest.raises(ToolchainError, match="sha256 does not match the pin"):
        kernels.resolve("9.9")
    assert not kernels.cache_entry(kernels.KERNELS["9.9"]).exists()


def test_a_dropped_pin_is_exit_3_naming_the_pin_to_bump(fake_pin, monkeypatch):
    def gone(suite, package, version, into):
        raise debian.Dropped(suite, package, version)

    monkeypatch.setattr(kernels, "fetch_deb", gone)
    with pytest.raises(kernels.PinDropped) as err:
        kernels.resolve("9.9")
    assert err.value.exit_code == ExitCode.TOOLCHAIN
    assert "kernel pin 9.9 (linux-image-test=1.0-1) is no longer in Debian sid" in str(err.value)
    assert "scripts/update-kernel-pins 9.9" in str(err.value) and "--kernel PATH" in str(err.value)


def test_kernels_command_fetches_and_reports_the_cache_state(fake_pin):
    from typer.testing import CliRunner

    from tatara_build.cli import app

    pin, fetched = fake_pin
    runner = CliRunner()
    listed = runner.invoke(app, ["kernels"])
    assert listed.exit_code == 0 and "9.9    linux-image-test=1.0-1  (Debian sid)  not cached" in listed.stdout
    got = runner.invoke(app, ["kernels", "--fetch", "9.9"])
    assert got.exit_code == 0 and len(fetched) == 1
    assert "9.9    linux-image-test=1.0-1  (Debian sid)  cached" in got.stdout
    (kernels.cache_entry(pin) / "vmlinuz").write_bytes(b"bad")
    assert "sha256 MISMATCH" in runner.invoke(app, ["kernels"]).stdout
    assert runner.invoke(app, ["kernels", "--fetch", "4.4"]).exit_code == 2


def test_pin_updater_follows_meta_packages_to_the_image_and_takes_the_newest_of_the_line(tmp_path, monkeypatch):
    """sid's shape: linux-image-amd64 -> linux-image-<abi> (meta, small) ->
    linux-binary-<abi> (the image); older suites: linux-image-<abi> holds it."""
    from tatara_build.vm import pins

    index = {
        "linux-image-amd64": {
            "7.2.13-1": {"Package": "linux-image-amd64", "Version": "7.2.13-1",
                         "Depends": "linux-base-amd64 (= 7.2.13-1), linux-image-7.2.13+deb14-amd64 (= 7.2.13-1)"},
            "7.2.9-1": {"Package": "linux-image-amd64", "Version": "7.2.9-1",
                        "Depends": "linux-image-7.2.9+deb14-amd64 (= 7.2.9-1)"},
            "7.10.1-1": {"Package": "linux-image-amd64", "Version": "7.10.1-1",
                         "Depends": "linux-image-7.10.1+deb14-amd64 (= 7.10.1-1)"},  # another line
        },
        "linux-image-7.2.13+deb14-amd64": {"7.2.13-1": {
            "Package": "linux-image-7.2.13+deb14-amd64", "Version": "7.2.13-1", "Size": "1892",
            "Depends": "dracut | initramfs-tools (>= 0.120+deb8u2), linux-binary-7.2.13+deb14-amd64 (= 7.2.13-1), "
                       "linux-modules-7.2.13+deb14-amd64 (= 7.2.13-1)"}},
        "linux-binary-7.2.13+deb14-amd64": {"7.2.13-1": {
            "Package": "linux-binary-7.2.13+deb14-amd64", "Version": "7.2.13-1", "Size": "70000000"}},
        "linux-image-7.2.9+deb14-amd64": {"7.2.9-1": {
            "Package": "linux-image-7.2.9+deb14-amd64", "Version": "7.2.9-1", "Size": "60000000", "Depends": "kmod"}},
    }
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(debian, "update", lambda suite: None)
    monkeypatch.setattr(debian, "versions", lambda suite, package: index.get(package, {}))
    assert pins.newest("7.2") == ("sid", "linux-binary-7.2.13+deb14-amd64", "7.2.13-1")
    suite = debian.suite("sid", tmp_path)
    assert pins._image_package(suite, index["linux-image-amd64"]["7.2.9-1"]) == ("linux-image-7.2.9+deb14-amd64", "7.2.9-1")
    assert debian.compare_versions("6.12.117-1~deb12u1", "6.12.117-1") == -1


def test_a_signal_ends_a_kernel_download_running_in_a_worker_thread(tmp_path):
    """The matrix fetches kernels in worker threads; the signal handler (in the
    main thread) must kill apt's process group, not wait up to APT_TIMEOUT."""
    import threading
    import time

    from tatara_build import interrupts

    fake = tmp_path / "fake-apt"
    child = tmp_path / "child.pid"
    fake.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {child}\nwait\n")
    fake.chmod(0o755)
    s = debian.suite("bookworm", tmp_path / "cache")
    done: list = []
    worker = threading.Thread(target=lambda: done.append(debian._apt(str(fake), s, "download", "x")))
    worker.start()
    for _ in range(100):
        if child.exists() and child.read_text().strip():
            break
        time.sleep(0.05)
    grandchild = int(child.read_text())
    started = time.monotonic()
    # What the handler does before raising in the main thread. Setting the flag
    # matters: on a loaded machine the script can write its pid before the
    # worker thread has tracked the group, and a late track() must kill it.
    interrupts._STOPPING.set()
    try:
        interrupts._kill_all()
        worker.join(10)
    finally:
        interrupts._STOPPING.clear()
    assert not worker.is_alive() and time.monotonic() - started < 10
    assert done and done[0].exit_code != 0
    with pytest.raises(ProcessLookupError):  # the whole group went, sleep included
        for _ in range(50):
            os.kill(grandchild, 0)
            time.sleep(0.05)

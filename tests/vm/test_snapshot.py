"""A booted guest saved once per kernel and restored per run (vm/snapshot.py):
a restored run gives the same verdicts as a cold boot, a snapshot whose
bytes no longer match the sha256 in its name is removed and saved again
(never restored), and a QEMU that cannot restore leaves the run to a cold
boot."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tatara_build.vm import kernels, qemu, runner, snapshot

REPO = Path(__file__).resolve().parents[2]
HAND_DROP_SYN = REPO / "tests" / "vm" / "fixtures" / "drop_syn.bpf.c"
SYN = bytes.fromhex("ffffffffffff0000000000010800" "450000280000400040060000c0a80001c0a80002"
                    "303900500000000000000000500220000000000000")


@pytest.fixture
def snapshots(tmp_path, monkeypatch):
    home = tmp_path / "snapshots"
    monkeypatch.setattr(snapshot, "_home", lambda: home)
    monkeypatch.setenv("TATARA_VM_ACCEL", "tcg")
    monkeypatch.delenv("TATARA_VM_SNAPSHOT", raising=False)
    return home


def test_a_snapshot_whose_bytes_do_not_match_its_name_is_removed_not_opened(snapshots):
    snapshots.mkdir()
    bad = snapshots / f"k-{'0' * 64}.qemu"
    bad.write_bytes(b"not a migration stream")
    assert snapshot._open("k") is None
    assert not bad.exists()


def test_a_save_replaces_its_keys_file_and_drops_snapshots_unused_for_weeks(snapshots):
    import os
    import time

    snapshots.mkdir()
    mine, fresh, stale = (snapshots / f"{k}-{'0' * 64}.qemu" for k in ("k", "other", "gone"))
    for path in (mine, fresh, stale):
        path.write_bytes(b"x")
    weeks_ago = time.time() - (snapshot.PRUNE_DAYS + 1) * 86400
    os.utime(stale, (weeks_ago, weeks_ago))
    snapshot._prune("k")
    assert sorted(p.name for p in snapshots.iterdir()) == [fresh.name]


def test_the_key_covers_the_kernel_and_the_base_initramfs(tmp_path):
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86 missing")
    base, other = tmp_path / "base", tmp_path / "other"
    base.write_bytes(b"a")
    other.write_bytes(b"b")
    assert snapshot.key("1" * 64, base) == snapshot.key("1" * 64, base)
    assert snapshot.key("1" * 64, base) != snapshot.key("2" * 64, base)
    assert snapshot.key("1" * 64, base) != snapshot.key("1" * 64, other)


def _drop_syn(tmp_path: Path) -> tuple[list, list, list]:
    obj = tmp_path / "hand.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-fno-ident",
                    "-c", str(HAND_DROP_SYN), "-o", str(obj)], check=True, capture_output=True)
    objects = [runner.ObjectJob(obj)]
    case_jobs = [runner.CaseJob(0, "t", "syn", "drop_syn", SYN, "xdp-drop", 1)]
    map_jobs = [runner.MapJob(0, "t", "syn_drops", 0, 1)]
    return objects, case_jobs, map_jobs


@pytest.mark.vm
def test_runs_restore_the_saved_guest_and_a_damaged_snapshot_is_saved_again(tmp_path, snapshots):
    if not shutil.which("qemu-system-x86_64") or not shutil.which("clang"):
        pytest.skip("qemu-system-x86 and clang are needed for VM tests")
    kernel = kernels.resolve("6.1")
    jobs = _drop_syn(tmp_path)
    first = runner.run(*jobs[:1], kernel, *jobs[1:], timeout=300)
    assert first.passed and first.cases[0].got == 1 and first.maps[0].got == 1
    (saved,) = snapshots.glob("*.qemu")
    second = runner.run(*jobs[:1], kernel, *jobs[1:], timeout=300)
    assert second.passed and second.objects[0].programs[0].verified_insns == first.objects[0].programs[0].verified_insns
    # The guest's clock (verification times, load seconds) keeps the host's pace in a restored guest.
    assert 0 < second.load_seconds <= second.boot_seconds
    data = bytearray(saved.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same name, other bytes
    saved.write_bytes(bytes(data))
    third = runner.run(*jobs[:1], kernel, *jobs[1:], timeout=300)
    assert third.passed
    (resaved,) = snapshots.glob("*.qemu")
    assert resaved.read_bytes() != bytes(data)
    assert resaved.name == f"{resaved.name[:32]}-{kernels.sha256_file(resaved)}.qemu"


@pytest.mark.vm
def test_a_snapshot_qemu_cannot_restore_leaves_the_run_to_a_cold_boot(tmp_path, snapshots, monkeypatch):
    if not shutil.which("qemu-system-x86_64") or not shutil.which("clang"):
        pytest.skip("qemu-system-x86 and clang are needed for VM tests")
    kernel = kernels.resolve("6.1")
    monkeypatch.setattr(snapshot, "_save", _fake_save)
    jobs = _drop_syn(tmp_path)
    result = runner.run(*jobs[:1], kernel, *jobs[1:], timeout=300)
    assert result.passed and result.cases[0].got == 1
    assert list(snapshots.glob("*.qemu")) == []  # the one QEMU refused is gone


def _fake_save(snap_key, image, image_fd, base) -> bool:
    """A "snapshot" QEMU refuses: checks out by its name, is no migration stream."""
    import hashlib

    snapshot._home().mkdir(parents=True, exist_ok=True)
    data = b"QEVM not really"
    (snapshot._home() / f"{snap_key}-{hashlib.sha256(data).hexdigest()}.qemu").write_bytes(data)
    return True


def test_the_guest_saves_only_without_a_plan_and_ends_by_a_reset():
    from tatara_build.vm import guest

    script = guest.INIT_SCRIPT
    assert f"fw-cfg-wait {guest.JOB_FW_CFG} /tmp/job.cpio {guest.SNAPSHOT}" in script
    assert "if [ ! -e /job/plan ]" in script and script.rstrip().endswith("reboot -f")
    assert "-no-reboot" in qemu.command(Path("k"), Path("i"), "tcg")
    assert "clocksource=hpet" in qemu.APPEND and "acpi=off" not in qemu.APPEND  # QEMU's clock, not a calibrated TSC

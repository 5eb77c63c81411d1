"""A booted guest saved once and restored for every run (TCG only: a cold
boot costs seconds there, a restore a fraction of one).

The base initramfs's /init, finding no /job/plan, prints guest.SNAPSHOT and
waits in `tatara-guest fw-cfg-wait`; the host then migrates the running VM
into a file (QMP `migrate exec:`) and ends it. A run restores that file
(`-incoming fd:N`) with its payload (the newc archive runner.py would have
appended to the initramfs) as the fw_cfg file guest.JOB_FW_CFG, which the
waiting tool reads and unpacks; from there the guest follows the plan as
after a cold boot.

A snapshot is keyed by everything that shapes the saved guest: the kernel
image's and the base initramfs's sha256, QEMU's binary and command line.
Its file name ends with the sha256 of its content, checked on the
descriptor QEMU restores from (as kernels.opened_image does for the kernel):
a changed file is removed and saved again, never restored. Anything that
goes wrong here (a QEMU that cannot migrate, a guest that never waits)
leaves the run to a cold boot."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import initramfs, qemu
from .guest import JOB_FW_CFG, READY, SNAPSHOT
from ..errors import VmError
from .kernels import Kernel, cache_dir, opened_image, sha256_file
from ..filelock import held

SAVE_SECONDS = 120.0  # a cold boot under a loaded TCG host, and the migration
QMP_SECONDS = 60.0
PRUNE_DAYS = 14


def enabled() -> bool:
    return os.environ.get("TATARA_VM_SNAPSHOT", "1") != "0"


def key(image_sha256: str, base: Path) -> str:
    binary = Path(qemu.qemu_binary()).resolve()
    stat = binary.stat()
    parts = [image_sha256, sha256_file(base), f"{binary}|{stat.st_size}|{stat.st_mtime_ns}",
             " ".join(qemu.command(Path("K"), Path("I"), "tcg")[1:])]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def boot_job(kernel: Kernel, payload: list[initramfs.Entry], *, timeout: float, accel: str) -> qemu.Boot:
    """Run the guest on `kernel` with `payload` (the job's files): restored
    from a snapshot under TCG, else a cold boot with the payload appended
    to the initramfs (KVM, TATARA_VM_SNAPSHOT=0, or no snapshot to be had)."""
    accel = os.environ.get("TATARA_VM_ACCEL", accel)
    with tempfile.TemporaryDirectory(prefix="tatara-vm-") as tmp, \
            opened_image(kernel) as (image, fd):  # the bytes checked are the bytes booted
        if enabled() and qemu.tcg_chosen(accel):
            booted = os.fstat(fd)
            is_image = (booted.st_dev, booted.st_ino) == _inode(kernel.image)
            sha = (kernel.image_sha256 or kernel.sha256) if is_image else kernel.sha256  # else: the fallback
            result = boot(image, fd, sha, payload, Path(tmp), timeout=timeout)
            if result is not None:
                return result
        initrd = initramfs.write_initrd(payload, Path(tmp) / "initrd")
        return qemu.boot_best(image, initrd, timeout=timeout, accel=accel, pass_fds=(fd,))


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _home() -> Path:
    return cache_dir() / "snapshots"


def boot(image: Path, image_fd: int, image_sha256: str, payload: list[initramfs.Entry], tmp: Path, *,
         timeout: float) -> qemu.Boot | None:
    """Restore the snapshot for this kernel (saving it first when there is
    none) with `payload`; None when no snapshot could be had or restored
    (the caller boots cold)."""
    base = initramfs.base_image()
    snap_key = key(image_sha256, base)
    with _checked(snap_key, image, image_fd, base) as snap_fd:
        if snap_fd is None:
            return None
        job = tmp / "job.cpio"
        job.write_bytes(initramfs.newc(payload))
        extra = ("-incoming", f"fd:{snap_fd}", "-fw_cfg", f"name={JOB_FW_CFG},file={_opt(job)}")
        result = qemu.boot(image, base, timeout=timeout, accel="tcg", pass_fds=(image_fd, snap_fd), extra=extra)
    assert result is not None
    if READY not in result.console:  # not restored (QEMU refused the file): boot cold, save anew next time
        _remove(snap_key)
        return None
    return result


@contextmanager
def _checked(snap_key: str, image: Path, image_fd: int, base: Path) -> Iterator[int | None]:
    """A descriptor on this key's snapshot whose content matched the sha256
    in its name; the snapshot is saved first (one process at a time) when
    missing or changed."""
    fd = _open(snap_key)
    if fd is None:
        with _lock(snap_key):
            fd = _open(snap_key)
            if fd is None and _save(snap_key, image, image_fd, base):
                fd = _open(snap_key)
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def _open(snap_key: str) -> int | None:
    for path in sorted(_home().glob(f"{snap_key}-*.qemu")):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        digest = hashlib.sha256()
        offset = 0
        while chunk := os.pread(fd, 1 << 20, offset):
            digest.update(chunk)
            offset += len(chunk)
        if path.name == f"{snap_key}-{digest.hexdigest()}.qemu":
            os.utime(path)  # in use: kept by _prune
            return fd
        os.close(fd)
        path.unlink(missing_ok=True)
    return None


def _remove(snap_key: str) -> None:
    for path in _home().glob(f"{snap_key}-*.qemu"):
        path.unlink(missing_ok=True)


@contextmanager
def _lock(snap_key: str) -> Iterator[None]:
    with held(_home() / f".{snap_key}.lock"):
        yield


def _save(snap_key: str, image: Path, image_fd: int, base: Path) -> bool:
    """Boot cold with no plan, migrate the waiting guest into the cache."""
    home = _home()
    with tempfile.TemporaryDirectory(prefix="tatara-snap-") as sock_dir, \
            tempfile.TemporaryDirectory(dir=home, prefix=".save-") as tmp:
        sock, out = Path(sock_dir) / "qmp", Path(tmp) / "snapshot"
        done: list[bool] = []
        extra = ("-qmp", f"unix:{_opt(sock)},server=on,wait=off")
        try:
            qemu.boot(image, base, timeout=SAVE_SECONDS, accel="tcg", pass_fds=(image_fd,), extra=extra,
                      on_line=(SNAPSHOT, lambda: done.append(_migrate(sock, out))))
        except VmError:
            return False  # timed out: the run boots cold
        if not (done and done[0] and out.is_file()):
            return False
        _prune(snap_key)
        out.rename(home / f"{snap_key}-{sha256_file(out)}.qemu")
    return True


def _prune(snap_key: str) -> None:
    """Before a save: this key's old file, and every snapshot unused for
    PRUNE_DAYS (another QEMU, kernel pin or guest tool: ~75 MB each)."""
    now = time.time()
    for path in _home().glob("*.qemu"):
        try:
            if path.name.startswith(f"{snap_key}-") or now - path.stat().st_mtime > PRUNE_DAYS * 86400:
                path.unlink()
        except OSError:
            pass  # a concurrent prune or save got there first


def _migrate(sock: Path, out: Path) -> bool:
    """Over QMP: migrate the running VM into `out`, then quit QEMU."""
    try:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(QMP_SECONDS)
            conn.connect(str(sock))
            stream = conn.makefile("rw")
            _qmp(stream, None)  # the greeting
            _qmp(stream, "qmp_capabilities")
            _qmp(stream, "migrate", {"uri": f"exec:cat > {shlex.quote(str(out))}"})
            deadline = time.monotonic() + QMP_SECONDS
            status = None
            while status not in ("completed", "failed", "cancelled") and time.monotonic() < deadline:
                time.sleep(0.05)
                status = _qmp(stream, "query-migrate").get("status")
            _qmp(stream, "quit")
            return status == "completed"
    except (OSError, ValueError, KeyError):
        return False


def _qmp(stream, command: str | None, arguments: dict | None = None) -> dict:
    """Send one command (None: read the greeting); its `return`, skipping events."""
    if command is not None:
        stream.write(json.dumps({"execute": command, **({"arguments": arguments} if arguments else {})}) + "\n")
        stream.flush()
    while True:
        line = stream.readline()
        if not line:
            raise ValueError("QMP closed")
        reply = json.loads(line)
        if command is None and "QMP" in reply:
            return reply
        if "error" in reply:
            raise ValueError(reply["error"])
        if "return" in reply:
            return reply["return"] if isinstance(reply["return"], dict) else {}


def _opt(path: Path) -> str:
    """A path inside a QEMU option value (commas are doubled there)."""
    return str(path).replace(",", ",,")

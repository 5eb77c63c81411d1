"""Boot QEMU on a kernel + initrd with the serial console on stdout, under a
hard timeout that kills QEMU's whole process group. KVM is used only where
a probe boot shows it works (the verdict is cached per host); else TCG."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .. import interrupts
from ..errors import ToolchainError, VmError
from .guest import DONE, READY
from .kernels import cache_dir

KVM_PROBE_SECONDS = 8.0  # a working KVM reaches /init in well under this
# Guest RAM. Under TCG the kernel's page setup scales with it: 256 MB boots
# ~0.6 s faster than 512 MB (measured), and the initramfs + BPF need < 64 MB.
MEMORY_MB = 256
TAIL_LINES = 30
# BPF LSM programs load only when `bpf` is among the active LSMs. Debian
# 6.1's CONFIG_LSM already ends in `bpf`; naming the same list keeps any
# other kernel (a PATH given by the user) from leaving it out.
LSMS = "landlock,lockdown,yama,loadpin,safesetid,integrity,apparmor,selinux,smack,tomoyo,bpf"


@dataclass
class Boot:
    console: str
    seconds: float  # wall time from QEMU start to its exit
    ready_seconds: float | None  # wall time until /init printed READY
    accel: str
    pid: int  # QEMU's PID (gone when boot() returns)


def command(kernel: Path, initrd: Path, accel: str) -> list[str]:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise ToolchainError("qemu-system-x86_64 not found: install qemu-system-x86")
    accel_args = ["-enable-kvm", "-cpu", "host"] if accel == "kvm" else ["-accel", "tcg"]
    return [
        qemu, *accel_args, "-m", str(MEMORY_MB), "-smp", "1", "-nographic", "-no-reboot", "-nic", "none",
        "-kernel", str(kernel), "-initrd", str(initrd),
        "-append", f"console=ttyS0 quiet panic=-1 lsm={LSMS}",
    ]


def boot(kernel: Path, initrd: Path, *, timeout: float, accel: str, ready_within: float | None = None,
         pass_fds: tuple[int, ...] = ()) -> Boot | None:
    """Run the VM to completion. Returns None only when `ready_within` is set
    and /init did not start in time (a failed KVM probe); raises VmError on
    the hard timeout, with the console tail. `pass_fds`: descriptors QEMU
    inherits (the kernel as /proc/self/fd/N: kernels.opened_image)."""
    if interrupts.stopping():  # a signal arrived: no new VM (matrix threads)
        raise VmError("interrupted before the VM started")
    start = time.monotonic()
    # The one process not started through compile/run.py: its console is
    # read line by line while it runs (READY, the KVM probe's deadline).
    proc = subprocess.Popen(
        command(kernel, initrd, accel),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: one kill takes all
        pass_fds=pass_fds,
    )
    interrupts.track(proc.pid)  # a signal kills it even while this runs in a worker thread
    lines: list[str] = []
    ready_at: list[float] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line)
            if READY in line and not ready.is_set():
                ready_at.append(time.monotonic() - start)
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if ready_within is not None and not ready.wait(ready_within):
            return None
        proc.wait(timeout=max(0.0, timeout - (time.monotonic() - start)))
    except subprocess.TimeoutExpired:
        tail = "\n".join(lines[-TAIL_LINES:])
        raise VmError(f"VM timed out after {timeout:.0f} s ({accel}); console tail:\n{tail}") from None
    finally:
        interrupts.end(proc)
        reader.join(timeout=5)  # QEMU is gone: the reader sees EOF; only then is its pipe closed
        if proc.stdout:
            proc.stdout.close()
    return Boot("\n".join(lines), time.monotonic() - start, ready_at[0] if ready_at else None, accel, proc.pid)




def boot_best(kernel: Path, initrd: Path, *, timeout: float, accel: str = "auto", pass_fds: tuple[int, ...] = ()) -> Boot:
    """`accel`: "kvm", "tcg", or "auto" (KVM if /dev/kvm opens and the cached
    probe verdict, or a probe boot, says it works; TCG otherwise)."""
    accel = os.environ.get("TATARA_VM_ACCEL", accel)
    if accel in ("kvm", "tcg"):
        result = boot(kernel, initrd, timeout=timeout, accel=accel, pass_fds=pass_fds)
        assert result is not None
        return result
    verdict_file = _verdict_file()
    verdict = verdict_file.read_text().strip() if verdict_file.is_file() else None
    if verdict != "tcg" and _kvm_openable():
        result = boot(kernel, initrd, timeout=timeout, accel="kvm", pass_fds=pass_fds,
                      ready_within=None if verdict == "kvm" else KVM_PROBE_SECONDS)
        if result is not None and DONE in result.console:
            _record(verdict_file, "kvm")
            return result
        _record(verdict_file, "tcg")
    result = boot(kernel, initrd, timeout=timeout, accel="tcg", pass_fds=pass_fds)
    assert result is not None
    return result


def _kvm_openable() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def _verdict_file() -> Path:
    """Per host: kernel release and CPU model decide whether KVM works."""
    cpu = ""
    try:
        cpu = next((l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "")
    except OSError:
        pass
    key = hashlib.sha256(f"{platform.node()}|{platform.release()}|{cpu}".encode()).hexdigest()[:16]
    return cache_dir() / f"kvm-verdict-{key}"


def _record(path: Path, verdict: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # per thread too: the kernel matrix probes from several threads at once
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(verdict + "\n")
    tmp.rename(path)

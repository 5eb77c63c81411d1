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
from typing import Callable

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


# Kernel command line. Besides the console and the LSMs: no crypto
# self-tests (`crypto_algapi_init`, 0.6-1.5 s under TCG on 6.1; a guest that
# only loads and test-runs BPF uses no crypto), and the HPET as the clock:
# under a loaded TCG host the TSC's calibration at boot came out up to 16x
# off in some boots, and everything the guest times (verification time,
# load seconds) ran that much fast, in a snapshot for every later run. The
# HPET is QEMU's own clock. Not `acpi=off` (0.35 s faster): it takes the
# HPET away. `no_timer_check`: the IO-APIC timer check counts ticks over a
# busy-wait, and on a loaded TCG host it saw none and panicked ("IO-APIC +
# timer doesn't work", seen in CI); it is what cloud images boot VMs with.
APPEND = f"console=ttyS0 quiet panic=-1 lsm={LSMS} cryptomgr.notests clocksource=hpet no_timer_check"


def qemu_binary() -> str:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise ToolchainError("qemu-system-x86_64 not found: install qemu-system-x86")
    return qemu


def command(kernel: Path, initrd: Path, accel: str, extra: tuple[str, ...] = ()) -> list[str]:
    """`extra`: a snapshot's save or restore arguments (snapshot.py)."""
    accel_args = ["-enable-kvm", "-cpu", "host"] if accel == "kvm" else ["-accel", "tcg"]
    return [
        qemu_binary(), *accel_args, "-m", str(MEMORY_MB), "-smp", "1", "-nographic", "-no-reboot", "-nic", "none",
        "-kernel", str(kernel), "-initrd", str(initrd), "-append", APPEND, *extra,
    ]


def boot(kernel: Path, initrd: Path, *, timeout: float, accel: str, ready_within: float | None = None,
         pass_fds: tuple[int, ...] = (), extra: tuple[str, ...] = (),
         on_line: tuple[str, Callable[[], None]] | None = None) -> Boot | None:
    """Run the VM to completion. Returns None only when `ready_within` is set
    and /init did not start in time (a failed KVM probe); raises VmError on
    the hard timeout, with the console tail. `pass_fds`: descriptors QEMU
    inherits (the kernel as /proc/self/fd/N: kernels.opened_image).
    `on_line`: (marker, action): the first console line holding the marker
    starts the action in a thread of its own (a snapshot's save)."""
    if interrupts.stopping():  # a signal arrived: no new VM (matrix threads)
        raise VmError("interrupted before the VM started")
    start = time.monotonic()
    # The one process not started through compile/run.py: its console is
    # read line by line while it runs (READY, the KVM probe's deadline).
    proc = subprocess.Popen(
        command(kernel, initrd, accel, extra),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: one kill takes all
        pass_fds=pass_fds,
    )
    interrupts.track(proc.pid)  # a signal kills it even while this runs in a worker thread
    console = _Console(proc, start, on_line)
    try:
        if ready_within is not None and not console.ready.wait(ready_within):
            return None
        proc.wait(timeout=max(0.0, timeout - (time.monotonic() - start)))
    except subprocess.TimeoutExpired:
        tail = "\n".join(console.lines[-TAIL_LINES:])
        raise VmError(f"VM timed out after {timeout:.0f} s ({accel}); console tail:\n{tail}") from None
    finally:
        interrupts.end(proc)
        console.close()
    return Boot("\n".join(console.lines), time.monotonic() - start, console.ready_at, accel, proc.pid)


class _Console:
    """QEMU's serial console, read line by line in a thread of its own."""

    def __init__(self, proc: subprocess.Popen, start: float, on_line: tuple[str, Callable[[], None]] | None):
        self.proc, self.start, self.on_line = proc, start, on_line
        self.lines: list[str] = []
        self.ready_at: float | None = None
        self.ready = threading.Event()
        self.acted: list[threading.Thread] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.lines.append(line)
            if READY in line and not self.ready.is_set():
                self.ready_at = time.monotonic() - self.start
                self.ready.set()
            if self.on_line and self.on_line[0] in line and not self.acted:
                self.acted.append(threading.Thread(target=self.on_line[1], daemon=True))
                self.acted[0].start()

    def close(self) -> None:
        """After QEMU is gone: the reader sees EOF; only then is its pipe closed."""
        self.reader.join(timeout=5)
        for thread in self.acted:
            thread.join(timeout=5)  # its socket to QEMU is closed: it ends
        if self.proc.stdout:
            self.proc.stdout.close()




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


def tcg_chosen(accel: str) -> bool:
    """Whether boot_best(accel=…) would boot under TCG, without booting."""
    if accel in ("kvm", "tcg"):
        return accel == "tcg"
    verdict_file = _verdict_file()
    verdict = verdict_file.read_text().strip() if verdict_file.is_file() else None
    return verdict == "tcg" or not _kvm_openable()


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

"""The guest's initramfs, written as reproducible newc cpio by hand (mtime 0,
uid/gid 0, sorted names). Uncompressed: under TCG the kernel's gunzip of the
2.4 MB base costs more (~0.4 s a boot, measured) than QEMU loading 5 MB.

Two archives, concatenated (the kernel unpacks them in order): a base with
busybox-static, bpftool and the libraries `ldd` lists, and /init — cached
by content — and a small per-run payload with the objects, packets and plan."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

from ..errors import ToolchainError
from .guest import INIT_SCRIPT
from .kernels import cache_dir

# (path in the archive, file mode, content); directories are implied.
Entry = tuple[str, int, bytes]

_BUSYBOX_SKIP = {"busybox", "init", "linuxrc"}  # /init is ours; no link loops


def newc(entries: list[Entry]) -> bytes:
    """A newc cpio archive of `entries` plus their parent directories."""
    files = {path.strip("/"): (mode, data) for path, mode, data in entries}
    for path in list(files):
        parent = os.path.dirname(path)
        while parent and parent not in files:
            files[parent] = (0o040755, b"")
            parent = os.path.dirname(parent)
    out = bytearray()
    for ino, name in enumerate(sorted(files) + ["TRAILER!!!"], start=1):
        mode, data = files.get(name, (0, b""))
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        out += b"070701" + "".join(f"{v:08X}" for v in fields).encode() + name.encode() + b"\0"
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def _tool(name: str, *candidates: str) -> Path:
    for path in (shutil.which(name), *candidates):
        if path and Path(path).is_file():
            return Path(path).resolve()
    raise ToolchainError(f"{name} not found: install it (Debian: {'busybox-static' if name == 'busybox' else name})")


def _libraries(binary: Path) -> list[Path]:
    """The shared objects `ldd` resolves for `binary`, with the loader."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
    return [Path(p) for p in re.findall(r"(/\S+) \(0x", out)]


def base_entries() -> list[Entry]:
    busybox = _tool("busybox", "/bin/busybox")
    if _libraries(busybox):  # the guest has no libc for it
        raise ToolchainError(f"{busybox} is dynamically linked; install busybox-static")
    bpftool = _tool("bpftool", "/usr/sbin/bpftool")
    entries: list[Entry] = [
        ("bin/busybox", 0o100755, busybox.read_bytes()),
        ("bin/bpftool", 0o100755, bpftool.read_bytes()),
        ("init", 0o100755, INIT_SCRIPT.encode()),
        *((mount_point, 0o040755, b"") for mount_point in ("dev", "proc", "sys", "tmp")),
    ]
    for lib in _libraries(bpftool):
        entries.append((str(lib), 0o100755, lib.resolve().read_bytes()))
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet not in _BUSYBOX_SKIP:
            entries.append((f"bin/{applet}", 0o120777, b"busybox"))  # symlink: data is the target
    return entries


def base_image() -> Path:
    """The cached base archive, keyed by the content of its inputs."""
    entries = base_entries()
    digest = hashlib.sha256()
    for path, mode, data in sorted(entries):
        digest.update(f"{path}\0{mode}\0{len(data)}\0".encode() + data)
    path = cache_dir() / "initramfs" / f"base-{digest.hexdigest()[:16]}.cpio"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")  # matrix: one per VM thread
        tmp.write_bytes(newc(entries))
        tmp.rename(path)
    return path


def write_initrd(payload: list[Entry], dest: Path, base: Path | None = None) -> Path:
    """Base + payload into `dest` (one file, two concatenated archives; each
    ends 4-byte aligned, which is all the kernel's unpacker needs)."""
    base = base or base_image()
    dest.write_bytes(base.read_bytes() + newc(payload))
    return dest

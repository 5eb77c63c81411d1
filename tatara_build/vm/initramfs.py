"""The guest's initramfs, written as reproducible newc cpio by hand (mtime 0,
uid/gid 0, sorted names). Uncompressed: under TCG the kernel's gunzip of the
2.4 MB base costs more (~0.4 s a boot, measured) than QEMU loading 5 MB.

Two archives, concatenated (the kernel unpacks them in order): a base with
busybox-static, bpftool and the libraries `ldd` lists, our static
tatara-guest (vm/tool.py) and /init — cached by content — and a small per-run payload with the objects, packets and plan."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from pathlib import Path

from ..compile.run import run_bytes
from ..errors import ToolchainError
from .guest import INIT_SCRIPT
from . import tool
from .kernels import cache_dir, sha256_file

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
    ldd = shutil.which("ldd") or ("/usr/bin/ldd" if Path("/usr/bin/ldd").is_file() else None)
    if ldd is None:
        raise ToolchainError("ldd not found (it lists the libraries bpftool needs in the guest): install libc-bin, "
                             "and check PATH")
    out = run_bytes("initramfs", [ldd, binary], check=False, decode=True).stdout  # exit 1: a static binary
    return [Path(p) for p in re.findall(r"(/\S+) \(0x", out)]


def base_entries() -> list[Entry]:
    busybox = _tool("busybox", "/bin/busybox")
    if _libraries(busybox):  # the guest has no libc for it
        raise ToolchainError(f"{busybox} is dynamically linked; install busybox-static")
    bpftool = _tool("bpftool", "/usr/sbin/bpftool")
    entries: list[Entry] = [
        ("bin/busybox", 0o100755, busybox.read_bytes()),
        ("bin/bpftool", 0o100755, bpftool.read_bytes()),
        (tool.GUEST_PATH, 0o100755, tool.binary()),
        ("init", 0o100755, INIT_SCRIPT.encode()),
        *((mount_point, 0o040755, b"") for mount_point in ("dev", "proc", "sys", "tmp")),
    ]
    for lib in _libraries(bpftool):
        entries.append((str(lib), 0o100755, lib.resolve().read_bytes()))
    applets = run_bytes("initramfs", [busybox, "--list"], decode=True).stdout.split()
    for applet in applets:
        if applet not in _BUSYBOX_SKIP:
            entries.append((f"bin/{applet}", 0o120777, b"busybox"))  # symlink: data is the target
    return entries


def base_archive() -> bytes:
    """The base archive, assembled from its inputs on every use (~35 ms):
    nothing read back from a cache reaches the guest."""
    return newc(base_entries())


def base_image() -> Path:
    """The base archive as a file in the cache, named by the sha256 of its
    content and checked against it on every use: an edited file (say, its
    /init) is rewritten, never booted."""
    data = base_archive()
    digest = hashlib.sha256(data).hexdigest()
    path = cache_dir() / "initramfs" / f"base-{digest[:16]}.cpio"
    try:
        if path.is_file() and not path.is_symlink() and sha256_file(path) == digest:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")  # matrix: one per VM thread
        tmp.write_bytes(data)
        tmp.rename(path)
    except OSError as err:
        raise ToolchainError(f"cannot write the initramfs cache {path}: {err.strerror or err}") from None
    return path


def write_initrd(payload: list[Entry], dest: Path, base: Path | None = None) -> Path:
    """Base + payload into `dest` (one file, two concatenated archives; each
    ends 4-byte aligned, which is all the kernel's unpacker needs). Without
    `base`, the base is assembled afresh, not read from the cache."""
    base_bytes = base.read_bytes() if base is not None else base_archive()
    dest.write_bytes(base_bytes + newc(payload))
    return dest

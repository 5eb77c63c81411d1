"""Target kernels: pinned Debian linux-image packages, fetched with
`apt-get download` into the cache, checked by sha256, unpacked without
installing anything. The uncompressed `vmlinux` (PVH entry) boots faster
than the bzImage, so it is extracted when the payload format allows."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolchainError


@dataclass(frozen=True)
class KernelPin:
    release: str  # what `--kernel` and `:kernel` name, e.g. "6.1"
    package: str  # Debian binary package
    version: str  # its exact version
    deb_sha256: str
    vmlinuz_sha256: str  # of ./boot/vmlinuz-* inside the .deb
    # Program kinds whose BPF_PROG_TEST_RUN on this kernel sets up no direct
    # packet pointers (data/data_end), so a packet case of a program that
    # reads headers cannot show its logic. Measured per pin: cgroup-skb on
    # 6.1 and 6.12 sees an empty packet (a newer 6.18 does not).
    no_packet_test_run: frozenset[str] = frozenset()


# Debian bookworm's own 6.1 (main) and its 6.12 (bookworm-security). Debian
# drops superseded versions from the archive at point releases: bump the pin
# (package, version, both hashes) when `apt-get download` cannot find it.
KERNELS: dict[str, KernelPin] = {
    k.release: k
    for k in [
        KernelPin(
            "6.1", "linux-image-6.1.0-50-amd64", "6.1.176-1",
            "7b5597492a0a65aee61985a492e6bcc3f2cde830072a0e3b3d8c7e1b90279bd3",
            "d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d",
            frozenset({"cgroup-skb"}),
        ),
        KernelPin(
            "6.12", "linux-image-6.12.117+deb12-amd64", "6.12.117-1~deb12u1",
            "803d36a7cda13355ae8152122470288b2636f19f1cb58162dd9d8b408af9b1b4",
            "90846a1289d0f21edd8f1226f6f0f6e8e5e72c8bf1ded444e1e38eeb7dc09f4a",
            frozenset({"cgroup-skb"}),
        ),
    ]
}
DEFAULT_KERNEL = "6.1"


@dataclass(frozen=True)
class Kernel:
    """A bootable image and what the report says about it."""

    name: str  # "6.1" or the path the user gave
    image: Path  # what QEMU's -kernel gets (vmlinux or bzImage)
    sha256: str  # of the vmlinuz / bzImage (the pinned artefact)
    package: str | None = None
    version: str | None = None
    no_packet_test_run: frozenset[str] = frozenset()  # unknown for a user's image: run everything


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tatara-build"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(spec: str | None) -> Kernel:
    """`None` → the default; "6.1"/"6.12" → a pinned package; else a path."""
    spec = spec or DEFAULT_KERNEL
    if spec in KERNELS:
        return _pinned(KERNELS[spec])
    path = Path(spec)
    if not path.is_file():
        known = ", ".join(KERNELS)
        raise ToolchainError(f"unknown kernel {spec!r}: expected one of {known} or a path to a bzImage/vmlinuz")
    return Kernel(name=spec, image=path.resolve(), sha256=sha256_file(path))


def _pinned(pin: KernelPin) -> Kernel:
    home = cache_dir() / "kernels" / f"{pin.package}_{pin.version}"
    vmlinuz = home / "vmlinuz"
    if not vmlinuz.is_file():
        _fetch(pin, home)
    if sha256_file(vmlinuz) != pin.vmlinuz_sha256:
        raise ToolchainError(f"cached kernel {vmlinuz} does not match its pinned sha256; delete {home} and retry")
    vmlinux = home / "vmlinux"
    image = vmlinux if vmlinux.is_file() and _recorded_ok(vmlinux) else vmlinuz
    return Kernel(pin.release, image, pin.vmlinuz_sha256, pin.package, pin.version, pin.no_packet_test_run)


def _recorded_ok(vmlinux: Path) -> bool:
    record = vmlinux.with_suffix(".sha256")
    return record.is_file() and record.read_text().strip() == sha256_file(vmlinux)


def _fetch(pin: KernelPin, home: Path) -> None:
    """Download the .deb, check it, unpack vmlinuz (+ vmlinux) into `home`
    atomically: a temp dir next to it, renamed into place."""
    home.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home.parent, prefix=".fetch-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # apt's _apt user may write here
        try:
            subprocess.run(
                ["apt-get", "download", f"{pin.package}={pin.version}"],
                cwd=work, check=True, capture_output=True, text=True, timeout=600,
            )
        except (OSError, subprocess.SubprocessError) as err:
            detail = getattr(err, "stderr", "") or str(err)
            raise ToolchainError(
                f"cannot download kernel {pin.package}={pin.version} with apt-get: {detail.strip()[-400:]}\n"
                "  pass --kernel PATH to boot a bzImage/vmlinuz you have"
            ) from None
        (deb,) = work.glob("*.deb")
        if sha256_file(deb) != pin.deb_sha256:
            raise ToolchainError(f"{deb.name}: sha256 does not match the pin {pin.deb_sha256}")
        out = work / "out"
        out.mkdir()
        listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
        members = subprocess.run(["tar", "-t"], input=listing, check=True, capture_output=True).stdout.decode()
        (member,) = [m for m in members.splitlines() if m.startswith("./boot/vmlinuz-")]
        subprocess.run(["tar", "-x", "-C", str(out), member], input=listing, check=True, capture_output=True)
        (out / member).rename(out / "vmlinuz")
        shutil.rmtree(out / "boot")
        vmlinux = extract_vmlinux((out / "vmlinuz").read_bytes())
        if vmlinux is not None:
            (out / "vmlinux").write_bytes(vmlinux)
            (out / "vmlinux.sha256").write_text(hashlib.sha256(vmlinux).hexdigest() + "\n")
        try:
            out.rename(home)
        except OSError:
            if not (home / "vmlinuz").is_file():
                raise
            # a concurrent fetch won: keep theirs


def extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The ELF kernel inside a bzImage (the boot header locates the
    compressed payload), or None when it cannot be had here."""
    if bzimage[0x202:0x206] != b"HdrS":
        return None
    setup_sects = bzimage[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    payload = bzimage[start : start + payload_length]
    try:
        if payload.startswith(b"\xfd7zXZ\x00"):
            elf = lzma.LZMADecompressor().decompress(payload)
        elif payload.startswith(b"\x1f\x8b"):
            elf = gzip.GzipFile(fileobj=io.BytesIO(payload)).read()
        elif payload.startswith(b"\x28\xb5\x2f\xfd") and shutil.which("zstd"):
            # the payload ends with the 4-byte decompressed size, not zstd data
            elf = subprocess.run(["zstd", "-dcq"], input=payload[:-4], capture_output=True, check=True).stdout
        else:
            return None
    except (lzma.LZMAError, OSError, EOFError, subprocess.SubprocessError):
        return None
    return elf if elf.startswith(b"\x7fELF") else None

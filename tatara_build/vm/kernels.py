"""Target kernels: one pinned Debian kernel per line (5.10, 6.1, 6.12, 7.2),
fetched with `apt-get download` from the line's suite (debian.py: a sources
list of our own under the cache) into $XDG_CACHE_HOME/tatara-build/kernels,
checked by sha256 on every use, unpacked without installing anything. The uncompressed `vmlinux` (PVH entry) boots faster
than the bzImage, so it is extracted when the payload format allows."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import struct
import tarfile
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..compile.run import run_bytes
from ..errors import ToolchainError, UsageError
from ..filelock import held


PINS_FILE = Path(__file__).with_name("kernel_pins.json")
# Where each kernel line lives in Debian's archive, most stable suite first
# (a release's main suite changes only at point releases; -security and sid
# replace builds as they come). `scripts/update-kernel-pins` searches these.
LINE_SUITES: dict[str, tuple[str, ...]] = {
    "5.10": ("bullseye-security", "bullseye"),
    "6.1": ("bookworm", "bookworm-security"),
    "6.12": ("trixie", "bookworm-security"),
    "7.2": ("sid",),
}
DEFAULT_KERNEL = "6.1"
UPDATE_COMMAND = "scripts/update-kernel-pins"
VERSION = re.compile(r"^([0-9]{1,2})\.([0-9]{1,3})(?:\.[0-9]{1,4})?$")


@dataclass(frozen=True)
class KernelPin:
    release: str  # the kernel line `--kernel`, `:kernel` and `:kernels` name, e.g. "6.1"
    suite: str  # the Debian suite it is downloaded from
    package: str  # Debian binary package holding the image
    version: str  # its exact version
    image: str  # the image's path inside the .deb
    deb_sha256: str
    vmlinuz_sha256: str  # of the image (bzImage) inside the .deb
    vmlinux_sha256: str | None = None  # of the ELF kernel extracted from it, when extractable
    # Program kinds whose BPF_PROG_TEST_RUN on this kernel sets up no direct
    # packet pointers (data/data_end), so a packet case of a program that
    # reads headers cannot show its logic. Measured per pin (cgroup-skb on
    # 6.1 and 6.12 sees an empty packet); the pin updater keeps it.
    no_packet_test_run: frozenset[str] = frozenset()

    @property
    def line(self) -> tuple[int, int]:
        return version_tuple(self.release)

    def to_json(self) -> dict:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "release"}
        data["no_packet_test_run"] = sorted(self.no_packet_test_run)
        return data


def load_pins(path: Path = PINS_FILE) -> dict[str, KernelPin]:
    data = json.loads(path.read_text())
    return {release: KernelPin(release=release, **{**fields, "no_packet_test_run": frozenset(fields.get("no_packet_test_run", ()))})
            for release, fields in data.items()}


def write_pins(pins: dict[str, KernelPin], path: Path = PINS_FILE) -> None:
    ordered = sorted(pins.values(), key=lambda p: p.line)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({p.release: p.to_json() for p in ordered}, indent=2) + "\n")
    tmp.replace(path)


# Debian's kernels, one per line, pinned by sha256 (kernel_pins.json).
# Debian drops superseded versions from the archive: when a pin is gone,
# `scripts/update-kernel-pins` rewrites the file with the suite's newest.
KERNELS: dict[str, KernelPin] = load_pins()


def version_tuple(version: str) -> tuple[int, int]:
    m = VERSION.match(version)
    if m is None:
        raise ValueError(f"not a kernel version: {version!r}")
    return int(m[1]), int(m[2])


def pin_for(version: str) -> KernelPin | None:
    """The pinned kernel of `version`'s line: "6.12.5" and "6.12" -> the 6.12 pin."""
    if not VERSION.match(version):
        return None
    line = "{}.{}".format(*version_tuple(version))
    return KERNELS.get(line)


def pinned_lines() -> str:
    return ", ".join(KERNELS)


class PinDropped(ToolchainError):
    """A pinned kernel the archive no longer has (exit 3): the message names
    the pin to bump. Tests skip on it, with this reason."""

    def __init__(self, pin: KernelPin):
        self.pin = pin
        super().__init__(
            f"kernel pin {pin.release} ({pin.package}={pin.version}) is no longer in Debian {pin.suite}: "
            f"bump it with `{UPDATE_COMMAND} {pin.release}` in tatara-build's repository (it rewrites "
            f"tatara_build/vm/kernel_pins.json), or boot an image you have with --kernel PATH"
        )


@dataclass(frozen=True)
class Kernel:
    """A bootable image and what the report says about it."""

    name: str  # "6.1" or the path the user gave
    image: Path  # what QEMU's -kernel gets (vmlinux or bzImage)
    sha256: str  # of the vmlinuz / bzImage (the pinned artefact)
    package: str | None = None
    version: str | None = None
    no_packet_test_run: frozenset[str] = frozenset()  # unknown for a user's image: run everything
    image_sha256: str | None = None  # of `image` when it is not the hashed artefact itself (the vmlinux)
    fallback: Path | None = None  # the checked vmlinuz to boot when `image` fails its check


def cache_dir() -> Path:
    from ..memo import cache_root

    return cache_root()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_list(text: str | None) -> list[str]:
    """`--kernel` text: "all", a comma list of versions and paths, or None
    (the source's choice). Paths are never split at commas inside them when
    the whole text names an existing file."""
    if text is None:
        return []
    if Path(text).is_file():
        return [text]
    items = [item.strip() for item in text.split(",") if item.strip()]
    out: list[str] = []
    for item in items:
        for name in (list(KERNELS) if item == "all" else [item]):
            if name not in out:
                out.append(name)
    return out


def validate(spec: str) -> None:
    """Raise UsageError (exit 2) now for a `--kernel` item that names no
    pinned line and no file; downloads happen later, in `resolve`."""
    if pin_for(spec) is None and not (not VERSION.match(spec) and Path(spec).is_file()):
        resolve(spec)  # raises the right message


def resolve(spec: str | None) -> Kernel:
    """`--kernel` value: `None` -> the default; a version ("6.1", "6.12.5")
    -> the pinned kernel of that line; an existing file -> that image."""
    spec = spec or DEFAULT_KERNEL
    pin = pin_for(spec)
    if pin is not None:
        return _pinned(pin)
    if VERSION.match(spec):
        raise UsageError(f"no pinned kernel for {spec}: the pinned lines are {pinned_lines()}; "
                         "give a path to a bzImage/vmlinuz with --kernel PATH to boot another")
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"unknown kernel {spec!r}: expected one of {pinned_lines()}, all, or a path to a bzImage/vmlinuz")
    return Kernel(name=spec, image=path.resolve(), sha256=sha256_file(path))


def resolve_version(version: str) -> Kernel:
    """A source's `:kernel` / `:kernels` value: a version only, never a path
    (the checker has already accepted its line)."""
    pin = pin_for(version)
    if pin is None:
        raise UsageError(f"no pinned kernel for {version}: the pinned lines are {pinned_lines()}")
    return _pinned(pin)


def _pinned(pin: KernelPin) -> Kernel:
    """The pin's image from the cache, its sha256 checked on every use; a
    missing or mismatching entry is fetched again, never served."""
    home = cache_entry(pin)
    vmlinuz = home / "vmlinuz"
    if not (vmlinuz.is_file() and sha256_file(vmlinuz) == pin.vmlinuz_sha256):
        if home.exists():
            shutil.rmtree(home)
        _fetch(pin, home)
        if sha256_file(vmlinuz) != pin.vmlinuz_sha256:
            raise ToolchainError(f"kernel {pin.package}={pin.version}: the image in the .deb does not match its "
                                 f"pinned sha256 {pin.vmlinuz_sha256}")
    vmlinux = home / "vmlinux"
    if pin.vmlinux_sha256 and not vmlinux.is_file():
        _extract_into(vmlinuz, vmlinux, pin.vmlinux_sha256)
    if pin.vmlinux_sha256 and vmlinux.is_file():  # checked on the bytes QEMU reads: opened_image
        return Kernel(pin.release, vmlinux, pin.vmlinuz_sha256, pin.package, pin.version, pin.no_packet_test_run,
                      image_sha256=pin.vmlinux_sha256, fallback=vmlinuz)
    return Kernel(pin.release, vmlinuz, pin.vmlinuz_sha256, pin.package, pin.version, pin.no_packet_test_run)


def _sha256_fd(fd: int) -> str:
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


@contextmanager
def opened_image(kernel: Kernel) -> Iterator[tuple[Path, int]]:
    """The image QEMU boots, as `/proc/self/fd/N` of a descriptor opened and
    hashed here (pass N to QEMU): the bytes checked are the bytes booted, so
    a file swapped into the cache after the check cannot boot. A cached
    vmlinux that fails its pin is removed (re-extracted next time) and the
    checked vmlinuz boots instead; anything else that fails is exit 3."""
    tries = [(kernel.image, kernel.image_sha256 or kernel.sha256)]
    if kernel.fallback is not None:
        tries.append((kernel.fallback, kernel.sha256))
    for path, expected in tries:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise ToolchainError(f"cannot read kernel image {path}: {err.strerror or err}") from None
        try:
            if _sha256_fd(fd) == expected:
                yield Path(f"/proc/self/fd/{fd}"), fd
                return
        finally:
            os.close(fd)
        if path != tries[-1][0]:
            path.unlink(missing_ok=True)  # a damaged vmlinux: re-extracted from the vmlinuz on the next run
    raise ToolchainError(f"kernel image {kernel.image} does not match its sha256 {tries[0][1][:16]}… (changed "
                         "since it was checked): not booted")


def _extract_into(vmlinuz: Path, vmlinux: Path, expected: str) -> None:
    elf = extract_vmlinux(vmlinuz.read_bytes())
    if elf is None or hashlib.sha256(elf).hexdigest() != expected:
        return  # boot the bzImage: slower, same kernel
    tmp = vmlinux.with_name(f".vmlinux.{os.getpid()}.{threading.get_ident()}")
    tmp.write_bytes(elf)
    tmp.replace(vmlinux)


@contextmanager
def _suite_lock(suite_home: Path):
    """One apt-get per suite directory at a time (parallel tests and VMs)."""
    with held(suite_home / "lock"):
        yield


def fetch_deb(pin_suite: str, package: str, version: str, into: Path) -> Path:
    """The .deb via apt-get download from the suite's own index, updating
    the index first when it is missing or no longer lists the version."""
    from . import debian

    suite = debian.suite(pin_suite, cache_dir())
    with _suite_lock(suite.home):
        if not any((suite.home / "lists").glob("*_InRelease")):
            debian.update(suite)
        try:
            return debian.download(suite, package, version, into)
        except debian.Dropped:
            debian.update(suite)  # maybe only our index is stale
            return debian.download(suite, package, version, into)


def deb_member(deb: Path, member: str, dest: Path) -> None:
    """Extract one file of a .deb (nothing is installed) to `dest`."""
    tar = run_bytes("kernel unpack", ["dpkg-deb", "--fsys-tarfile", deb],
                    missing="dpkg-deb not found: kernel packages are unpacked with it (install dpkg)").data
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        try:
            info = archive.getmember(member)
        except KeyError:
            raise ToolchainError(f"{deb.name} has no {member}") from None
        source = archive.extractfile(info)
        if source is None:
            raise ToolchainError(f"{deb.name}: {member} is not a regular file")
        dest.write_bytes(source.read())


def cache_entry(pin: KernelPin) -> Path:
    return cache_dir() / "kernels" / f"{pin.package}_{pin.version}"


def _fetch(pin: KernelPin, home: Path) -> None:
    """Download the .deb and install its image into the cache."""
    from . import debian

    home.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home.parent, prefix=".fetch-") as tmp:
        try:
            deb = fetch_deb(pin.suite, pin.package, pin.version, Path(tmp) / "deb")
        except debian.Dropped:
            raise PinDropped(pin) from None
        install(pin, deb, home)


def install(pin: KernelPin, deb: Path, home: Path) -> None:
    """Check the .deb, unpack the image (+ vmlinux) into `home` atomically:
    a temp dir next to it, renamed into place."""
    if sha256_file(deb) != pin.deb_sha256:
        raise ToolchainError(f"{deb.name}: sha256 does not match the pin {pin.deb_sha256}")
    home.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home.parent, prefix=".install-") as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        deb_member(deb, pin.image, out / "vmlinuz")
        if pin.vmlinux_sha256:
            _extract_into(out / "vmlinuz", out / "vmlinux", pin.vmlinux_sha256)
        try:
            out.rename(home)
        except OSError:
            if not (home / "vmlinuz").is_file():
                raise
            # a concurrent fetch won: keep theirs (checked on use like ours)


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
            ran = run_bytes("kernel unpack", ["zstd", "-dcq"], input=payload[:-4], check=False)
            if ran.exit_code != 0:
                return None
            elf = ran.data
        else:
            return None
    except (lzma.LZMAError, OSError, EOFError, ToolchainError):
        return None
    return elf if elf.startswith(b"\x7fELF") else None

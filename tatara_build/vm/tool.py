"""The guest's own BPF tool, `tool/tatara-guest.c` (its interface is in its
header comment and in guest.py): compiled on the host into one static
binary (`gcc -static … -lbpf -lelf -lz`; the VM has no libc of its own),
reproducibly (no paths, no build id, no timestamps), and cached by content:
the key covers the source, the flags, the compiler's search dirs and the
bytes of the static libraries it links. The cached binary is checked
against the sha256 recorded beside it on every use (an edited or truncated
file is rebuilt, never booted)."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

from ..compile.run import run
from ..errors import Diagnostic, ToolchainError
from .kernels import cache_dir, sha256_file

SOURCE = Path(__file__).with_name("tool") / "tatara-guest.c"
GUEST_PATH = "bin/tatara-guest"  # in the initramfs
# What the link needs, with the Debian package that ships it.
LIBRARIES = {"libbpf.a": "libbpf-dev", "libelf.a": "libelf-dev", "libz.a": "zlib1g-dev", "libc.a": "libc6-dev"}
FLAGS = ["-static", "-O2", "-Wall", "-Werror", "-s", "-Wl,--build-id=none", "-ffile-prefix-map={src}=."]
LINK = ["-lbpf", "-lelf", "-lz"]
_LOCK = threading.Lock()  # the kernel matrix boots from several threads


def _install_hint() -> str:
    return "install gcc, libbpf-dev, libelf-dev and zlib1g-dev (scripts/setup.sh does)"


def _compiler() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise ToolchainError(Diagnostic(f"gcc not found: it builds the VM guest's tool (tatara-guest); {_install_hint()}"))
    return gcc


def _libraries(gcc: str) -> tuple[str, dict[str, Path]]:
    """The compiler's library search dirs and where each static library is."""
    dirs_text = run("guest-tool", [gcc, "-print-search-dirs"]).stdout
    m = re.search(r"^libraries: =?(.*)$", dirs_text, re.M)
    dirs = [Path(d) for d in (m[1].split(":") if m else []) if d]
    found, missing = {}, []
    for name, package in LIBRARIES.items():
        path = next((d / name for d in dirs if (d / name).is_file()), None)
        if path is None:
            missing.append(f"{name} ({package})")
        else:
            found[name] = path.resolve()
    if missing:
        raise ToolchainError(Diagnostic(f"the VM guest's tool cannot be linked: missing {', '.join(missing)}; "
                                        + _install_hint()))
    return dirs_text, found


def cache_key() -> str:
    gcc = _compiler()
    dirs_text, libs = _libraries(gcc)
    digest = hashlib.sha256()
    for part in (SOURCE.read_bytes(), " ".join(FLAGS + LINK).encode(), dirs_text.encode()):
        digest.update(hashlib.sha256(part).digest())
    for name, path in sorted(libs.items()):
        digest.update(name.encode() + b"\0" + bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()


@functools.cache
def binary() -> bytes:
    """The tool's bytes (built at most once per key, then from the cache)."""
    key = cache_key()
    path = cache_dir() / "guest-tool" / f"tatara-guest-{key[:24]}"
    record = path.with_name(path.name + ".sha256")
    with _LOCK:
        try:
            if path.is_file() and record.is_file() and sha256_file(path) == record.read_text().strip():
                return path.read_bytes()
        except OSError:
            pass
        data = _compile()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            suffix = f".{os.getpid()}.{threading.get_ident()}"
            for dest, content in ((path, data), (record, (hashlib.sha256(data).hexdigest() + "\n").encode())):
                tmp = dest.with_name(f".{dest.name}{suffix}")
                tmp.write_bytes(content)
                tmp.rename(dest)
        except OSError:
            pass  # an unwritable cache only costs the time
        return data


def _compile() -> bytes:
    gcc = _compiler()
    with tempfile.TemporaryDirectory(prefix="tatara-guest-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        shutil.copyfile(SOURCE, src / SOURCE.name)
        out = Path(tmp) / "tatara-guest"
        flags = [f.format(src=src) for f in FLAGS]
        env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "LC_ALL": "C"}
        ran = run("guest-tool", [gcc, *flags, "-o", out, src / SOURCE.name, *LINK], cwd=src, env=env, check=False)
        if ran.exit_code != 0:
            from ..compile.run import failure

            raise failure(ran, "compiling the VM guest's tool (tatara-guest); " + _install_hint())
        return out.read_bytes()

"""What this very tatara-build code would compute, remembered on disk so
that the CLI's hot paths need not import it to know it.

    code_digest()     sha256 over the package's files: every memo here (and
                      the whole-output cache key) is tied to it; itself
                      remembered per install with each file's size, times
                      and inode, so an unchanged install only stats them
    dialect_index()   name -> summary and compiler of every registered
                      backend dialect (the registry imports every dialect,
                      hence the IR and pydantic; --help and a cache hit only
                      need these few strings)

A memo is a file in $XDG_CACHE_HOME/tatara-build; a missing, damaged or
foreign (other code) one is recomputed the slow way and rewritten, and an
unwritable cache only costs the time."""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path


def cache_root() -> Path:
    """$XDG_CACHE_HOME/tatara-build, the one place every cache lives (objects,
    outputs, probes, kernels, cargo targets). As the XDG spec says, a relative
    XDG_CACHE_HOME is invalid and ignored (else the cache would move with the
    cwd, even into OUT); without a usable HOME the cache goes to a directory
    of this user's under the temp dir."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(base):
        return Path(base) / "tatara-build"
    home = os.environ.get("HOME", "")
    if not os.path.isabs(home):
        try:
            import pwd

            home = pwd.getpwuid(os.getuid()).pw_dir
        except (ImportError, KeyError):
            home = ""
    if os.path.isabs(home):
        return Path(home) / ".cache" / "tatara-build"
    return Path(tempfile.gettempdir()) / f"tatara-build-cache-{os.getuid()}"


@functools.cache
def code_digest() -> str:
    """sha256 over tatara-build's package files (paths and bytes): any change
    to the code that turns a source into an output changes it. Hashing the
    ~1 MB of files cost half of what starting Python does, on every --help and
    cache hit: the digest is remembered per package directory with each
    file's size, mtime, ctime and inode (any write changes the ctime), and
    recomputed when one of them differs."""
    import zlib

    root = Path(__file__).resolve().parent
    files = _package_files(root)
    signature = [[rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino] for rel, st in files]
    path = cache_root() / f"code-{zlib.crc32(str(root).encode()):08x}.json"
    try:
        memo = json.loads(path.read_text())
        if memo.get("root") == str(root) and memo.get("files") == signature and isinstance(memo.get("digest"), str):
            return memo["digest"]
    except (OSError, ValueError, AttributeError):
        pass
    import hashlib

    digest = hashlib.sha256()
    for rel, _ in files:
        digest.update(rel.encode() + b"\0")
        digest.update(hashlib.sha256((root / rel).read_bytes()).digest())
    value = digest.hexdigest()
    _store(path, {"root": str(root), "files": signature, "digest": value})
    return value


def _package_files(root: Path) -> list[tuple[str, os.stat_result]]:
    """(relative posix path, stat) of every file under root but __pycache__, sorted."""
    out = []
    for top, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel = os.path.relpath(top, root)
        for name in names:
            full = os.path.join(top, name)
            info = os.stat(full)
            if os.path.isfile(full):
                out.append((name if rel == "." else f"{rel}/{name}", info))
    return sorted(out, key=lambda item: item[0])


def _store(path: Path, data: dict) -> None:
    """Write a memo atomically; an unwritable cache only costs the time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            json.dump(data, tmp)
        os.replace(tmp.name, path)
    except OSError:
        pass


def dialect_index() -> dict[str, dict[str, str | None]]:
    """{name: {"summary": …, "compiler": …}} in the registry's order. One
    memo file per code digest: installs (or checkouts) of other code sharing
    the cache do not overwrite each other's."""
    path = cache_root() / f"dialects-{code_digest()[:16]}.json"
    try:
        memo = json.loads(path.read_text())
        if memo.get("code") == code_digest() and isinstance(memo.get("dialects"), dict):
            return memo["dialects"]
    except (OSError, ValueError, AttributeError):
        pass
    from .backends import dialects

    index = {name: {"summary": d.summary, "compiler": d.compiler} for name, d in dialects().items()}
    _store(path, {"code": code_digest(), "dialects": index})
    return index

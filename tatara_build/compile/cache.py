"""Content-addressed object cache in $XDG_CACHE_HOME/tatara-build (default
~/.cache/tatara-build). The key is the sha256 of the generated sources, the
toolchain's identity and the flags, so an unchanged program built with an
unchanged toolchain gets its object back without compiling."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path


from ..memo import cache_root  # noqa: E402  (the one definition; re-exported for the build stages)


def tree_digest(root: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def key(**parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


OBJECT = "object.o"
RECORD = "object.sha256"  # the content hash the object was stored under


def _entry(cache_key: str) -> Path:
    return cache_root() / "objects" / cache_key[:2] / cache_key


def fetch(cache_key: str) -> bytes | None:
    """The cached object's bytes for this key, only when they hash to the
    sha256 recorded when the entry was stored: a flipped byte, a truncated
    file or another object swapped in is never served. A bad entry is
    removed, so the build that follows stores a good one. (Bytes, not a
    path: what was checked is what is used.)"""
    entry = _entry(cache_key)
    try:
        recorded = (entry / RECORD).read_text(encoding="ascii").strip()
        data = _read_no_follow(entry / OBJECT)
    except FileNotFoundError:
        if entry.exists():
            discard(entry)
        return None
    except (OSError, ValueError):
        recorded, data = "", b""
    if hashlib.sha256(data).hexdigest() == recorded:
        return data
    discard(entry)
    return None


def lookup(cache_key: str) -> Path | None:
    """The path of the cached object for this key, checked like `fetch`
    (callers that read it later should prefer `fetch`)."""
    return _entry(cache_key) / OBJECT if fetch(cache_key) is not None else None


def _read_no_follow(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def discard(entry: Path) -> None:
    """Remove an entry atomically (renamed away first: a concurrent reader
    sees it whole or not at all)."""
    try:
        trash = Path(tempfile.mkdtemp(prefix=".bad-", dir=entry.parent))
        os.rename(entry, trash / "entry")
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def store(cache_key: str, obj: Path, meta: dict) -> None:
    """Add an entry atomically (temp dir + rename); a racing writer wins. The
    object's sha256 is recorded: `lookup` serves nothing else. An unwritable
    cache (e.g. HOME=/homeless-shelter in a Nix build) is skipped."""
    entry = _entry(cache_key)
    if entry.exists():
        return
    tmp = None
    try:
        data = obj.read_bytes()
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
        (tmp / OBJECT).write_bytes(data)
        (tmp / RECORD).write_text(hashlib.sha256(data).hexdigest() + "\n", encoding="ascii")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        tmp.rename(entry)
    except OSError:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

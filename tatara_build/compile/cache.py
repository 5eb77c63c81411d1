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


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tatara-build"


def tree_digest(root: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def key(**parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _entry(cache_key: str) -> Path:
    return cache_root() / "objects" / cache_key[:2] / cache_key


def lookup(cache_key: str) -> Path | None:
    """The cached object for this key, if any."""
    obj = _entry(cache_key) / "object.o"
    return obj if obj.is_file() else None


def store(cache_key: str, obj: Path, meta: dict) -> None:
    """Add an entry atomically (temp dir + rename); a racing writer wins. An
    unwritable cache (e.g. HOME=/homeless-shelter in a Nix build) is skipped."""
    entry = _entry(cache_key)
    if entry.exists():
        return
    tmp = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
        shutil.copyfile(obj, tmp / "object.o")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        tmp.rename(entry)
    except OSError:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

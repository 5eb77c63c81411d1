"""What this very tatara-build code would compute, remembered on disk so
that the CLI's hot paths need not import it to know it.

    code_digest()     sha256 over the package's files: every memo here (and
                      the whole-output cache key) is tied to it
    dialect_index()   name -> summary and compiler of every registered
                      backend dialect (the registry imports every dialect,
                      hence the IR and pydantic; --help and a cache hit only
                      need these few strings)

A memo is a file in $XDG_CACHE_HOME/tatara-build; a missing, damaged or
foreign (other code) one is recomputed the slow way and rewritten, and an
unwritable cache only costs the time."""

from __future__ import annotations

import functools
import hashlib
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
    to the code that turns a source into an output changes it."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


_DIALECTS = "dialects.json"


def dialect_index() -> dict[str, dict[str, str | None]]:
    """{name: {"summary": …, "compiler": …}} in the registry's order."""
    path = cache_root() / _DIALECTS
    try:
        memo = json.loads(path.read_text())
        if memo.get("code") == code_digest() and isinstance(memo.get("dialects"), dict):
            return memo["dialects"]
    except (OSError, ValueError, AttributeError):
        pass
    from .backends import dialects

    index = {name: {"summary": d.summary, "compiler": d.compiler} for name, d in dialects().items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            json.dump({"code": code_digest(), "dialects": index}, tmp)
        os.replace(tmp.name, path)
    except OSError:
        pass
    return index

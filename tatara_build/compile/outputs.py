"""Whole-output cache: a host build's OUT (the objects, src/ and
manifest.json), keyed by everything that output is a function of, all known
before the source is even parsed:

    the source file's bytes and name      (what is built)
    tatara-build's own files              (reader, checker, backends, driver)
    the backend and build options         (cpu, linker, tools asked for, epoch)
    the toolchain's identity and flags    (from the on-disk probe memo: no tool runs)
    TATARA_PROVENANCE                     (the Nix derivations' input pins)

A hit replaces load, check, emit and compile by a copy, and imports none of
them (no pydantic: the CLI answers a hit without typer, see cli/fast.py). The
per-object cache in cache.py stays underneath: a miss here with the same
generated sources (say, a comment changed in the .tlisp) still skips the
compiler.

An entry is the OUT tree plus the sha256 of that tree recorded when it was
stored; it is served only when the files still hash to it, otherwise it is
removed and the build runs (and stores a good entry)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

from ..memo import code_digest, dialect_index
from . import cache

TREE = "tree"
RECORD = "tree.sha256"


def regular_source(source: Path) -> bytes | None:
    """The bytes of SOURCE when it is a plain file (never a FIFO or device,
    which reading for a key could block on); None sends the build the long
    way, whose loader reports what is wrong with it."""
    try:
        info = os.stat(source)
        if not stat.S_ISREG(info.st_mode):
            return None
        return Path(source).read_bytes()
    except OSError:
        return None


def key(source: Path, data: bytes, options, identity: dict, flags: list[str]) -> str:
    return cache.key(
        kind="output",
        source_sha256=hashlib.sha256(data).hexdigest(),
        source_name=Path(source).name,
        code=code_digest(),
        backend=options.backend,
        engine=options.engine,
        linker=options.linker,
        cpu=options.cpu,
        rustc=options.rustc,
        clang=options.clang,
        vendor_dir=str(options.vendor_dir) if options.vendor_dir else os.environ.get("TATARA_VENDOR_DIR"),
        epoch=options.source_date_epoch,
        toolchain=identity,
        flags=flags,
        provenance=os.environ.get("TATARA_PROVENANCE"),
    )


def key_for(source: Path, options) -> str | None:
    """The output key of building SOURCE with OPTIONS on the host, or None
    when this build cannot be served from the cache: no cache, nix engine,
    an unknown backend, not a plain file, or a toolchain problem, which the
    build then reports in its usual place (after any source error)."""
    from ..errors import ToolchainError

    if not options.use_cache or options.engine != "host":
        return None
    known = dialect_index().get(options.backend)
    if known is None or known["compiler"] is None:
        return None
    compiler = known["compiler"]
    data = regular_source(source)
    if data is None:
        return None
    from .engine import identity

    try:
        ident, flags = identity(options, compiler)
    except ToolchainError:
        return None
    return key(source, data, options, ident, flags)


def _entry(output_key: str) -> Path:
    return cache.cache_root() / "outputs" / output_key[:2] / output_key


def _recorded(output_key: str) -> str | None:
    entry = _entry(output_key)
    try:
        return (entry / RECORD).read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        if entry.exists():
            cache.discard(entry)
        return None


class _Damaged(Exception):
    """The copy of an entry did not hash to its record (unwinds `staging`)."""


def copy_into(tree: Path, dest: Path) -> None:
    """TREE's files into DEST (a staging dir, or a new entry); symlinks are
    not followed (an entry holds none, a planted one is not copied)."""
    for path in sorted(tree.rglob("*")):
        target = dest / path.relative_to(tree)
        if path.is_symlink():
            continue
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def store(output_key: str, out: Path) -> None:
    """Add OUT as an entry atomically (temp dir + rename; a racing writer
    wins). An unwritable cache is skipped: it only costs time."""
    entry = _entry(output_key)
    if entry.exists():
        return
    tmp = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
        copy_into(out, tmp / TREE)
        (tmp / RECORD).write_text(cache.tree_digest(tmp / TREE) + "\n", encoding="ascii")
        tmp.rename(entry)
    except OSError:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def serve(output_key: str, out: Path, progress) -> dict | None:
    """On a hit: OUT replaced by the cached output (through `staging`, like
    any build) and its manifest as a dict; None on a miss. What is checked
    against the record is the copy in the staging dir, i.e. exactly what
    becomes OUT; a damaged entry leaves OUT untouched and is discarded."""
    from . import staging

    recorded = _recorded(output_key)
    if recorded is None:
        return None
    tree = _entry(output_key) / TREE
    try:
        with staging(out) as tmp:
            try:
                copy_into(tree, tmp)
                good = cache.tree_digest(tmp) == recorded
            except OSError:
                good = False
            if not good:
                raise _Damaged()
            manifest = json.loads((tmp / "manifest.json").read_text())
    except _Damaged:
        cache.discard(_entry(output_key))
        return None
    progress.note(f"cache hit {output_key[:16]} ({cache.cache_root()})")
    return manifest

"""Output directories: tatara-build replaces a path only when it is absent,
an empty directory, or an output tatara-build wrote earlier; the swap is a
temp dir next to OUT renamed into place, so a failure or a signal leaves
OUT as it was and no `.tmp-*` / `.old-*` sibling behind.

Below every stage (build OUT, `emit -o`): the one place that decides what
may be removed. What it refuses, and why:
  - a symbolic link (the target is someone else's: never followed);
  - anything that is not a directory (a source file, a device node, …);
  - the current directory, a directory above it, or one holding the source;
  - a directory whose contents tatara-build did not write (no marker, or
    entries the marker does not account for).
A mount point (e.g. `/`) cannot be renamed away: an environment error (3).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .errors import Diagnostic, ToolchainError, UsageError
from .memo import cache_root

# What a build OUT holds besides its objects (*.o listed in the manifest).
BUILD_MANIFEST = "manifest.json"
BUILD_ENTRIES = frozenset({BUILD_MANIFEST, "src"})
# `emit -o DIR` writes this list of what it generated next to the files.
EMIT_MARKER = ".tatara-emit.json"
# Left by cargo in an emitted crate: derived, safe to replace with the crate.
EMIT_BYPRODUCTS = frozenset({"target"})
_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@dataclass(frozen=True)
class Owner:
    """How to recognise an earlier output of one kind: `foreign(dir)` names
    the first entry tatara-build did not write, or says why the directory
    is not its own; None when every entry is accounted for."""

    what: str  # "build output" / "emitted sources", for messages
    foreign: Callable[[Path], str | None]


def _build_foreign(directory: Path) -> str | None:
    manifest = directory / BUILD_MANIFEST
    try:
        if manifest.is_symlink() or not manifest.is_file():
            return f"it has no {BUILD_MANIFEST} written by tatara-build"
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"its {BUILD_MANIFEST} is not tatara-build's (not JSON)"
    if not isinstance(data, dict) or "tatara_build_version" not in data:
        return f"its {BUILD_MANIFEST} is not tatara-build's (no tatara_build_version field)"
    objects = data.get("objects")
    listed = {o.get("file") for o in objects if isinstance(o, dict)} if isinstance(objects, list) else set()
    for entry in sorted(os.listdir(directory)):
        if entry in BUILD_ENTRIES or entry in listed or owned_file(directory / entry, JUNIT_REPORT):
            continue  # a --junit report of ours may sit in OUT (`verify out/x.o --junit out/junit.xml`)
        return f"it holds `{entry}`, which tatara-build did not write"
    return None


def _emit_foreign(directory: Path) -> str | None:
    marker = directory / EMIT_MARKER
    try:
        if marker.is_symlink() or not marker.is_file():
            return f"it has no {EMIT_MARKER} (the list of files tatara-build generated there)"
        files = json.loads(marker.read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return f"its {EMIT_MARKER} is not tatara-build's"
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return f"its {EMIT_MARKER} is not tatara-build's"
    ours = {EMIT_MARKER, *EMIT_BYPRODUCTS} | {Path(f).parts[0] for f in files if Path(f).parts}
    for entry in sorted(os.listdir(directory)):
        if entry not in ours:
            return f"it holds `{entry}`, which tatara-build did not generate"
    return None


BUILD = Owner("build output", _build_foreign)
EMIT = Owner("emit output", _emit_foreign)


def emit_marker(files: list[str]) -> str:
    return json.dumps({"generated_by": "tatara-build", "files": sorted(files)}, indent=1) + "\n"


def canonical(out: Path | str) -> Path:
    """OUT as an absolute path whose parent is resolved but whose last part is
    not: a symlinked OUT stays visible as the link it is."""
    text = os.fspath(out)
    if text == "":
        raise UsageError("-o/--out is empty (an unset shell variable?): name the output directory")
    path = Path(os.path.abspath(text)) if Path(text).name in ("", ".", "..") else Path(text).absolute()
    if path.name in ("", ".", ".."):
        return path.resolve()
    return path.parent.resolve() / path.name


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:  # a loop, or a part that cannot be read: compare as written
        return Path(os.path.abspath(path))


def check(out: Path | str, owner: Owner, sources: tuple[Path, ...] = ()) -> Path:
    """The canonical OUT when tatara-build may replace it, else an error that
    names the path and the reason (exit 2; exit 3 for a mount point)."""
    path = canonical(out)

    def refuse(why: str, hint: str = "choose another -o, or remove it yourself") -> UsageError:
        return UsageError(Diagnostic(f"refusing to replace {path}: {why}", notes=[hint]))

    cache = _resolved(cache_root())
    if path == cache or cache in path.parents:
        raise refuse(f"it is inside tatara-build's cache {cache}")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    except OSError as err:
        raise ToolchainError(f"cannot inspect output path {path}: {err.strerror or err}") from None
    if stat.S_ISLNK(st.st_mode):
        raise refuse(f"it is a symbolic link (to {os.readlink(path)}); tatara-build never writes through one",
                     "name the real directory with -o, or remove the link")
    if not stat.S_ISDIR(st.st_mode):
        kind = "a regular file" if stat.S_ISREG(st.st_mode) else "not a directory"
        raise refuse(f"it is {kind}; the output must be a directory")
    if os.path.ismount(path):
        raise ToolchainError(Diagnostic(f"cannot replace {path}: it is a mount point (or /), which cannot be "
                                        "renamed", notes=["name a directory inside it with -o"]))
    if path in cache.parents:
        raise refuse(f"it holds tatara-build's cache {cache} (XDG_CACHE_HOME points into it)",
                     "set XDG_CACHE_HOME outside the output, or choose another -o")
    cwd = Path.cwd().resolve()
    if cwd == path or path in cwd.parents:
        raise refuse("it is the current directory or contains it")
    for source in sources:
        if path in Path(source).absolute().parents or path in Path(source).resolve().parents:
            raise refuse(f"it contains the source {source}")
    try:
        if not any(os.scandir(path)):
            return path
        why = owner.foreign(path)
    except OSError as err:
        raise ToolchainError(f"cannot read output directory {path}: {err.strerror or err}") from None
    if why is not None:
        raise refuse(f"it is not an earlier tatara-build {owner.what}: {why}")
    return path


@contextmanager
def replacing(out: Path | str, owner: Owner, sources: tuple[Path, ...] = ()) -> Iterator[Path]:
    """A temp dir next to OUT that replaces OUT on success and vanishes on any
    failure or signal. OUT is checked before (nothing is written when it may
    not be replaced) and again just before the swap (it may have changed)."""
    path = check(out, owner, sources)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; OUT should look like any directory
    except OSError as err:
        raise _unwritable(path, err) from None
    try:
        yield tmp
        check(path, owner, sources)
        _swap(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap(tmp: Path, path: Path) -> None:
    """OUT -> .old, tmp -> OUT, rm .old; signals wait until the renames are
    done, so OUT is never found missing."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    old_parent = None
    try:
        if os.path.lexists(path):
            old_parent = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.rename(path, old_parent / "old")
        try:
            os.rename(tmp, path)
        except OSError:
            if old_parent is not None:
                os.rename(old_parent / "old", path)  # put it back
            raise
    except OSError as err:
        raise _unwritable(path, err) from None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if old_parent is not None:
            shutil.rmtree(old_parent, ignore_errors=True)


def _unwritable(path: Path, err: OSError) -> ToolchainError:
    return ToolchainError(Diagnostic(f"cannot write the output {path}: {err.strerror or err}",
                                     notes=["choose a writable -o"]))


# --- single-file reports (--junit FILE) -------------------------------------------------------


@dataclass(frozen=True)
class FileOwner:
    """How to recognise a report file tatara-build wrote earlier, from its
    first bytes: `what` names it in messages."""

    what: str
    head: Callable[[bytes], bool]


def _report_path(path: Path | str, option: str) -> Path:
    text = os.fspath(path)
    if text == "":
        raise UsageError(f"{option} is empty (an unset shell variable?): name the file to write")
    return Path(os.path.abspath(text))


XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
# junit.write's files: the root <testsuites> is always named "tatara-build …", first attribute.
JUNIT_REPORT = FileOwner("JUnit report",
                         lambda head: head.startswith(XML_DECLARATION + b'<testsuites name="tatara-build'))


def owned_file(path: Path, owner: FileOwner, empty_ok: bool = False) -> bool:
    """Is `path` a regular file (not a link) that tatara-build wrote as `owner`
    (or, with `empty_ok`, an empty one: nothing to lose)?"""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return False
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return (empty_ok and head == b"") or owner.head(head)


def check_file(path: Path | str, owner: FileOwner, option: str) -> Path:
    """The absolute path when tatara-build may write the report there: absent,
    empty, or its own earlier report; else exit 2 naming the path and why."""
    target = _report_path(path, option)

    def refuse(why: str) -> UsageError:
        return UsageError(Diagnostic(f"refusing to write {option} {target}: {why}",
                                     notes=[f"choose another {option} path, or remove it yourself"]))

    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return target
    except NotADirectoryError:
        raise refuse("a part of the path above it is not a directory") from None
    except OSError as err:
        raise ToolchainError(f"cannot inspect {option} {target}: {err.strerror or err}") from None
    if stat.S_ISLNK(st.st_mode):
        raise refuse(f"it is a symbolic link (to {os.readlink(target)}); tatara-build never writes through one")
    if stat.S_ISDIR(st.st_mode):
        raise refuse("it is a directory; name a file in it")
    if not stat.S_ISREG(st.st_mode):
        raise refuse("it is not a regular file (a device, FIFO or socket)")
    if not owned_file(target, owner, empty_ok=True):
        raise refuse(f"it is not an earlier tatara-build {owner.what} (the file would be lost)")
    return target


def write_file(path: Path | str, data: bytes, owner: FileOwner, option: str) -> Path:
    """Write a report atomically (temp file next to it, renamed over it),
    after checking ownership again: exit 2 when it may not be replaced, 3
    when it cannot be written; no temp file is left either way."""
    target = check_file(path, owner, option)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp makes it 0600; a report should look like any file
        os.replace(tmp, target)
        tmp = None
    except OSError as err:
        raise ToolchainError(Diagnostic(f"cannot write {option} {target}: {err.strerror or err}",
                                        notes=[f"choose a writable {option} path"])) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return target

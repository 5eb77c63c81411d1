"""Frontend stage: `.tlisp` text -> s-expressions (reader) -> IR (forms)."""

from __future__ import annotations

import gc
import hashlib
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .. import ir
from ..errors import SourceError, Span, UsageError
from .forms import to_module
from .reader import read

__all__ = ["load", "parse"]


def parse(text: str, file: str = "<input>") -> ir.Module:
    """Read and convert source text; raises SourceError with every problem found."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    with collector_paused():
        return to_module(read(text, file), file, digest)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Reading builds ~30 objects per source line, all in trees (no reference
    cycles, so reference counting frees them): the cyclic collector's passes
    over them found nothing and took a third of the time of loading. What
    survives is the module, which lives as long as the run: it goes straight
    to the oldest generation (freeze + unfreeze moves every tracked object
    there without scanning any), instead of being scanned once per younger
    generation on the way (~10 ms per 1,000 forms)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:  # never thaw what someone else froze
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def _read_source(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_SOURCE_BYTES: a device or a
    FIFO (which would be read forever) and a huge file are refused at once.
    O_NONBLOCK: opening a FIFO must not wait for a writer before fstat."""
    from ..tables import MAX_SOURCE_BYTES

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise SourceError(f"cannot read {path}: {err.strerror or err}") from None
    with os.fdopen(fd, "rb") as f:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UsageError(f"{path} is not a regular file (a .tlisp source must be one)")
            data = f.read(MAX_SOURCE_BYTES + 1)
        except OSError as err:
            raise SourceError(f"cannot read {path}: {err.strerror or err}") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise UsageError(f"{path} is larger than {MAX_SOURCE_BYTES >> 20} MiB, the limit for a .tlisp source "
                         "(is it the right file?)")
    return data


def load(path: Path) -> ir.Module:
    """Read a `.tlisp` file into an (unchecked) IR module."""
    data = _read_source(Path(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start].decode("utf-8")
        line = before.count("\n") + 1
        col = len(before) - before.rfind("\n")  # characters, not bytes
        span = Span(file=str(path), line=line, col=col, end_line=line, end_col=col + 1)
        raise SourceError(f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start}", span) from None
    # A byte-order mark (some Windows editors write one) is not part of the text;
    # no editor shows it, so columns are counted without it.
    module = parse(text.removeprefix("\ufeff"), str(path))
    module.source_sha256 = hashlib.sha256(data).hexdigest()
    return module

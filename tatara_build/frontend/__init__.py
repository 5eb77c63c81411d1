"""Frontend stage: `.tlisp` text -> s-expressions (reader) -> IR (forms)."""

from __future__ import annotations

import gc
import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .. import ir
from ..errors import SourceError, Span
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


def load(path: Path) -> ir.Module:
    """Read a `.tlisp` file into an (unchecked) IR module."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise SourceError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start].decode("utf-8")
        line = before.count("\n") + 1
        col = len(before) - before.rfind("\n")  # characters, not bytes
        span = Span(file=str(path), line=line, col=col, end_line=line, end_col=col + 1)
        raise SourceError(f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start}", span) from None
    module = parse(text, str(path))
    module.source_sha256 = hashlib.sha256(data).hexdigest()
    return module

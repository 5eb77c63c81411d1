"""Frontend stage: `.tlisp` text -> s-expressions (reader) -> IR (forms)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .. import ir
from ..errors import SourceError
from .forms import to_module
from .reader import read

__all__ = ["load", "parse"]


def parse(text: str, file: str = "<input>") -> ir.Module:
    """Read and convert source text; raises SourceError with every problem found."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return to_module(read(text, file), file, digest)


def load(path: Path) -> ir.Module:
    """Read a `.tlisp` file into an (unchecked) IR module."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise SourceError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SourceError(f"{path} is not UTF-8 text (byte {err.start})") from None
    module = parse(text, str(path))
    module.source_sha256 = hashlib.sha256(data).hexdigest()
    return module

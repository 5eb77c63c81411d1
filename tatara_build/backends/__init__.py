"""Backends: the checked IR spelled by a dialect (aya-ebpf crate, libbpf C, ...).

Each dialect is one module here holding one `Generator` subclass that
registers itself (base.DIALECTS); `dialects()` imports every module of this
package, so a new backend is one new file.

`emit(module, backend, out_dir)` writes into a temporary sibling directory
and renames it into place, so a failure never leaves partial output; it
replaces only a directory it generated before (tatara_build/outdir.py)."""

from __future__ import annotations

import pkgutil
from importlib import import_module
from pathlib import Path

from .. import ir, outdir
from ..errors import TataraError
from .base import DIALECTS, Generator, stem

__all__ = ["dialects", "dialect", "names", "render", "emit", "stem"]


def dialects() -> dict[str, type[Generator]]:
    """Every registered dialect by name (the package's modules register theirs on import)."""
    for module in pkgutil.iter_modules(__path__):
        import_module(f"{__name__}.{module.name}")
    return dict(DIALECTS)


def names() -> tuple[str, ...]:
    return tuple(dialects())


def dialect(backend: str) -> type[Generator]:
    found = dialects().get(backend)
    if found is None:
        raise TataraError(f"unknown backend `{backend}`; choose one of: {', '.join(names())}")
    return found


def render(module: ir.Module, backend: str) -> dict[str, str]:
    """Relative path → file text for one backend (deterministic)."""
    return dialect(backend)(module).files()


def emit(module: ir.Module, backend: str, out_dir: Path | str, *, mark: bool = True) -> list[Path]:
    """Write the backend's files as the whole of out_dir; returns their paths.
    out_dir must be absent, empty or an earlier emit (its marker lists what
    was generated there: outdir.EMIT); it is replaced as a whole, never
    merged into, so none of the user's own files is ever overwritten.
    `mark=False` (the build's OUT/src, owned by the build) writes no marker."""
    files = render(module, backend)
    with outdir.replacing(out_dir, outdir.EMIT, (Path(module.file),)) as staging:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if mark:
            (staging / outdir.EMIT_MARKER).write_text(outdir.emit_marker(list(files)), encoding="utf-8")
    final = outdir.canonical(out_dir)
    return [final / rel for rel in sorted(files)]

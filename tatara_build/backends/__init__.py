"""Backends: the checked IR spelled by a dialect (aya-ebpf crate, libbpf C, ...).

Each dialect is one module here holding one `Generator` subclass that
registers itself (base.DIALECTS); `dialects()` imports every module of this
package, so a new backend is one new file.

`emit(module, backend, out_dir)` writes into a temporary sibling directory
and renames it into place, so a failure never leaves partial output."""

from __future__ import annotations

import os
import pkgutil
import shutil
import tempfile
from importlib import import_module
from pathlib import Path

from .. import ir
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


def emit(module: ir.Module, backend: str, out_dir: Path) -> list[Path]:
    """Write the backend's files under out_dir; returns their paths. Files
    of this backend already in out_dir are replaced as a whole."""
    files = render(module, backend)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tatara-emit-", dir=out_dir))
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for top in sorted({Path(rel).parts[0] for rel in files}):
            target = out_dir / top
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(staging / top, target)
        written = [out_dir / rel for rel in sorted(files)]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written

"""Backends: the checked IR spelled as an aya-ebpf crate or libbpf C.

`emit(module, backend, out_dir)` writes into a temporary sibling directory
and renames it into place, so a failure never leaves partial output."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .. import ir
from ..errors import TataraError

BACKENDS = ("aya", "c")


def render(module: ir.Module, backend: str) -> dict[str, str]:
    """Relative path → file text for one backend (deterministic)."""
    if backend == "c":
        from .libbpf import CGenerator

        return {f"{stem(module)}.bpf.c": CGenerator(module).render()}
    if backend == "aya":
        from .aya import render_crate

        return render_crate(module)
    raise TataraError(f"unknown backend `{backend}`; choose one of: {', '.join(BACKENDS)}")


def stem(module: ir.Module) -> str:
    name = Path(module.file).name
    return name.removesuffix(".tlisp") if name.endswith(".tlisp") else Path(name).stem


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
        written = []
        for top in sorted({Path(rel).parts[0] for rel in files}):
            target = out_dir / top
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(staging / top, target)
        written = [out_dir / rel for rel in sorted(files)]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written

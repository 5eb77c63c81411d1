"""CLI commands of the emit stage: `emit FILE --backend aya|c -o DIR`."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app, reports_errors
from .build import BACKEND, Backend


@app.command()
@reports_errors
def emit(
    file: Path = typer.Argument(..., help="the .tlisp source file", exists=True, dir_okay=False, readable=True),
    backend: Backend = BACKEND,
    out: Path = typer.Option(Path("out/src"), "--out", "-o", help="directory to write into"),
) -> None:
    """Generate sources from FILE without building them.

    aya: a complete crate in OUT (Cargo.toml, Cargo.lock, rust-toolchain.toml,
    .cargo/config.toml, src/main.rs), pinned to aya-ebpf 0.2.1.
    c: OUT/<file-stem>.bpf.c for `clang -O2 -g -target bpf`.
    Files are written to a temporary directory first and moved into place,
    so a failure leaves no partial output. Exit code 1 on a source error.

    Example: tatara-build emit examples/drop-syn.tlisp --backend c -o out/src
    """
    from ..backends import emit as emit_files
    from ..check import check
    from ..frontend import load

    for path in emit_files(check(load(file)), backend.value, out):
        print(path)

"""CLI commands of the emit stage: `emit FILE --backend aya|c -o DIR`."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app, reports_errors
from .build import BACKEND, FILE, Backend, out_path


@app.command()
@reports_errors
def emit(
    file: Path = FILE,
    backend: Backend = BACKEND,
    out: str = typer.Option("out/src", "--out", "-o", callback=out_path,
                            help="directory to write: absent, empty, or an earlier `emit` output (it is "
                                 "replaced whole; anything else is refused, exit 2)"),
    json_out: bool = typer.Option(False, "--json", help="print the written files (or the error) as JSON"),
) -> None:
    """Generate sources from FILE without building them.

    aya: a complete crate in OUT (Cargo.toml, Cargo.lock, rust-toolchain.toml,
    .cargo/config.toml, src/main.rs), pinned to aya-ebpf 0.2.1.
    c: OUT/<file-stem>.bpf.c for `clang -O2 -g -target bpf`.
    Files are written to a temporary directory first and moved into place,
    so a failure leaves no partial output. OUT gets a .tatara-emit.json
    listing what was generated: only such a directory (or an absent or
    empty one) is ever replaced. Exit code 1 on a source error, 2 when OUT
    holds anything else.

    Example: tatara-build emit examples/drop-syn.tlisp --backend c -o out/src
    """
    from ..backends import emit as emit_files
    from ..check import check
    from ..frontend import load

    written = emit_files(check(load(file)), backend.value, out)
    if json_out:
        import json

        print(json.dumps({"files": [str(p) for p in written]}, indent=2))
    else:
        for path in written:
            print(path)

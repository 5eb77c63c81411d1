"""CLI commands of the frontend stage: `check` and `ir`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .app import app, reports_errors


def _load_checked(path: Path):
    from ..check import check
    from ..frontend import load

    return check(load(path))


@app.command()
def check(
    files: list[Path] = typer.Argument(..., help="tatara-lisp source files", exists=True, dir_okay=False, readable=True),
) -> None:
    """Read, convert and type-check FILEs; print one OK line per good file.

    Errors are shown as file:line:col with the source line and a caret;
    every file is checked, and the exit code is 1 if any had errors.

    Example: tatara-build check examples/drop-syn.tlisp examples/port-counter.tlisp
    """
    from .fast import check_files

    raise typer.Exit(check_files(files))


@app.command()
@reports_errors
def ir(
    file: Path = typer.Argument(..., help="tatara-lisp source file", exists=True, dir_okay=False, readable=True),
    json: bool = typer.Option(True, "--json", help="print the typed IR as JSON (the only format; accepted for clarity)"),
    spans: bool = typer.Option(True, "--spans/--no-spans", help="include source spans on every node"),
) -> None:
    """Print the checked, typed IR of FILE as JSON (schema: tatara-build schema ir).

    Example: tatara-build ir examples/drop-syn.tlisp --json --no-spans
    """
    from .. import ir as ir_module

    sys.stdout.write(ir_module.to_json(_load_checked(file), spans=spans))

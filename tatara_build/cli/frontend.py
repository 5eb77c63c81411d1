"""CLI commands of the frontend stage: `check` and `ir`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .app import app, reports_errors
from ..errors import ExitCode, TataraError


def _load_checked(path: Path):
    from ..check import check
    from ..frontend import load

    return check(load(path))


def _summary(module) -> str:
    cases = sum(len(t.cases) for t in module.tests)
    parts = [
        f"{len(module.programs)} program(s)",
        f"{len(module.maps)} map(s)",
        f"{len(module.policies)} polic{'y' if len(module.policies) == 1 else 'ies'}",
        f"{len(module.tests)} test(s) with {cases} case(s)",
    ]
    return ", ".join(parts)


@app.command()
def check(
    files: list[Path] = typer.Argument(..., help="tatara-lisp source files", exists=True, dir_okay=False, readable=True),
) -> None:
    """Read, convert and type-check FILEs; print one OK line per good file.

    Errors are shown as file:line:col with the source line and a caret;
    every file is checked, and the exit code is 1 if any had errors.

    Example: tatara-build check examples/drop-syn.tlisp examples/port-counter.tlisp
    """
    code = ExitCode.OK
    for path in files:
        try:
            module = _load_checked(path)
        except TataraError as err:
            print(err.render(), file=sys.stderr)
            n = len(err.diagnostics)
            print(f"FAILED {path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
            code = max(code, err.exit_code)
            continue
        print(f"OK {path}: {_summary(module)}")
    raise typer.Exit(int(code))


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

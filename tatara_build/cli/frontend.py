"""CLI commands of the frontend stage: `check` and `ir`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .app import app, error_document, reports_errors
from .build import regular_file


def _load_checked(path: Path):
    from ..check import check
    from ..frontend import load

    return check(load(path))


@app.command()
def check(
    files: list[Path] = typer.Argument(..., help="tatara-lisp source files", exists=True, dir_okay=False,
                                       readable=True, callback=regular_file),
    json_out: bool = typer.Option(False, "--json", help="one JSON document: per file ok/summary or errors"),
) -> None:
    """Read, convert and type-check FILEs; print one OK line per good file.

    Errors are shown as file:line:col with the source line and a caret;
    every file is checked, and the exit code is 1 if any had errors.

    Example: tatara-build check examples/drop-syn.tlisp examples/port-counter.tlisp
    """
    from .fast import check_files

    if not json_out:
        raise typer.Exit(check_files(files))
    import json

    from ..errors import ExitCode, TataraError
    from .fast import summary

    code, rows, failures = ExitCode.OK, [], []
    for path in files:
        try:
            module = _load_checked(path)
        except TataraError as err:
            rendered = err.render()
            print(rendered, file=sys.stderr)
            code = max(code, err.exit_code)
            rows.append({"file": str(path), "ok": False, **error_document(err.exit_code, rendered, err.diagnostics)})
            failures.append(err)
            continue
        rows.append({"file": str(path), "ok": True, "summary": summary(module)})
    document = {"files": rows}
    if failures:
        document |= error_document(code, "\n".join(f.render() for f in failures),
                                   [d for f in failures for d in f.diagnostics])
    print(json.dumps(document, indent=2))
    raise typer.Exit(int(code))


@app.command()
@reports_errors
def ir(
    file: Path = typer.Argument(..., help="tatara-lisp source file", exists=True, dir_okay=False, readable=True,
                                callback=regular_file),
    json: bool = typer.Option(True, "--json", help="print the typed IR as JSON (the only format; accepted for clarity)"),
    spans: bool = typer.Option(True, "--spans/--no-spans", help="include source spans on every node"),
) -> None:
    """Print the checked, typed IR of FILE as JSON (schema: tatara-build schema ir).

    Example: tatara-build ir examples/drop-syn.tlisp --json --no-spans
    """
    from .. import ir as ir_module

    sys.stdout.write(ir_module.to_json(_load_checked(file), spans=spans))

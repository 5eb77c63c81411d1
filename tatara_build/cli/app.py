"""The typer app and the one place where errors become messages and exit
codes. Commands live in sibling modules, one per pipeline stage."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

import typer

from ..errors import TataraError

app = typer.Typer(
    name="tatara-build",
    help="Compile tatara-lisp eBPF programs to reproducible, verifier-checked BPF objects.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click help and usage errors: rich (and the markdown parser it
    # pulls in) tripled the time of `--help` and of every usage error
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., object])

# Set by main() when the command line asks for --json: every failure is then
# also one JSON document on stdout (usage errors included).
JSON_MODE = False


def error_document(code: int, message: str, diagnostics=()) -> dict:
    """The one JSON shape of a failure: {"error": {exit_code, message, diagnostics}}."""
    return {"error": {
        "exit_code": int(code), "message": message,
        "diagnostics": [{"message": d.message, "span": d.span.model_dump() if d.span else None, "notes": d.notes}
                        for d in diagnostics],
    }}


def print_error_json(err: TataraError) -> None:
    import json

    print(json.dumps(error_document(err.exit_code, err.render(), err.diagnostics), indent=2))
    err.shown_as_json = True


def reports_errors(fn: F) -> F:
    """Render a `TataraError` (file:line:col, source line, caret) on stderr
    and exit with its code; never show a traceback for one. In JSON mode
    (--json given, or a command whose output is JSON only) the error is also
    the one JSON document on stdout, unless the command already printed one
    that carries it."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TataraError as err:
            print(err.render(), file=sys.stderr)
            json_mode = JSON_MODE or kwargs.get("json_out") is True or kwargs.get("json") is True
            if json_mode and not getattr(err, "shown_as_json", False):
                print_error_json(err)
            raise typer.Exit(int(err.exit_code)) from None

    return wrapper  # type: ignore[return-value]


def json_errors(json_mode: bool, call: Callable[[], object]):
    """Run `call` (errors become JSON in `reports_errors`, once)."""
    return call()


# `tatara-build schema WHAT`: each stage registers the models it publishes.
SCHEMAS: dict[str, Callable[[], type]] = {}


@app.command()
@reports_errors
def schema(what: str = typer.Argument("ir", help="Which schema: " + "|".join(["ir", "manifest", "…"]))) -> None:
    """Print the JSON Schema of the IR (default) or another published model.

    Example: tatara-build schema ir > ir.schema.json
    """
    import json

    if what not in SCHEMAS:
        raise typer.BadParameter(f"unknown schema {what!r}; known: {', '.join(sorted(SCHEMAS))}")
    print(json.dumps(SCHEMAS[what]().model_json_schema(), indent=2, sort_keys=True))


def _ir_schema() -> type:
    from ..ir import Module

    return Module


SCHEMAS["ir"] = _ir_schema

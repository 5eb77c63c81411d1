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
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., object])


def reports_errors(fn: F) -> F:
    """Render a `TataraError` (file:line:col, source line, caret) on stderr
    and exit with its code; never show a traceback for one."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TataraError as err:
            print(err.render(), file=sys.stderr)
            raise typer.Exit(int(err.exit_code)) from None

    return wrapper  # type: ignore[return-value]

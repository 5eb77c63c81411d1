"""`tatara-build` command line: one module per pipeline stage registers its
commands on the shared app.

Startup time is part of the interface (issue 18): `main` answers the hot
command, `check FILE...` with plain file arguments, without importing typer,
and the typer app with its stage modules is imported only when it is used.
Every stage module imports its heavy dependencies (pydantic models, the
backends, the VM, rich) inside the command that needs them."""

from __future__ import annotations

import sys


def _load_app():
    from .app import app
    from . import frontend, emit, build, vm  # noqa: F401  (register commands)

    # importing the submodule `app` bound `tatara_build.cli.app` to it; the
    # package's `app` is the typer app, as it was before the import went lazy
    globals()["app"] = app
    return app


def main() -> None:
    from .fast import dispatch

    code = dispatch(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    _load_app()()


def __getattr__(name: str):
    # `from tatara_build.cli import app` (tests, embedding) still gets the
    # fully registered typer app.
    if name == "app":
        return _load_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

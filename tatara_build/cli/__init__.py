"""`tatara-build` command line: one module per pipeline stage registers its
commands on the shared app.

Startup time is part of the interface (issue 18): `main` answers the hot
command, `check FILE...` with plain file arguments, without importing typer,
and the typer app with its stage modules is imported only when it is used.
Every stage module imports its heavy dependencies (pydantic models, the
backends, the VM, rich) inside the command that needs them. `main` turns
every failure into one message and exit code (and, with --json, one JSON
document); signals unwind (tatara_build/interrupts.py)."""

from __future__ import annotations

import sys


def _load_app():
    from .app import app
    from . import frontend, emit, build, vm  # noqa: F401  (register commands)

    # importing the submodule `app` bound `tatara_build.cli.app` to it; the
    # package's `app` is the typer app, as it was before the import went lazy
    globals()["app"] = app
    return app


def main(argv: list[str] | None = None) -> None:
    """The one place where anything that escapes a command becomes a message
    and an exit code, never a traceback: usage errors (2), TataraErrors
    (their code), signals (128 + N, tatara_build/interrupts.py), the
    environment (OSError: 3) and our own bugs (3; the traceback only with
    TATARA_DEBUG=1). With --json each of them is one JSON document on stdout."""
    from .. import interrupts

    args = sys.argv[1:] if argv is None else list(argv)
    options = args[: args.index("--")] if "--" in args else args
    json_mode = "--json" in options
    interrupts.install()
    try:
        code = _run(args, json_mode)
    except interrupts.Interrupted as stop:  # it landed before _run's own handler was in place
        code = stop.exit_code
    sys.exit(_flushed(code))


def _flushed(code: int) -> int:
    """Flush stdout now: a reader that went away (`| head`) or a full disk
    (`> /dev/full`) is an exit code here, not Python's "Exception ignored"
    at shutdown. stdout then points at /dev/null so the final flush is quiet."""
    import os

    try:
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        failed = code or 1
    except OSError as err:
        try:
            print(f"error: cannot write the output: {err.strerror or err}", file=sys.stderr)
        except OSError:
            pass
        failed = code or 3
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return failed


def _run(args: list[str], json_mode: bool) -> int:
    """The command's exit code; every failure that escapes it is one message
    (and with --json one JSON document), never a traceback."""
    import os

    from .. import interrupts
    from ..errors import TataraError

    try:
        if not json_mode:  # the fast path prints no JSON documents
            from .fast import dispatch

            code = dispatch(args)
            if code is not None:
                return code
        return _run_click(args, json_mode)
    except interrupts.Interrupted as stop:
        return _fail(json_mode, stop.exit_code, f"tatara-build: {stop}; stopped, temporary files removed")
    except TataraError as err:  # from outside a command's own handler
        shown = getattr(err, "shown_as_json", False)
        return _fail(json_mode and not shown, int(err.exit_code), err.render(), err.diagnostics)
    except BrokenPipeError:
        return 1
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        return _fail(json_mode, 3, f"error: {err.strerror or err}{where}")
    except Exception as err:  # a bug of ours: still one clean message
        if os.environ.get("TATARA_DEBUG"):
            import traceback

            traceback.print_exc()
        return _fail(json_mode, 3, f"internal error: {type(err).__name__}: {err}\n"
                                   "  (a bug in tatara-build; TATARA_DEBUG=1 shows where)")


def _run_click(args: list[str], json_mode: bool) -> int:
    """The full typer app; click's own outcomes (usage errors, help, abort) as exit codes."""
    import typer
    from typer import _click as click

    from . import app as app_module

    app_module.JSON_MODE = json_mode
    command = typer.main.get_command(_load_app())
    try:
        result = command.main(args=args, prog_name="tatara-build", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as err:  # the help was shown
        return _fail(json_mode, err.exit_code, "error: no command given") if json_mode else err.exit_code
    except click.exceptions.ClickException as err:
        return _fail(json_mode, err.exit_code, f"Usage: tatara-build {' '.join(args[:1])} …\n"
                                               f"error: {err.format_message()}\n"
                                               "  (tatara-build --help, or tatara-build COMMAND --help)")
    except typer.Exit as done:  # raised outside a command's own return path
        return done.exit_code
    except typer.Abort:
        return _fail(json_mode, 130, "tatara-build: aborted")
    return result if isinstance(result, int) else 0


def _fail(json_mode: bool, code: int, message: str, diagnostics=()) -> int:
    try:
        print(message, file=sys.stderr)
        if json_mode:
            import json

            from .app import error_document

            print(json.dumps(error_document(code, message, diagnostics), indent=2), flush=True)
    except OSError:  # stdout or stderr itself is what failed (a full disk, a closed pipe)
        pass
    return code


def __getattr__(name: str):
    # `from tatara_build.cli import app` (tests, embedding) still gets the
    # fully registered typer app.
    if name == "app":
        return _load_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The `check` command without typer: its body, shared with the typer
command in `frontend.py`, and a dispatcher that runs it directly when the
command line is one typer would accept unchanged (`check` and existing,
readable, non-directory files, no options). Anything else (options, --help,
a missing file) goes to typer, so its usage messages and exit code 2 stay
exactly as they are."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def summary(module) -> str:
    cases = sum(len(t.cases) for t in module.tests)
    parts = [
        f"{len(module.programs)} program(s)",
        f"{len(module.maps)} map(s)",
        f"{len(module.policies)} polic{'y' if len(module.policies) == 1 else 'ies'}",
        f"{len(module.tests)} test(s) with {cases} case(s)",
    ]
    return ", ".join(parts)


def check_files(files: list[Path]) -> int:
    """Check every file, print one OK line per good one and each failure
    on stderr; the worst exit code."""
    from ..check import check
    from ..errors import ExitCode, TataraError
    from ..frontend import load

    code = ExitCode.OK
    for path in files:
        try:
            module = check(load(path))
        except TataraError as err:
            print(err.render(), file=sys.stderr)
            n = len(err.diagnostics)
            print(f"FAILED {path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
            code = max(code, err.exit_code)
            continue
        print(f"OK {path}: {summary(module)}")
    return int(code)


def _plain_file(arg: str) -> bool:
    """What typer's `Path(exists=True, dir_okay=False, readable=True)`
    accepts, and nothing it might read as an option."""
    if not arg or arg.startswith("-"):
        return False
    return os.path.exists(arg) and not os.path.isdir(arg) and os.access(arg, os.R_OK)


def dispatch(argv: list[str]) -> int | None:
    """The exit code of a hot command run here, or None: let typer run it."""
    if len(argv) >= 2 and argv[0] == "check" and all(_plain_file(a) for a in argv[1:]):
        return check_files([Path(a) for a in argv[1:]])
    return None

"""The hot commands without typer. `dispatch` runs them directly when the
command line is one typer would accept unchanged; anything else (other
options, --help, a missing file) goes to typer, so its usage messages and
exit code 2 stay exactly as they are.

    check FILE...                         (the body of the typer command too)
    build FILE [--backend aya|c] [-o|--out DIR] [--cpu v1|v2|v3]
                                          answered here only on a whole-output
                                          cache hit (compile/outputs.py); a
                                          miss is built by the typer command
"""

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
    from ..errors import ExitCode, TataraError, visible
    from ..frontend import load

    code = ExitCode.OK
    for path in files:
        try:
            module = check(load(path))
        except TataraError as err:
            print(err.render(), file=sys.stderr)
            n = len(err.diagnostics)
            print(f"FAILED {visible(str(path), keep='')}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
            code = max(code, err.exit_code)
            continue
        print(f"OK {visible(str(path), keep='')}: {summary(module)}")
    return int(code)


def _plain_file(arg: str) -> bool:
    """What typer's `Path(exists=True, dir_okay=False, readable=True)`
    accepts, and nothing it might read as an option."""
    if not arg or arg.startswith("-"):
        return False
    return os.path.exists(arg) and not os.path.isdir(arg) and os.access(arg, os.R_OK)


def object_line(out: Path, file: str, sha256: str, size: int, programs: int) -> str:
    """What `build` says about each object it wrote."""
    return f"{out / file}  sha256 {sha256}  ({size} bytes, {programs} program(s))"


# the options the fast `build` understands, with the values it accepts
# (anything else, --json or --no-cache included, is typer's)
_BUILD_OPTIONS = {"--backend": ("aya", "c"), "-o": None, "--out": None, "--cpu": ("v1", "v2", "v3")}
_BUILD_DEFAULTS = {"--backend": "aya", "--out": "out", "--cpu": "v3"}
# environment variables typer reads into build options: with one set, typer decides
_BUILD_ENV = ("TATARA_VENDOR_DIR", "TATARA_RUSTC", "TATARA_CLANG")


def _plain_build(args: list[str]) -> tuple[Path, dict[str, str]] | None:
    files: list[str] = []
    values = dict(_BUILD_DEFAULTS)
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in _BUILD_OPTIONS:
            if eq:
                value = inline
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                return None
            allowed = _BUILD_OPTIONS[name]
            if (allowed is not None and value not in allowed) or not value or value.startswith("-"):
                return None
            values["--out" if name == "-o" else name] = value
        elif _plain_file(arg):
            files.append(arg)
        else:
            return None
        i += 1
    if len(files) != 1 or any(os.environ.get(v) for v in _BUILD_ENV):
        return None
    return Path(files[0]), values


def build_from_cache(args: list[str]) -> int | None:
    """`build` answered from the whole-output cache, or None (build it)."""
    parsed = _plain_build(args)
    if parsed is None:
        return None
    source, values = parsed
    from ..compile import BuildOptions
    from ..compile.outputs import key_for, serve
    from ..compile.progress import make_progress
    from ..errors import TataraError

    options = BuildOptions(backend=values["--backend"], cpu=values["--cpu"])
    output_key = key_for(source, options)
    if output_key is None:
        return None
    out = Path(values["--out"])
    progress = make_progress(False)
    import signal

    # as the typer command does: SIGTERM unwinds, so the temp dir next to OUT is removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        manifest = serve(output_key, out, progress)
    except TataraError as err:  # e.g. an OUT the build may not replace
        print(err.render(), file=sys.stderr)
        return int(err.exit_code)
    except OSError:
        return None  # the typer command runs and reports it
    if manifest is None:
        return None
    for obj in manifest["objects"]:
        progress.note(object_line(out, obj["file"], obj["sha256"], obj["size"], len(obj["programs"])))
    return 0


def dispatch(argv: list[str]) -> int | None:
    """The exit code of a hot command run here, or None: let typer run it."""
    if len(argv) >= 2 and argv[0] == "check" and all(_plain_file(a) for a in argv[1:]):
        return check_files([Path(a) for a in argv[1:]])
    if argv[:1] == ["build"]:
        return build_from_cache(argv[1:])
    return None

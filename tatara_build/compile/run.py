"""The one subprocess wrapper of the build stage (via `sh`): it records the
command line, its duration and the tail of its stderr, and turns a failure
into a ToolchainError that names the stage, the command and that tail."""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Diagnostic, ToolchainError

STDERR_TAIL_LINES = 25


@dataclass
class Ran:
    stage: str
    argv: list[str]
    seconds: float
    exit_code: int
    stdout: str
    stderr: str

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        return "\n".join(self.stderr.rstrip().splitlines()[-lines:])


@dataclass
class Log:
    """Every command a build ran, in order (for reports and --json)."""

    runs: list[Ran] = field(default_factory=list)


LOG = Log()


def run(
    stage: str,
    argv: list[str | os.PathLike],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> Ran:
    """Run `argv`; with `check`, a non-zero exit raises ToolchainError."""
    import sh  # here, not at import: a cache hit runs no tool and should not pay for sh

    args = [str(a) for a in argv]
    started = time.monotonic()
    try:
        proc = sh.Command(args[0])(
            *args[1:], _cwd=str(cwd) if cwd else None, _env=env if env is not None else dict(os.environ),
            _ok_code=list(range(256)), _timeout=timeout, _decode_errors="replace",
            _bg=True, _bg_exc=False, _new_group=True,
        )
        try:
            proc.wait()
        except BaseException:
            # Interrupted (SIGTERM, Ctrl-C): take the whole tool tree down with us.
            _kill_group(proc)
            raise
        code, out, err = proc.exit_code, proc.stdout, proc.stderr
    except sh.CommandNotFound:
        raise ToolchainError(Diagnostic(f"{stage}: program not found: {args[0]}", notes=[f"command: {shlex.join(args)}"]))
    except sh.TimeoutException:
        raise ToolchainError(Diagnostic(f"{stage}: timed out after {timeout} s", notes=[f"command: {shlex.join(args)}"]))
    ran = Ran(stage, args, time.monotonic() - started, code, _text(out), _text(err))
    LOG.runs.append(ran)
    if check and code != 0:
        raise failure(ran)
    return ran


def _kill_group(proc) -> None:
    try:
        proc.process.kill_group()
        proc.wait()
    except Exception:  # already gone
        pass


def failure(ran: Ran, message: str | None = None) -> ToolchainError:
    """The error for a failed command: stage, command line, stderr tail."""
    tail = ran.stderr_tail() or "\n".join(ran.stdout.rstrip().splitlines()[-STDERR_TAIL_LINES:])
    notes = [f"command: {ran.command}", f"exit status: {ran.exit_code}"]
    if tail:
        notes.append("stderr (last lines):\n" + tail)
    return ToolchainError(Diagnostic(f"{ran.stage} failed" + (f": {message}" if message else ""), notes=notes))


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data

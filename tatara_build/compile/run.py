"""The one subprocess wrapper (the build stage and the vm stage): it records
the command line, its duration and the tail of its stderr, and turns a
failure into a ToolchainError that names the stage, the command and that
tail. `run` (via `sh`) is for tools that print text; `run_bytes` for tools
whose output is data (a tar stream, a decompressed kernel) or that a signal
must end from any thread (apt-get in a matrix worker): its own process
group, tracked by interrupts.py. QEMU, which streams its console while it
runs, is the one process started elsewhere (vm/qemu.py)."""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import interrupts
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
    data: bytes = b""  # run_bytes: stdout as bytes (stdout is its text only with decode=True)

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
        interrupts.track(proc.pid)  # the handler kills the group even if its exception is lost
        try:
            proc.wait()
            interrupts.check()
        except BaseException:
            # Interrupted (SIGTERM, Ctrl-C): take the whole tool tree down with us.
            _kill_group(proc)
            raise
        finally:
            interrupts.untrack(proc.pid)
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


def run_bytes(
    stage: str,
    argv: list[str | os.PathLike],
    *,
    input: bytes | None = None,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float | None = None,
    decode: bool = False,
    missing: str | None = None,
) -> Ran:
    """Run `argv` with `input` on stdin; stdout is kept as bytes (`data`).
    `missing`: the message when the program does not exist (else a generic
    one). A non-zero exit raises ToolchainError with `check`; a timeout
    always does; a signal kills the whole group (interrupts.py)."""
    import subprocess

    args = [str(a) for a in argv]
    started = time.monotonic()
    try:
        proc = subprocess.Popen(args, cwd=cwd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as err:
        found = not isinstance(err, FileNotFoundError)
        message = f"{stage}: cannot run {args[0]}: {err.strerror or err}" if found or not missing else missing
        raise ToolchainError(Diagnostic(message, notes=[f"command: {shlex.join(args)}"])) from None
    interrupts.track(proc.pid)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolchainError(Diagnostic(f"{stage}: timed out after {timeout:.0f} s",
                                        notes=[f"command: {shlex.join(args)}"])) from None
    finally:
        interrupts.end(proc)
    interrupts.check()
    ran = Ran(stage, args, time.monotonic() - started, proc.returncode, _text(out) if decode else "", _text(err), out)
    LOG.runs.append(replace(ran, data=b""))  # the log keeps the record, not a kernel's bytes
    if check and ran.exit_code != 0:
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

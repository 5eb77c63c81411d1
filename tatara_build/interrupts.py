"""SIGINT, SIGTERM and SIGHUP unwind the Python stack like an error: every
`finally` runs, so QEMU's and the compilers' process groups are killed
(vm/qemu.py, compile/run.py), temp dirs are removed and OUT stays as it was
(outdir.py). The CLI turns the exception into exit 128 + the signal number."""

from __future__ import annotations

import os
import signal
import threading

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# Process groups started from worker threads (QEMU, one per kernel): Python
# runs signal handlers in the main thread only, so the handler kills these
# itself; their threads then see the VM gone and unwind on their own.
_GROUPS: set[int] = set()
_LOCK = threading.Lock()
_STOPPING = threading.Event()
_SIGNUM = [signal.SIGTERM]  # the signal that set _STOPPING


class Interrupted(BaseException):
    """Not an Exception: no `except Exception` on the way may swallow it."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def check() -> None:
    """Raise Interrupted if a signal arrived. The handler raises at once, but
    Python drops an exception raised inside some callbacks (an at-fork handler
    that a subprocess start runs, a __del__): the run would go on and exit 0.
    Called where a tool finishes, so such a signal still stops the run there.
    Only in the main thread, where the handler runs: worker threads see their
    tools killed and unwind on their own."""
    if _STOPPING.is_set() and threading.current_thread() is threading.main_thread():
        raise Interrupted(_SIGNUM[0])


def stopping() -> bool:
    """True once a signal arrived: start nothing new."""
    return _STOPPING.is_set()


def track(pgid: int) -> None:
    """Kill process group `pgid` (with SIGKILL) if a signal arrives before
    `untrack`; killed at once when one already has."""
    with _LOCK:
        _GROUPS.add(pgid)
    if _STOPPING.is_set():
        _kill_all()


def untrack(pgid: int) -> None:
    with _LOCK:
        _GROUPS.discard(pgid)


def end(proc) -> None:
    """End a process started with `start_new_session` and `track`ed: kill its
    whole group if it still runs, reap it, then stop tracking it (a signal
    arriving meanwhile still reaches the group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    untrack(proc.pid)


def _kill_all() -> None:
    with _LOCK:
        groups = list(_GROUPS)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _raise(signum: int, _frame) -> None:
    # Once unwinding has begun, further signals wait: a second Ctrl-C must
    # not cut short the cleanup that kills the children and removes temps.
    for other in HANDLED:
        signal.signal(other, signal.SIG_IGN)
    _SIGNUM[0] = signum
    _STOPPING.set()
    _kill_all()
    raise Interrupted(signum)


def install() -> None:
    """From the main thread, before any work starts."""
    for signum in HANDLED:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup'd stays nohup'd
            signal.signal(signum, _raise)

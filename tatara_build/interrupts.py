"""SIGINT, SIGTERM and SIGHUP unwind the Python stack like an error: every
`finally` runs, so QEMU's and the compilers' process groups are killed
(vm/qemu.py, build/run.py), temp dirs are removed and OUT stays as it was
(outdir.py). The CLI turns the exception into exit 128 + the signal number."""

from __future__ import annotations

import signal

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """Not an Exception: no `except Exception` on the way may swallow it."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum: int, _frame) -> None:
    # Once unwinding has begun, further signals wait: a second Ctrl-C must
    # not cut short the cleanup that kills the children and removes temps.
    for other in HANDLED:
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


def install() -> None:
    """From the main thread, before any work starts."""
    for signum in HANDLED:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup'd stays nohup'd
            signal.signal(signum, _raise)

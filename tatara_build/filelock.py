"""One way to serialise work on a shared cache directory across processes
(parallel builds, VMs and test workers): an exclusive fcntl lock, which the
kernel drops when its holder dies, so a crash never leaves it stuck."""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def held(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (created, with its directory)
    until the block ends; another holder waits."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

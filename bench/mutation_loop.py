"""pytest plugin for bench/mutation.py --direct: every sampled mutant in ONE pytest process.

mutmut's trampolines read the active mutant (MUTANT_UNDER_TEST) on every call, so one
process can collect the tests once and run them again per mutant. On two shared cores the
start of a pytest process (imports, collection) costs more than the tests that kill most
mutants; a run per mutant took a minute each, a loop takes seconds.

Each pass (the unmutated code first, then each mutant) runs the collected tests in order,
stops at the first failure, tears every fixture down and clears functools caches (a result
remembered under one mutant must not answer for the next). A pass longer than the timeout
fails (a hang is noticed). The unmutated pass runs again at the end: a failure there means
some mutant left state behind, so the verdicts are reported as unreliable. A mutant missing
from the imported module is reported as such (34), and if any module file under mutants/
changes during the run (another run made mutants/ afresh) the run stops (-1): a verdict on
code other than what was imported would be a guess.

Verdicts go to --mutants-out, one JSON line per mutant: {"name", "exit", "seconds"}.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from _pytest.runner import runtestprotocol


STALE = -1  # mutants/ changed during the run: no verdict from here on holds
MISSING = 34  # no such mutant in the imported module (mutmut's "skipped")


class PassTimeout(Exception):
    pass


def pytest_configure(config):
    # mutmut's trampoline doubles the frames of every mutated call: the checker's walk, which
    # stays within Python's default limit by its own depth guard, would hit it at half depth
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4000))


def pytest_addoption(parser):
    parser.addoption("--mutants-file", help="JSON list of mutant names to run")
    parser.addoption("--mutants-out", help="where each verdict goes (JSON lines)")
    parser.addoption("--mutant-timeout", type=float, default=300.0)


def _clear_caches() -> None:
    for obj in gc.get_objects():
        if isinstance(obj, functools._lru_cache_wrapper):
            obj.cache_clear()


def _one_pass(session, name: str, timeout: float) -> tuple[int, str]:
    """(0 passed | 1 a test failed | 36 timeout, the failing test's id)."""
    os.environ["MUTANT_UNDER_TEST"] = name
    _clear_caches()

    def expire(*_):
        raise PassTimeout(f"pass over {timeout:.0f} s")

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    items = session.items
    try:
        for i, item in enumerate(items):
            following = items[i + 1] if i + 1 < len(items) else None
            reports = runtestprotocol(item, log=False, nextitem=following)
            if any(r.failed for r in reports):
                return 1, item.nodeid
        return 0, ""
    except PassTimeout:
        return 36, ""
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        session._setupstate.teardown_exact(None)
        os.environ["MUTANT_UNDER_TEST"] = ""


def _mutated_files() -> dict[str, str]:
    # contents, not mtimes: mutmut's generation step copies every unmutated module again
    return {str(p): hashlib.sha1(p.read_bytes()).hexdigest() for p in Path("tatara_build").rglob("*.py")}


def _defined(name: str) -> bool:
    """Is the mutant in the module file as imported? (mutants/ made for other sources
    would name mutants that do not exist, and each would "survive" as the original.)"""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        for path in (Path(*parts[:i]).with_suffix(".py"), Path(*parts[:i], "__init__.py")):
            if path.is_file():
                return f"def {parts[-1]}(" in path.read_text(encoding="utf-8")
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    config = session.config
    names_file = config.getoption("mutants_file")
    if not names_file:
        return None
    with open(names_file) as f:
        names = json.load(f)
    timeout = config.getoption("mutant_timeout")
    out = open(config.getoption("mutants_out"), "a", buffering=1)

    def record(name: str, code: int, seconds: float, test: str) -> None:
        out.write(json.dumps({"name": name, "exit": code, "seconds": round(seconds, 2), "test": test}) + "\n")

    files = _mutated_files()
    if session.testsfailed or not session.items:  # a collection error: every mutant would "survive"
        record("", 2, 0.0, "collection failed or collected nothing")
        out.close()
        return True
    for name in ["", *names, ""]:
        if _mutated_files() != files:  # another run's generation step rewrote modules under this one
            record(name, STALE, 0.0, "")
            break
        if name and not _defined(name):
            record(name, MISSING, 0.0, "")
            continue
        started = time.monotonic()
        code, test = _one_pass(session, name, timeout)
        record(name, code, time.monotonic() - started, test)
        if name == "" and code != 0:
            break  # the unmutated code fails: no verdict means anything
    out.close()
    return True

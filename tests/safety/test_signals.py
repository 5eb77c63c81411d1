"""SIGTERM in the middle of a Rust build (cargo -> rustc -> our link
driver): exit 143, nothing of the tool tree survives, no temp dir is left
and OUT is as it was. (Signals during clang, `test` and `verify` are cases
of bench/hostile.py, run by test_hostile.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tatara_build.compile.toolchain import find_rust
from tatara_build.errors import ToolchainError

from .test_hostile import hostile

REPO = Path(__file__).resolve().parents[2]
NOSTD = REPO / "tests" / "fixtures" / "nostd-xdp"

SCRIPT = """
import sys
from pathlib import Path
from tatara_build import interrupts
from tatara_build.compile import BuildOptions, compile_generated
interrupts.install()
try:
    compile_generated(Path(sys.argv[1]), "nostd-xdp", Path(sys.argv[2]), BuildOptions(linker="llvm", use_cache=False))
except interrupts.Interrupted as stop:
    sys.exit(stop.exit_code)
"""


def _rust_or_skip() -> None:
    try:
        find_rust()
    except ToolchainError as err:
        pytest.skip(f"no BPF-capable Rust toolchain: {err.diagnostics[0].message}")


def test_sigterm_during_cargo_leaves_nothing(tmp_path):
    _rust_or_skip()
    temp = tmp_path / "tmp"
    temp.mkdir()
    out = tmp_path / "out"
    env = dict(os.environ, TMPDIR=str(temp), XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(NOSTD), str(out)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    below: dict[int, str] = {}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        below |= hostile._descendants(proc.pid)
        if any("rustc" in args for args in below.values()):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        proc.communicate()
        pytest.fail(f"rustc never ran below the build (exit {proc.returncode})")
    below |= hostile._descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    time.sleep(1.0)
    survivors = hostile._alive(below)
    for line in survivors:  # never leave them to the machine
        os.kill(int(line.split()[0]), signal.SIGKILL)
    assert proc.returncode == 143, stderr
    assert not survivors, survivors
    assert list(temp.iterdir()) == [], "temp dirs left behind"
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []

"""The CLI's hot paths load only what they use (issue 18): `check` needs
the frontend and the checker, `--help` only typer. Asserted on what
`python -X importtime` reports, so a module-level import added anywhere on
these paths fails here rather than as a slower CLI nobody measures."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "drop-syn.tlisp"

# what no hot path may load: the VM stage, the code generators, rich
NEVER_ON_A_HOT_PATH = ("tatara_build.vm", "tatara_build.backends", "tatara_build.compile",
                       "tatara_build.pipeline", "rich")


@pytest.fixture(scope="module", autouse=True)
def warm_memo(tmp_path_factory):
    """The hot paths read memos (tatara_build/memo.py) that the first run
    after a code change writes, importing the dialects once to do it: the
    tests measure the run after that, in a cache of their own (a fresh
    clone's first run is exactly that cold case)."""
    global ENV
    ENV = {**os.environ, "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))}
    cold = subprocess.run([sys.executable, "-m", "tatara_build", "--help"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=ENV)
    assert cold.returncode == 0 and cold.stdout.startswith("Usage: "), cold.stderr[-2000:]


ENV: dict[str, str] = {}


def imported(*args: str) -> tuple[set[str], subprocess.CompletedProcess]:
    ran = subprocess.run([sys.executable, "-X", "importtime", "-m", "tatara_build", *args],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, env=ENV)
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", ran.stderr, re.M))
    assert modules, ran.stderr  # the format is still what this test parses
    return modules, ran


def loaded(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


@pytest.mark.parametrize("files", [[EXAMPLE], [EXAMPLE, ROOT / "examples" / "port-counter.tlisp"]])
def test_check_loads_neither_typer_nor_later_stages(files):
    modules, ran = imported("check", *map(str, files))
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.count("OK ") == len(files)
    assert "tatara_build.check" in modules and "tatara_build.frontend" in modules
    # the IR is plain records (tatara_build/model.py): pydantic only validates JSON from outside
    for package in NEVER_ON_A_HOT_PATH + ("typer", "pydantic", "tatara_build.model_mirror"):
        assert not loaded(modules, package), f"`check` imported {loaded(modules, package)}"


def test_check_of_a_bad_file_takes_the_same_fast_path(tmp_path):
    bad = tmp_path / "bad.tlisp"
    bad.write_text("(defbpf-mapp m)\n")
    modules, ran = imported("check", str(bad))
    assert ran.returncode == 1
    assert f"{bad}:1:2: error: unknown top-level form `defbpf-mapp`" in ran.stderr
    assert f"FAILED {bad}: 1 error" in ran.stderr
    for package in ("typer", "rich", "pydantic"):
        assert not loaded(modules, package), f"`check` of a bad file imported {loaded(modules, package)}"


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["check", "--help"], ["build", "--help"],
                                  ["test", "--help"], ["verify", "--help"]])
def test_help_loads_no_stage_and_no_rich(args):
    modules, ran = imported(*args)
    assert ran.returncode == 0 and ran.stdout.startswith("Usage: "), ran.stderr[-2000:]
    # a command's own help builds its parameters, and typer >= 0.2x coerces
    # parameters through pydantic: only the top-level help can avoid it
    never = NEVER_ON_A_HOT_PATH + (("pydantic",) if len(args) == 1 else ())
    for package in never:
        assert not loaded(modules, package), f"{' '.join(args)} imported {loaded(modules, package)}"


def test_usage_errors_still_come_from_typer(tmp_path):
    # anything the fast path does not take unchanged goes to typer: same message, exit 2
    modules, ran = imported("check", str(tmp_path / "absent.tlisp"))
    assert ran.returncode == 2 and "does not exist" in ran.stderr
    assert "typer" in modules and not loaded(modules, "rich")
    _, ran = imported("check", str(tmp_path))
    assert ran.returncode == 2 and "is a directory" in ran.stderr
    _, ran = imported("check")
    assert ran.returncode == 2 and "Missing argument" in ran.stderr

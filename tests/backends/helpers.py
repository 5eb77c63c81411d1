"""Shared helpers for the backend tests: the sources under test and tools."""

from __future__ import annotations

import shutil
from pathlib import Path

from tatara_build import check, frontend, ir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.tlisp"))
FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.tlisp"))
SOURCES = EXAMPLES + FIXTURES
GOLDEN = ROOT / "tests" / "golden"
CLANG_FLAGS = ["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-I/usr/include/x86_64-linux-gnu", "-c"]


def load(path: Path) -> ir.Module:
    return check.check(frontend.load(path))


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def rustfmt() -> str | None:
    """A rustfmt that runs (rustup's proxy needs an installed toolchain)."""
    import subprocess

    exe = shutil.which("rustfmt")
    if exe is None:
        return None
    try:
        ok = subprocess.run([exe, "--version"], capture_output=True, cwd="/", timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if ok else None

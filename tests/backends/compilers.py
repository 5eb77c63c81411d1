"""The compiler matrix the C backend's output must pass: Debian's clang 14
(the oldest clang we support) and clang 22 (the LLVM major of the pinned
toolchain, tatara_build.compilers), at every BPF ISA version each supports."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .helpers import CLANG_FLAGS

MATRIX_CLANGS = ("clang-14", "clang-22")
CPUS = ("v2", "v3", "v4")
V4_SINCE = 18  # -mcpu=v4 (sign-extending loads, sdiv, bswap...) arrived in clang 18


@dataclass(frozen=True)
class Cell:
    clang: str
    cpu: str

    @property
    def id(self) -> str:
        return f"{self.clang}-{self.cpu}"

    def compile(self, source: Path, obj: Path) -> Path:
        done = subprocess.run([self.clang, *CLANG_FLAGS, f"-mcpu={self.cpu}", str(source), "-o", str(obj)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{self.id} could not compile {source.name}:\n{done.stderr[-3000:]}"
        return obj


@cache
def clang_major(name: str) -> int | None:
    if shutil.which(name) is None:
        return None
    out = subprocess.run([name, "--version"], capture_output=True, text=True, timeout=60).stdout
    match = re.search(r"clang version (\d+)", out)
    return int(match.group(1)) if match else None


def cells() -> list[Cell]:
    """Every (clang, cpu) of the matrix, installed or not: a missing compiler
    is a failing cell (scripts/setup.sh installs both), never a silent skip."""
    return [Cell(clang, cpu) for clang in MATRIX_CLANGS for cpu in CPUS
            if cpu != "v4" or int(clang.rsplit("-", 1)[1]) >= V4_SINCE]


def require(cell: Cell) -> None:
    major = clang_major(cell.clang)
    assert major is not None, f"{cell.clang} is not installed (scripts/setup.sh installs it)"
    assert cell.clang.endswith(f"-{major}"), f"{cell.clang} reports clang {major}"


# Atomics that return the old value (BPF_FETCH: fetch-add/or/and/xor, xchg,
# cmpxchg) arrived in kernel 5.12; the oldest pinned kernel (5.10) rejects
# them ("BPF_STX uses reserved fields"). The backends only need plain adds.
FETCH_ATOMIC = re.compile(r"atomic_fetch_|atomic_xchg|cmpxchg")


def fetch_atomics(obj: Path) -> list[str]:
    """Disassembled instructions of obj that need a 5.12+ kernel."""
    objdump = next((t for t in ("llvm-objdump-22", "llvm-objdump") if shutil.which(t)), None)
    assert objdump, "llvm-objdump is needed (llvm / llvm-22)"
    text = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(obj)], capture_output=True, text=True,
                          check=True, timeout=120).stdout
    return [line.strip() for line in text.splitlines() if FETCH_ATOMIC.search(line)]

"""The C backend's compile: one `clang -target bpf` call per source file.

Reproducible by construction: the compile runs in the source's directory on
a relative path, `-fdebug-prefix-map` maps that directory to `.` in DWARF
and BTF, `-fno-ident` drops the compiler's version string, and
SOURCE_DATE_EPOCH is fixed."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from .run import failure, run
from .toolchain import Clang

WARNINGS = ("-Wall", "-Werror")


def multiarch_include() -> list[str]:
    """Debian keeps `asm/types.h` under /usr/include/<triplet>."""
    triplet = Path(f"/usr/include/{platform.machine()}-linux-gnu")
    return [f"-I{triplet}"] if triplet.is_dir() else []


def flags(cpu: str, source_dir: Path) -> list[str]:
    return ["-O2", "-g", "-target", "bpf", f"-mcpu={cpu}", *WARNINGS, *multiarch_include(),
            f"-fdebug-prefix-map={source_dir}=.", "-fno-ident"]


def compile_c(clang: Clang, source: Path, output: Path, *, cpu: str, source_date_epoch: str) -> Path:
    source_dir = source.parent.resolve()
    env = dict(os.environ, SOURCE_DATE_EPOCH=source_date_epoch)
    # `./-x.bpf.c`, not `-x.bpf.c`: a file name is never read as an option
    # (clang has no `--`); other names stay bare, so DWARF keeps them as is.
    name = f"./{source.name}" if source.name.startswith("-") else source.name
    ran = run("compile", [clang.path, *flags(cpu, source_dir), "-c", name, "-o", output.resolve()],
              cwd=source_dir, env=env, check=False)
    if ran.exit_code != 0:
        raise failure(ran, f"clang could not compile the generated {source.name}")
    return output

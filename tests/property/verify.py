"""Generated programs through the pipeline: checker, C backend, clang, and
the verifier (host kernel in a private bpffs, or a VM boot with many
objects). Shared by the property tests and bench/bench_checker_verifier.py."""

from __future__ import annotations

import random
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tatara_build import check, frontend
from tatara_build.compile import BuildOptions
from tatara_build.compile.progress import Quiet
from tatara_build.errors import SourceError, TataraError
from tatara_build.pipeline import build

from . import programs

# Kinds bpftool can load on the host without an attach point resolved
# against the host's BTF (lsm is verified in the VM only).
HOST_KINDS = ["xdp", "tc", "socket-filter", "kprobe", "tracepoint", "cgroup-skb", "perf-event"]


@dataclass
class Generated:
    seed: int
    name: str
    text: str
    obj: Path | None = None  # None: the checker refused it (a finding too)
    checker_error: str | None = None


def generate(seed: int, out: Path, kinds: list[str] | None = None) -> Generated:
    """Program number `seed`, checked and compiled into out/<name>.o."""
    rng = random.Random(seed)
    name = f"g{seed}"
    kind = rng.choice(kinds) if kinds else None
    text = programs.program(rng, name, kind)
    return compile_text(seed, name, text, out)


def compile_text(seed: int, name: str, text: str, out: Path) -> Generated:
    g = Generated(seed, name, text)
    src = out / f"{name}.tlisp"
    src.write_text(text)
    try:
        module = check.check(frontend.load(src))
    except SourceError as err:
        g.checker_error = str(err)
        return g
    # The real build (its clang, flags and -Werror): what a user's `build` does.
    try:
        build(src, out / name, BuildOptions(backend="c", use_cache=False), Quiet(), module=module)
    except TataraError as err:
        raise AssertionError(f"the build refused generated program {seed}:\n{err}\n{text}") from None
    g.obj = out / name / f"{name}.o"
    return g


def host_verify(obj: Path) -> tuple[bool, str]:
    """Load every program of obj on this machine's kernel (private bpffs at a
    dot-free path, nothing attached); (accepted, loader output tail)."""
    root = Path(tempfile.mkdtemp(prefix="tatara_prop_"))
    subprocess.run(["mount", "-t", "bpf", "bpf", str(root)], check=True)
    try:
        done = subprocess.run(["bpftool", "prog", "loadall", str(obj), f"{root}/p"], capture_output=True, text=True,
                              timeout=300)
        return done.returncode == 0, "\n".join(done.stderr.splitlines()[-25:])
    finally:
        subprocess.run(["umount", str(root)], check=False)
        root.rmdir()


@dataclass
class Report:
    kernel: str
    generated: int = 0
    verified: int = 0
    checker_refused: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # source + verifier log, per rejected program
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"kernel {self.kernel}: generated {self.generated}, checker-refused {len(self.checker_refused)}, "
                f"verified {self.verified}, rejected {len(self.rejected)} ({self.seconds:.1f} s VM boot, loads included)")


def vm_verify(seeds, out: Path, kernel, kinds: list[str] | None = None) -> Report:
    """Every seed's program built, then all loaded in one boot of `kernel`."""
    from tatara_build.vm import runner

    report = Report(kernel.name)
    built = []
    for seed in seeds:
        g = generate(seed, out, kinds)
        report.generated += 1
        if g.obj is None:
            report.checker_refused.append(f"seed {seed}: {g.checker_error}\n{g.text}")
        else:
            built.append(g)
    v = runner.run([runner.ObjectJob(g.obj) for g in built], kernel, timeout=1800)
    report.seconds = v.boot_seconds
    for g, obj in zip(built, v.objects):
        if obj.loaded and obj.programs and all(p.verdict == "accepted" for p in obj.programs):
            report.verified += 1
        else:
            logs = "\n".join((p.verifier_log or "")[-1500:] for p in obj.programs) or (obj.loader_output or "")
            report.rejected.append(f"seed {g.seed}:\n{g.text}\n{logs}")
    return report

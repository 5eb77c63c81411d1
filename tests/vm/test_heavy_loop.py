"""Loops near and over the verifier's complexity limit, in one 6.1 boot
under the default guest RAM and timeout. bpftool -d asked for the full
verifier log of every program, so the checker-accepted ~590,000-instruction
loop was OOM-killed in the 256 MB guest (or, given 1 GB, ran past the
timeout); tatara-guest asks for statistics only and verifies it in seconds.
Over the limit, the verdict is the verifier's own "too large" rejection."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tatara_build.vm import cases, kernels, qemu, runner

pytestmark = pytest.mark.vm

REPO = Path(__file__).resolve().parents[2]
HEAVY = REPO / "tests" / "vm" / "fixtures" / "heavy-loop.tlisp"
TOO_COMPLEX = REPO / "tests" / "vm" / "fixtures" / "too-complex.bpf.c"

if not shutil.which("qemu-system-x86_64") or not shutil.which("clang"):
    pytest.skip("qemu-system-x86 and clang are needed for VM tests", allow_module_level=True)


def test_a_loop_near_the_limit_loads_and_one_over_it_is_the_verifiers_too_large(tmp_path):
    from tatara_build.check import check
    from tatara_build.compile import BuildOptions
    from tatara_build.frontend import load
    from tatara_build.pipeline import build

    out = tmp_path / "heavy"
    manifest = build(HEAVY, out, BuildOptions(backend="c", use_cache=False))
    objects, case_jobs, map_jobs = cases.jobs(check(load(HEAVY)), out, manifest)
    too_large = tmp_path / "too-large.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-fno-ident", "-c",
                    str(TOO_COMPLEX), "-o", str(too_large)], check=True, capture_output=True)
    objects.append(runner.ObjectJob(too_large, generated=[TOO_COMPLEX]))
    assert qemu.MEMORY_MB == 256
    v = runner.run(objects, kernels.resolve("6.1"), case_jobs, map_jobs)  # the default timeout: 180 s
    heavy, big = v.objects
    (program,) = heavy.programs
    assert heavy.loaded and program.verdict == "accepted", heavy.loader_output
    assert 500_000 < program.verified_insns < 1_000_000 and program.verification_time_us
    assert [c.passed for c in v.cases] == [True]
    (rejected,) = big.programs
    assert not big.loaded and rejected.verdict == "rejected"
    assert "BPF program is too large. Processed 1000001 insn" in rejected.verifier_log
    assert rejected.verified_insns == 1_000_001

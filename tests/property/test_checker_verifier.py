"""Checker-accepted means verifier-accepted: well-typed programs generated
from the checker's own tables (tests/property/programs.py: packet access,
every map kind's operations, lets, loops, casts, helpers, context fields)
must pass the checker, the real C build (-Wall -Werror), and the verifier.

CI-sized and seeded: hypothesis draws the seeds (derandomized, so every run
sees the same programs) for the host kernel; the VM test verifies 100
programs of every kind in one boot of the pinned 6.1 kernel. The bench
bench/bench_checker_verifier.py runs hundreds per boot on 6.1 and 6.12.
Counterexamples found so far became a checker rule (kinds with a return
range: cgroup-skb, lsm) and backend fixes ((set! x x), variables only
assigned, (= x x) under -Werror)."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.backends import hostbpf

from . import verify

HOST = hostbpf.available()
VM_SEEDS = range(1000, 1100)


@pytest.mark.skipif(HOST is not None, reason=str(HOST))
@settings(max_examples=100, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**31))
def test_generated_programs_pass_checker_build_and_host_verifier(tmp_path_factory, seed):
    out = tmp_path_factory.mktemp("gen")
    g = verify.generate(seed, out, verify.HOST_KINDS)
    assert g.obj is not None, f"the checker refused a generated program (generator or checker bug):\n{g.checker_error}\n{g.text}"
    ok, log = verify.host_verify(g.obj)
    assert ok, f"checker accepted, verifier rejected (seed {seed}):\n{g.text}\n{log}"


@pytest.mark.vm
@pytest.mark.skipif(not shutil.which("qemu-system-x86_64"), reason="qemu-system-x86 is needed for VM tests")
def test_generated_programs_of_every_kind_verify_in_one_boot(tmp_path):
    from tatara_build.vm import kernels

    report = verify.vm_verify(VM_SEEDS, tmp_path, kernels.resolve("6.1"))
    print(report.summary())
    assert report.checker_refused == [], report.checker_refused[:3]
    assert report.rejected == [], "\n\n".join(report.rejected[:3])
    assert report.verified == len(VM_SEEDS)

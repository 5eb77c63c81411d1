"""Redirects and tail calls on every pinned kernel (tests/vm/fixtures/
redirects.tlisp, C backend): what BPF_PROG_TEST_RUN returns for
redirect-map over a cpumap (XDP_REDIRECT for a filled CPU, else the
fallback the flags give, XDP_ABORTED by default) and an xskmap (always the
fallback: a test cannot hold an AF_XDP socket), for (redirect IFINDEX) on
xdp and tc, and which program a tc tail-call ran (the action and the
counter of the program in the slot; a dispatcher that parses again after a
tail-call that fell through, which 6.12's verifier requires)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tatara_build.vm import kernels, runner

pytestmark = pytest.mark.vm

FIXTURE = Path(__file__).parent / "fixtures" / "redirects.tlisp"

if not shutil.which("qemu-system-x86_64") or not shutil.which("clang"):
    pytest.skip("qemu-system-x86 and clang are needed for VM tests", allow_module_level=True)

EXPECTED = {  # (test, case) -> the action value test-run returns
    ("cpumap-redirect", "filled"): 4, ("cpumap-redirect", "empty"): 1, ("cpumap-redirect", "default-fallback"): 0,
    ("xskmap-fallback", "v4"): 2, ("xskmap-fallback", "v6"): 3,
    ("xdp-redirect-ifindex", "any"): 4,
    ("tc-redirect-ifindex", "ingress"): 7, ("tc-redirect-ifindex", "egress"): 7,
    ("tc-tail-calls", "tcp"): 3, ("tc-tail-calls", "udp"): 2, ("tc-tail-calls", "icmp"): 0,
    ("tc-tail-calls", "icmp-expiring"): 2,
}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    from tatara_build import pipeline
    from tatara_build.compile import BuildOptions
    from tatara_build.vm import cases

    out = tmp_path_factory.mktemp("redirects")
    module = pipeline.load_checked(FIXTURE)
    manifest = pipeline.build(FIXTURE, out, BuildOptions(backend="c"), module=module)
    return cases.jobs(module, out, manifest, object_index=0)


@pytest.mark.parametrize("line", list(kernels.KERNELS))
def test_redirect_actions_and_tail_calls(jobs, line):
    try:
        kernel = kernels.resolve(line)
    except kernels.PinDropped as err:
        pytest.skip(str(err))
    objects, case_jobs, map_jobs = jobs
    v = runner.run(objects, kernel, case_jobs, map_jobs, timeout=600)
    [obj] = v.objects
    assert obj.loaded, obj.loader_output
    assert all(p.verdict == "accepted" for p in obj.programs), [(p.program, p.verifier_log) for p in obj.programs]
    assert {(c.test, c.case): c.got for c in v.cases} == EXPECTED, v.cases
    assert sorted((m.key, m.got) for m in v.maps) == [(0, 1), (1, 1), (2, 2)], v.maps
    assert v.passed

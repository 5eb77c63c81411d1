"""The kernel matrix for real: every example on every pinned kernel (one
boot per kernel, C backend), a pin Debian has dropped skips with its reason;
the CLI runs two kernels in parallel and shows the program x kernel matrix;
a helper 5.10 lacks is refused by 5.10's own verifier when the program does
not promise 5.10 (and by `check` when it does: tests/frontend)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tatara_build.vm import kernels, runner

pytestmark = pytest.mark.vm

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.tlisp"))
CLI = REPO / ".venv" / "bin" / "tatara-build"

if not shutil.which("qemu-system-x86_64") or not shutil.which("clang"):
    pytest.skip("qemu-system-x86 and clang are needed for VM tests", allow_module_level=True)


def pinned(line: str) -> kernels.Kernel:
    """The line's kernel, or a skip naming the dropped pin."""
    try:
        return kernels.resolve(line)
    except kernels.PinDropped as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    from tatara_build import pipeline
    from tatara_build.compile import BuildOptions
    from tatara_build.vm import cases

    tmp = tmp_path_factory.mktemp("matrix")
    objects, case_jobs, map_jobs = [], [], []
    for example in EXAMPLES:
        module = pipeline.load_checked(example)
        out = tmp / example.stem
        manifest = pipeline.build(example, out, BuildOptions(backend="c"), module=module)
        o, c, m = cases.jobs(module, out, manifest, object_index=len(objects))
        objects, case_jobs, map_jobs = objects + o, case_jobs + c, map_jobs + m
    return objects, case_jobs, map_jobs


@pytest.mark.parametrize("line", list(kernels.KERNELS))
def test_every_example_verifies_and_passes_its_packet_tests(examples, line):
    kernel = pinned(line)
    objects, case_jobs, map_jobs = examples
    v = runner.run(objects, kernel, case_jobs, map_jobs, timeout=600)
    assert v.kernel.version == kernels.KERNELS[line].version
    for obj in v.objects:
        assert obj.loaded, f"{obj.path} on {line}: {obj.loader_output}"
        for p in obj.programs:
            assert p.verdict == "accepted" and p.verified_insns, (line, p.program, p.verifier_log)
    assert {Path(o.path).stem for o in v.objects} == {e.stem for e in EXAMPLES}
    for case, job in zip(v.cases, case_jobs):
        if case.skipped:  # only where the pin records that test-run cannot show the kind's packets
            assert job.kind in kernels.KERNELS[line].no_packet_test_run and job.reads_packet, case
        else:
            assert case.passed, (line, case)
    assert all(m.passed or m.skipped for m in v.maps), v.maps
    assert v.passed


def test_cli_runs_kernels_in_parallel_and_shows_the_matrix(tmp_path):
    for line in ("5.10", "7.2"):
        pinned(line)
    out, junit = tmp_path / "out", tmp_path / "junit.xml"
    run = subprocess.run([str(CLI), "test", str(REPO / "examples" / "drop-syn.tlisp"), "--backend", "c", "-o", str(out),
                          "--kernel", "7.2,5.10.1", "-j", "2", "--junit", str(junit)],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    assert "kernel matrix" in run.stderr and "insns spread" in run.stderr
    row = next(line for line in run.stderr.splitlines() if "drop-syn.o:drop_syn" in line)
    assert row.count("accepted") == 2
    assert len(re.findall(r"\b(\d+)/\1\b", row.split("accepted", 1)[1])) >= 2  # every case passed, on both
    stored = json.loads((out / "manifest.json").read_text())["verification"]
    assert list(stored) == ["7.2", "5.10"] and all(v["passed"] for v in stored.values())
    assert junit.read_text().count("<testsuite ") == 2


def test_a_helper_newer_than_the_kernel_is_the_verifiers_rejection_there(tmp_path):
    """Without a :kernels promise `check` lets it through; 5.10's verifier
    refuses bpf_ktime_get_coarse_ns (5.11) and 6.1's accepts it."""
    pinned("5.10")
    source = tmp_path / "coarse.tlisp"
    source.write_text("""\
(defbpf-map stamps :kind :array :key u32 :value u64 :max-entries 1)
(defbpf-program coarse :kind :xdp :attach (:target "eth0") :uses-maps (stamps))
(bpf-fn coarse (ctx)
  (map-set stamps 0 (call ktime-coarse-ns))
  (return :xdp-pass))
""")
    run = subprocess.run([str(CLI), "test", str(source), "--backend", "c", "-o", str(tmp_path / "out"),
                          "--kernel", "5.10,6.1"], capture_output=True, text=True, timeout=900)
    assert run.returncode == 4, run.stderr
    assert "kernel 5.10: coarse: rejected" in run.stderr and "kernel 6.1" not in run.stderr.split("verification failed")[1]
    promised = source.read_text().replace(':uses-maps (stamps))', ':uses-maps (stamps) :kernels ("5.10"))')
    source.write_text(promised)
    checked = subprocess.run([str(CLI), "check", str(source)], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 1 and "kernel 5.10 (promised by program `coarse`) lacks helper `ktime-coarse-ns`" in checked.stderr

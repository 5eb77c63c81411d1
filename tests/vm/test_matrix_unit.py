"""The matrix without booting: kernels run in parallel up to -j, results
keyed by kernel in the order asked, a failing kernel named; the table of
program x kernel with the insns spread; the manifest keyed by kernel; the
verdict never passes a failed kernel."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from tatara_build import report
from tatara_build.errors import RejectedError, VmError
from tatara_build.vm import kernels, matrix, runner
from tatara_build.vm.results import CaseResult, KernelInfo, ObjectResult, ProgramResult, Verification


def _v(name: str, insns: int, loaded: bool = True, verdict: str = "accepted", case_ok: bool = True) -> Verification:
    program = ProgramResult(program="drop_syn", verdict=verdict, verified_insns=insns, total_states=22, max_insns=500)
    case = CaseResult(test="t", case="syn", program="drop_syn", expect="xdp-drop", expect_value=1,
                      got=1 if case_ok else 2, passed=case_ok)
    ok = loaded and verdict == "accepted"
    return Verification(kernel=KernelInfo(name=name, package=f"linux-image-{name}", version=f"{name}.9-1", sha256="0" * 64),
                        accel="tcg", boot_seconds=2.0,
                        objects=[ObjectResult(path="/out/drop-syn.o", sha256="ab" * 32, loaded=loaded, programs=[program])],
                        cases=[case], verified=ok, passed=ok and case_ok)


def test_kernels_run_in_parallel_up_to_jobs_and_come_back_in_order(monkeypatch):
    running, peak, lock = [0], [0], threading.Lock()

    def fake_run(objects, kernel, cases, maps, *, timeout, accel):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return _v(kernel.name, 100)

    monkeypatch.setattr(runner, "run", fake_run)
    resolve = lambda spec: kernels.Kernel(kernels.pin_for(spec).release, Path("/k"), "0" * 64)  # noqa: E731
    out = matrix.run([], ["7.2", "5.10", "6.12.5", "6.12", "6.1"], jobs=2, resolve=resolve)
    assert list(out) == ["7.2", "5.10", "6.12", "6.1"]  # 6.12.5 and 6.12 are one kernel
    assert peak[0] == 2
    assert matrix.default_jobs(4) >= 1 and matrix.default_jobs(1) == 1


def test_a_failing_kernel_is_named_and_the_others_still_finish(monkeypatch):
    finished = []

    def fake_run(objects, kernel, cases, maps, *, timeout, accel):
        if kernel.name == "5.10":
            raise VmError("VM timed out after 180 s (tcg)")
        time.sleep(0.1)
        finished.append(kernel.name)
        return _v(kernel.name, 1)

    monkeypatch.setattr(runner, "run", fake_run)
    resolve = lambda spec: kernels.Kernel(spec, Path("/k"), "0" * 64)  # noqa: E731
    with pytest.raises(VmError, match=r"^kernel 5.10: VM timed out"):
        matrix.run([], ["5.10", "6.1"], jobs=2, resolve=resolve)
    assert finished == ["6.1"]


def test_matrix_table_shows_each_kernel_and_the_insns_spread():
    out = Console(record=True, width=200)
    report.render_matrix({"5.10": _v("5.10", 232), "7.2": _v("7.2", 230, loaded=False)}, out)
    text = out.export_text()
    row = next(line for line in text.splitlines() if "drop-syn.o:drop_syn" in line)
    assert "accepted 232/22 1/1" in row and "load failed 230/22" in row and "230..232" in row
    assert "kernel 5.10 linux-image-5.10 5.10.9-1" in text


def test_verdict_names_the_kernel_and_never_passes_an_object_that_did_not_load():
    report.verdict_matrix({"6.1": _v("6.1", 5)})
    with pytest.raises(RejectedError) as err:
        report.verdict_matrix({"6.1": _v("6.1", 5), "5.10": _v("5.10", 5, loaded=False), "7.2": _v("7.2", 5, case_ok=False)})
    text = str(err.value)
    assert "kernel 5.10: drop-syn.o: did not load" in text and "kernel 7.2: t/syn: expected xdp-drop, got 2" in text
    assert "kernel 6.1" not in text


def test_manifest_verification_is_keyed_by_kernel_and_keeps_other_kernels_of_the_same_object(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"objects": [], "verification": None}))
    report.merge_into_manifest(manifest, {"5.10": _v("5.10", 1), "6.1": _v("6.1", 2)})
    report.merge_into_manifest(manifest, {"6.1": _v("6.1", 3)})
    stored = json.loads(manifest.read_text())["verification"]
    assert list(stored) == ["5.10", "6.1"] and stored["6.1"]["objects"][0]["programs"][0]["verified_insns"] == 3
    other = _v("7.2", 4)
    other.objects[0].sha256 = "cd" * 32  # a rebuilt object: results about the old bytes are dropped
    report.merge_into_manifest(manifest, {"7.2": other})
    assert list(json.loads(manifest.read_text())["verification"]) == ["7.2"]
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_the_headline_says_verification_failed_only_when_the_verifier_or_loading_did():
    with pytest.raises(RejectedError) as err:
        report.verdict_matrix({"6.1": _v("6.1", 5), "7.2": _v("7.2", 5, case_ok=False)})
    assert str(err.value).startswith("tests failed:\n  kernel 7.2: t/syn: expected xdp-drop, got 2")
    with pytest.raises(RejectedError) as err:
        report.verdict_matrix({"5.10": _v("5.10", 5, loaded=False), "7.2": _v("7.2", 5, case_ok=False)})
    assert str(err.value).startswith("verification failed:\n")

"""--junit: the VM results of several kernels as JUnit XML, validated
against the common JUnit shape CI systems read (fixtures/junit.xsd)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tatara_build import junit
from tatara_build.vm.results import CaseResult, KernelInfo, MapCheck, ObjectResult, ProgramResult, Verification

xmlschema = pytest.importorskip("xmlschema")
SCHEMA = Path(__file__).parent / "fixtures" / "junit.xsd"
LOG = "0: (b7) r0 = 0\n1: (95) exit\nR0 leaks addr as return value\nprocessed 2 insns"


def _verification(kernel: str, rejected: bool) -> Verification:
    program = ProgramResult(program="drop_syn", verdict="rejected" if rejected else "accepted", max_insns=500,
                            verified_insns=None if rejected else 230, total_states=22, peak_states=22,
                            verifier_log=LOG if rejected else None,
                            failing_span="drop-syn.tlisp:20:5" if rejected else None)
    other = ProgramResult(program="count\x01er", verdict="over-budget", max_insns=10, verified_insns=99)
    cases = [
        CaseResult(test="t", case="syn", program="drop_syn", expect="xdp-drop", expect_value=1,
                   got=None if rejected else 1, passed=not rejected, error="not run" if rejected else None),
        CaseResult(test="t", case="cg", program="drop_syn", expect="deny", expect_value=0, passed=False,
                   skipped="kernel cannot run it"),
    ]
    maps = [MapCheck(test="t", map="syn-drops", key=0, expected=4, got=3, passed=False)]
    return Verification(kernel=KernelInfo(name=kernel, package=f"linux-image-{kernel}", version=f"{kernel}.1-1",
                                          sha256="0" * 64),
                        accel="tcg", boot_seconds=3.5,
                        objects=[ObjectResult(path="/o/drop-syn.o", sha256="1" * 64, loaded=not rejected,
                                              programs=[program, other])],
                        cases=cases, maps=maps, verified=not rejected, passed=False)


def test_junit_file_has_the_common_shape_and_one_testcase_per_program_kernel_and_case(tmp_path):
    out = tmp_path / "reports" / "junit.xml"
    junit.write(out, {"5.10": _verification("5.10", rejected=True), "6.1": _verification("6.1", rejected=False)})
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(out))  # raises on any deviation
    root = ET.parse(out).getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["kernel 5.10", "kernel 6.1"]
    # per kernel: 2 programs + 2 packet cases + 1 map expectation
    assert [int(s.get("tests")) for s in suites] == [5, 5] and root.get("tests") == "10"
    old, new = suites
    verify = old.find("testcase[@classname='5.10.drop_syn'][@name='verify']")
    failure = verify.find("failure")
    assert failure.get("type") == "rejected" and "kernel 5.10" in failure.get("message")
    assert "drop-syn.tlisp:20:5" in failure.get("message") and "R0 leaks addr" in failure.text
    # a case of a rejected program fails with the rejection, not a bare "got None"
    syn = old.find("testcase[@name='t/syn']/failure")
    assert "rejected on kernel 5.10" in syn.get("message")
    assert old.find("testcase[@name='t/cg']/skipped").get("message") == "kernel cannot run it"
    assert new.find("testcase[@classname='6.1.drop_syn'][@name='verify']/failure") is None
    assert new.find("testcase[@name='t/syn']/failure") is None
    assert "over-budget" in new.find("testcase[@name='verify'][@classname='6.1.count\ufffder']/failure").get("type")
    assert new.find("testcase[@name='t/syn-drops[0]']/failure").get("message") == "map syn-drops[0] = 3, expected 4"
    counts = {k: int(root.get(k)) for k in ("failures", "skipped")}
    assert counts == {"failures": 4 + 2, "skipped": 2}  # 5.10: both programs, syn, map; 6.1: over budget, map
    assert {p.get("name"): p.get("value") for p in old.find("properties")}["version"] == "5.10.1-1"


def test_junit_write_is_atomic_and_keeps_only_a_long_logs_tail(tmp_path):
    v = _verification("5.10", rejected=True)
    v.objects[0].programs[0].verifier_log = "\n".join(f"{i}: insn" for i in range(100_000))
    out = tmp_path / "j.xml"
    junit.write(out, {"5.10": v})
    text = ET.parse(out).getroot().find(".//testcase[@name='verify']/failure").text
    assert text.splitlines()[-1] == "99999: insn" and len(text.splitlines()) == junit.LOG_TAIL_LINES
    assert [p.name for p in tmp_path.iterdir()] == ["j.xml"]


def test_a_kernel_whose_vm_failed_is_an_error_testcase_beside_the_finished_ones(tmp_path):
    from tatara_build.errors import VmError

    out = tmp_path / "j.xml"
    junit.write(out, {"6.1": _verification("6.1", rejected=False)}, failed={"7.2": VmError("kernel 7.2: VM timed out")})
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(out))
    root = ET.parse(out).getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == ["kernel 6.1", "kernel 7.2"]
    error = root.find("testsuite[@name='kernel 7.2']/testcase/error")
    assert error.get("type") == "exit-5" and "VM timed out" in error.get("message")
    assert root.get("errors") == "1" and root.get("tests") == "6"


def test_cli_writes_junit_even_when_the_source_does_not_check(tmp_path):
    import subprocess

    bad = tmp_path / "bad.tlisp"
    bad.write_text('(defbpf-program p :kind :xdp :attach (:target "eth0") :kernels ("5.10"))\n'
                   "(bpf-fn p (ctx) (let ((t (call ktime-tai-ns))) (return :xdp-pass)))\n")
    out = tmp_path / "junit.xml"
    cli = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tatara-build"
    run = subprocess.run([str(cli), "test", str(bad), "--backend", "c", "-o", str(tmp_path / "out"), "--junit", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(out))
    error = ET.parse(out).getroot().find("testsuite[@name='tatara-build']/testcase/error")
    assert error.get("type") == "exit-1" and "lacks helper `ktime-tai-ns`" in error.get("message")
    assert "bad.tlisp:2:" in error.get("message")

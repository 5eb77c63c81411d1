"""`:trigger` for real: in one boot, the guest attaches each test's tracing
program (a tracepoint, a kprobe), does the test's syscalls and detaches;
the values the programs read (a user-space file name cut to its field, the
task's comm, a port through CO-RE) reach the maps and ring buffer, and a
test expecting another name fails with the diff. A DEFINE_EVENT tracepoint
(sched_process_exit) reads its pid through its event class's layout, and
sched_process_exec's __data_loc file name is copied by its address."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tatara_build.vm import kernels, runner

pytestmark = pytest.mark.vm

FIXTURE = Path(__file__).parent / "fixtures" / "triggers.tlisp"

if not shutil.which("qemu-system-x86_64") or not shutil.which("clang"):
    pytest.skip("qemu-system-x86 and clang are needed for VM tests", allow_module_level=True)


@pytest.mark.parametrize("line", ["5.10", "7.2"])
def test_triggered_programs_read_what_the_guest_did(tmp_path, line):
    from tatara_build import pipeline
    from tatara_build.compile import BuildOptions
    from tatara_build.vm import cases

    try:
        kernel = kernels.resolve(line)
    except kernels.PinDropped as err:
        pytest.skip(str(err))
    module = pipeline.load_checked(FIXTURE)
    manifest = pipeline.build(FIXTURE, tmp_path / "out", BuildOptions(backend="c", use_cache=False), module=module)
    objects, case_jobs, map_jobs = cases.jobs(module, tmp_path / "out", manifest)
    v = runner.run(objects, kernel, case_jobs, map_jobs, timeout=600)
    assert v.verified, v.objects
    triggers = {t.test: t for t in v.triggers}
    assert all(t.passed for t in triggers.values()), triggers
    assert triggers["names-arrive"].actions == ["open /tmp/tatara-a 0 = -2",
                                                "open /a-name-longer-than-thirty-one-bytes 64 = 3"]
    assert triggers["ports-counted"].actions == ["connect 7 = -111", "connect 7 = -111", "connect 2049 = -111"]
    checks = {e.test: e for e in v.event_checks}
    assert checks["names-arrive"].passed, checks["names-arrive"]
    assert checks["exec-seen"].passed, checks["exec-seen"]
    assert not checks["wrong-name"].passed
    assert checks["wrong-name"].diff == [
        'event 1: expected (make opened :name "/tmp/tatara-c"), got (make opened :flags 0 :comm "tatara-guest" '
        ':name "/tmp/tatara-b")']
    assert [(m.map, m.key, m.got, m.passed) for m in v.maps] == [
        ("ports", 7, 2, True), ("ports", 2049, 1, True), ("states", 1, 3, True), ("firsts", 116, 3, True), ("kern", 0, 3, True),
        ("agree", 1, 1, True),
        ("agree", 0, 0, True)]
    assert not v.passed  # wrong-name

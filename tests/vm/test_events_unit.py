"""`:expect-events` on the VM side without a boot: the plan runs each test's
cases as a batch of their own inside the guest tool's run-and-drain, and the
EVENT lines it prints become per-test checks with an expected-vs-got diff."""

from __future__ import annotations

from rich.console import Console

from tatara_build import eventdata, report
from tatara_build.vm import results, runner

from .test_vm_unit import console


def _jobs(tmp_path):
    obj = tmp_path / "o.o"
    obj.write_bytes(b"\x7fELF")
    job = runner.ObjectJob(obj, expect_events=[runner.EventJob("first", "ring", "ring", "u32", [60, 60]),
                                        runner.EventJob("second", "ring", "ring", "u32", [])])
    cases = [runner.CaseJob(0, "first", "a", "pk", b"a", "xdp-pass", 2), runner.CaseJob(0, "first", "b", "pk", b"b", "xdp-pass", 2),
             runner.CaseJob(0, "second", "c", "pk", b"c", "xdp-pass", 2)]
    return job, cases


def test_each_test_runs_in_its_own_drained_batch(tmp_path):
    job, cases = _jobs(tmp_path)
    plan, payload = runner._plan([job], cases)
    lines = plan.splitlines()
    assert lines[lines.index("pins") + 1:lines.index("inspect")] == [
        "runs-events 0 0", "run 0 pk p0.bin 1 0", "run 0 pk p1.bin 1 1", "runs-events 1 2", "run 0 pk p2.bin 1 2"]
    files = {name: data for name, _, data in payload}
    assert files["job/events0"] == files["job/events1"] == b"/sys/fs/bpf/0/m/ring"
    assert files["job/runs1"] == b"prog run pinned /sys/fs/bpf/0/p/pk data_in /job/p2.bin repeat 1\n"
    # without :expect-events the plan is the single batch it always was
    plain, _ = runner._plan([runner.ObjectJob(job.path)], cases)
    assert "runs\n" in plain and "runs-events" not in plain


def test_events_are_compared_per_test_with_a_diff(tmp_path):
    job, cases = _jobs(tmp_path)
    first = "Return value: 2, duration: 5ns\nReturn value: 2, duration: 5ns\nEVENT /sys/fs/bpf/0/m/ring 3c000000\n" \
            "EVENT /sys/fs/bpf/0/m/ring 3d000000"
    second = "Return value: 2, duration: 5ns"
    steps = results.steps(console(("runs-events 0 0", first, 0), ("runs-events 1 2", second, 0)))
    assert [c.got for c in runner._case_results(cases, steps)] == [2, 2, 2]
    a, b = runner._event_checks([job], cases, steps)
    assert (a.passed, a.got, a.diff) == (False, ["60", "61"], ["event 2: expected 60, got 61"])
    assert (b.passed, b.got) == (True, [])
    v = results.Verification(kernel=results.KernelInfo(name="k", sha256="0" * 64), accel="tcg", boot_seconds=1.0,
                             objects=[], event_checks=[a, b], verified=True, passed=False)
    out = Console(record=True, width=120)
    report.render(v, out)
    assert "event 2: expected 60, got 61" in out.export_text()


def test_a_map_without_a_reader_is_an_error_not_a_pass(tmp_path):
    job, cases = _jobs(tmp_path)
    out = "error: /sys/fs/bpf/0/m/ring: cannot open the pinned map: No such file or directory\nReturn value: 2, duration: 5ns"
    steps = results.steps(console(("runs-events 0 0", out, 1)))
    a, b = runner._event_checks([job], cases, steps)
    assert not a.passed and "cannot open the pinned map" in a.error
    assert not b.passed and b.error == "the test's cases (or trigger) did not run"


def test_eventdata_diff_counts_and_padding():
    assert eventdata.diff("u64", [1], [bytes(8) + b"\x01" * 4]) == ["event 1: expected 1, got 0"]
    assert eventdata.diff("u32", [1], [b"\x01\x00\x00\x00\xaa\xbb\xcc\xdd"]) == []  # perf padding ignored
    assert eventdata.diff("u16", [1, 2], [b"\x01\x00"]) == ["event 2: expected 2, got (none)",
                                                             "expected 2 event(s), got 1"]
    assert eventdata.diff("i8", [], [b"\xff"]) == ["event 1: expected (none), got -1", "expected 0 event(s), got 1"]
    assert eventdata.show("u32", b"\x01") == "1 bytes 01 (a u32 has 4)"


def test_nested_struct_records_are_shown_as_tests_write_them():
    from tatara_build import frontend, structs

    module = frontend.parse("(defbpf-struct tuple (src u32) (port u16))\n"
                            "(defbpf-struct ev (key tuple) (comm (array u8 4)) (len u32))\n", "t.tlisp")
    layouts = structs.layouts(module.structs)
    raw = (7).to_bytes(4, "little") + (53).to_bytes(2, "little") + bytes(2) + b"sh\0\0" + (60).to_bytes(4, "little")
    assert eventdata.show("struct:ev", raw, layouts) == '(make ev :key (make tuple :src 7 :port 53) :comm "sh" :len 60)'
    # an empty byte array is "" (a 472-byte pad showed 472 zeros); other arrays stay lists
    module = frontend.parse("(defbpf-struct ev (pad (array u8 64)) (tag (array u32 2)))\n", "t.tlisp")
    assert eventdata.show("struct:ev", bytes(72), structs.layouts(module.structs)) == '(make ev :pad "" :tag (0 0))'


def test_objects_without_expected_events_run_plain_batches(tmp_path):
    job, cases = _jobs(tmp_path)
    other = runner.ObjectJob(job.path)
    first = [runner.CaseJob(0, "x", "a", "q", b"q", "xdp-pass", 2)]
    moved = [runner.CaseJob(1, c.test, c.case, c.program, c.packet, c.expect, c.expect_value) for c in cases]
    plan, payload = runner._plan([other, job], first + moved)
    files = {name: data for name, _, data in payload}
    assert [line for line in plan.splitlines() if line.startswith("runs")] == [
        "runs-events 0 0", "runs-events 1 1", "runs-events 2 3"]
    assert files["job/events0"] == b"" and files["job/events1"] == b"/sys/fs/bpf/1/m/ring"
    # each test's events are its own batch's: the second test's drain saw nothing
    steps = results.steps(console(("runs-events 0 0", "Return value: 2, duration: 5ns", 0),
                                  ("runs-events 1 1", "Return value: 2, duration: 5ns\nReturn value: 2, duration: 5ns\n"
                                   "EVENT /sys/fs/bpf/1/m/ring 3c000000\nEVENT /sys/fs/bpf/1/m/ring 3c000000", 0),
                                  ("runs-events 2 3", "Return value: 2, duration: 5ns", 0)))
    checks = runner._event_checks([other, job], first + moved, steps)
    assert [(c.test, c.passed) for c in checks] == [("first", True), ("second", True)]
    assert [c.got for c in runner._case_results(first + moved, steps)] == [2, 2, 2, 2]

"""`:trigger` tests on the VM side without a boot: the plan's `trigger K`
steps and the files they read, the guest script that runs them, and what
their output becomes (the attach, the actions done, the events drained)."""

from __future__ import annotations

import pytest
from rich.console import Console

from tatara_build import report
from tatara_build.errors import VmError
from tatara_build.vm import guest, results, runner

from .test_vm_unit import console

OUT = ("attached tracepoint syscalls/sys_enter_openat\ndid open /tmp/a 0 = -2\ndid open /init 65 = 3\n"
       "EVENT /sys/fs/bpf/0/m/ring 2a000000\n")


def _job(tmp_path, words=("open", "/tmp/a", "0", "open", "/init", "65")):
    obj = tmp_path / "o.o"
    obj.write_bytes(b"\x7fELF")
    trigger = runner.TriggerJob("t", "opens", "tracepoint", "syscalls/sys_enter_openat", list(words), len(words) // 3)
    return runner.ObjectJob(obj, events=["ring"], triggers=[trigger],
                            expect_events=[runner.EventJob("t", "ring", "ring", "u32", [42])])


def test_a_trigger_is_a_plan_step_with_its_words_in_files(tmp_path):
    plan, payload = runner._plan([_job(tmp_path)], [])
    lines = plan.splitlines()
    assert lines[lines.index("pins") + 1:lines.index("inspect")] == ["trigger 0"]
    files = {name: data for name, _, data in payload}
    assert files["job/attach0"] == b"/sys/fs/bpf/0/p/opens tracepoint syscalls/sys_enter_openat\n"
    assert files["job/trigger0"] == b"open /tmp/a 0 open /init 65"
    assert files["job/tevents0"] == b"/sys/fs/bpf/0/m/ring"
    # the guest reads them: attach, act, and readers around both
    assert "tatara-guest attach $pin $kind $target -- tatara-guest act $(cat /job/trigger$a)" in guest.INIT_SCRIPT
    assert "tatara-guest run-and-drain $(cat /job/tevents$a) --" in guest.INIT_SCRIPT


@pytest.mark.parametrize("words, kind, target", [
    (["open", "/tmp/a;reboot", "0"], "tracepoint", "syscalls/sys_enter_openat"),
    (["open", "/tmp/a b", "0"], "tracepoint", "syscalls/sys_enter_openat"),
    (["open", "/tmp/a", "0"], "tracepoint", "syscalls/x y"),
    (["open", "/tmp/a", "0"], "xdp", "eth0"),
])
def test_the_plan_refuses_words_the_guest_should_not_take(tmp_path, words, kind, target):
    job = _job(tmp_path)
    job.triggers[0].actions, job.triggers[0].kind, job.triggers[0].target = words, kind, target
    with pytest.raises(VmError):
        runner._plan([job], [])


def test_the_trigger_output_becomes_its_result_and_its_tests_events(tmp_path):
    job = _job(tmp_path)
    steps = results.steps(console(("trigger 0", OUT, 0)))
    (t,) = runner._trigger_results([job], steps)
    assert (t.passed, t.attach, t.actions, t.error) == (
        True, "tracepoint syscalls/sys_enter_openat", ["open /tmp/a 0 = -2", "open /init 65 = 3"], None)
    (e,) = runner._event_checks([job], [], steps)
    assert (e.passed, e.got) == (True, ["42"])
    wrong = _job(tmp_path)
    wrong.expect_events[0].expected = [41]
    (e,) = runner._event_checks([wrong], [], steps)
    assert (e.passed, e.diff) == (False, ["event 1: expected 41, got 42"])


def test_a_program_that_did_not_attach_fails_its_test_with_the_reason(tmp_path):
    job = _job(tmp_path)
    out = "error: attach tracepoint syscalls/sys_enter_openat: No such file or directory\n"
    steps = results.steps(console(("trigger 0", out, 1)))
    (t,) = runner._trigger_results([job], steps)
    assert (t.passed, t.error) == (False, "attach tracepoint syscalls/sys_enter_openat: No such file or directory")
    (t,) = runner._trigger_results([job], results.steps(console(("trigger 0", OUT.replace("did open /init 65 = 3\n", ""), 0))))
    assert (t.passed, t.error) == (False, "1 of 2 action(s) were done")
    (t,) = runner._trigger_results([job], [])
    assert (t.passed, t.error) == (False, "the trigger did not run")
    v = results.Verification(kernel=results.KernelInfo(name="k", sha256="0" * 64), accel="tcg", boot_seconds=1.0,
                             objects=[], triggers=[t], verified=True, passed=False)
    text = Console(record=True, width=140)
    report.render(v, text)
    assert "the trigger did not run" in text.export_text()
    with pytest.raises(Exception, match="t: trigger at tracepoint syscalls/sys_enter_openat: the trigger did not run"):
        report.verdict(v)


def test_a_tool_that_could_not_start_says_why(tmp_path):
    """An lsm file_open program that denies uid 0 also denies the acting
    tool's exec: the result says so, not just `0 of 2 action(s) were done`."""
    job = _job(tmp_path)
    out = ("attached tracepoint syscalls/sys_enter_openat\n"
           "error: cannot run tatara-guest: Operation not permitted\n")
    (t,) = runner._trigger_results([job], results.steps(console(("trigger 0", out, 127))))
    assert not t.passed
    assert t.error.startswith("0 of 2 action(s) were done: cannot run tatara-guest: Operation not permitted")
    assert "denies its exec" in t.error

"""Fast tests of the VM stage's parts (no boot): the cpio writer, console
and bpftool output parsing, budgets, failure mapping, vmlinux extraction."""

from __future__ import annotations

import json
import lzma
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tatara_build.errors import ToolchainError, UsageError, VmError
from tatara_build.vm import initramfs, kernels, qemu, results, runner, sourcemap

# bpftool 7.1 output captured from a 6.1 guest (inputs to the parsers).
PERCPU_DUMP = (
    '[{"key":["0x00","0x00","0x00","0x00"],"values":[{"cpu":0,"value":["0x03","0x00","0x00","0x00","0x00",'
    '"0x00","0x00","0x00"]},{"cpu":1,"value":["0x01","0x01","0x00","0x00","0x00","0x00","0x00","0x00"]}]}]'
)
HASH_DUMP = '[{"key":["0x50","0x00"],"value":["0x04","0x00","0x00","0x00","0x00","0x00","0x00","0x00"]}]'
# What `tatara-guest load` prints for an object that loads (vm/tool/tatara-guest.c).
LOAD_OK = """program xdp drop_syn
prog 'drop_syn': -- BEGIN PROG LOAD LOG --
verification time 16369 usec
stack depth 4
processed 225 insns (limit 1000000) max_states_per_insn 3 total_states 19 peak_states 17 mark_read 4
-- END PROG LOAD LOG --"""
SHOW = '{"id":6,"type":"xdp","name":"drop_syn","bytes_xlated":608,"jited":true,"bytes_jited":463}'


def console(*blocks: tuple[str, str, int]) -> str:
    body = "".join(f"@@BEGIN {head}\n{out}\n\n@@END {rc} 2.00 2.25\n" for head, out, rc in blocks)
    return "SeaBIOS junk\rBooting..@@TATARA-READY 1.9\n" + body + "@@TATARA-DONE 2.3\n"


def test_newc_archive_lists_with_cpio_and_is_reproducible(tmp_path):
    entries = [("job/plan", 0o100644, b"load 0 o0.o\n"), ("bin/sh", 0o120777, b"busybox"),
               ("init", 0o100755, b"#!/bin/sh\n")]
    archive = initramfs.newc(entries)
    assert archive == initramfs.newc(list(reversed(entries)))
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=archive, capture_output=True, check=True).stdout.decode()
    assert listing.split() == ["bin", "bin/sh", "init", "job", "job/plan"]
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-id", "--quiet"], input=archive, cwd=out, check=True)
    assert (out / "job/plan").read_bytes() == b"load 0 o0.o\n"
    assert (out / "bin/sh").is_symlink() and (out / "bin/sh").readlink().name == "busybox"
    assert len(archive) % 4 == 0 and archive.count(b"070701") == 6  # 5 entries + trailer, all mtime 0
    assert all(archive[i + 6 + 5 * 8 : i + 6 + 6 * 8] == b"0" * 8 for i in _headers(archive))


def _headers(archive: bytes) -> list[int]:
    """Offsets of the newc headers, walked independently of the writer."""
    offsets, i = [], 0
    while i < len(archive):
        offsets.append(i)
        size, namesize = int(archive[i + 54 : i + 62], 16), int(archive[i + 94 : i + 102], 16)
        name_end = i + 110 + namesize
        if archive[i + 110 : name_end - 1] == b"TRAILER!!!":
            break
        i = (name_end + 3) // 4 * 4
        i = (i + size + 3) // 4 * 4
    return offsets


@pytest.mark.skipif(not shutil.which("busybox") or not shutil.which("bpftool"), reason="busybox/bpftool missing")
def test_base_has_init_bpftool_libs_and_no_busybox_link_loop():
    entries = {path: (mode, data) for path, mode, data in initramfs.base_entries()}
    assert entries["init"][0] == 0o100755 and entries["init"][1].startswith(b"#!/bin/busybox sh")
    assert entries["bin/busybox"][0] == 0o100755 and entries["bin/bpftool"][0] == 0o100755
    assert entries["bin/sh"] == (0o120777, b"busybox")
    libs = [p for p in entries if ".so" in p]  # what `ldd bpftool` resolves, at the same paths
    assert any("ld-linux" in p for p in libs) and any("libelf.so" in p for p in libs)
    assert "bin/init" not in entries and "bin/busybox" in entries


def test_console_steps_and_parsers():
    steps = results.steps(console(("load 0 o0.o", LOAD_OK, 0), ("show 0 drop_syn", SHOW, 0),
                                  ("run 0 drop_syn p0.bin 1 0", "Return value: 1, duration: 93501ns", 0),
                                  ("dump 0 syn_drops", PERCPU_DUMP, 0)))
    assert [s.kind for s in steps] == ["load", "show", "run", "dump"] and steps[0].seconds == 0.25
    assert results.program_names(steps[0].output) == ["drop_syn"]
    stats = results.log_stats(results.load_logs(LOAD_OK)["drop_syn"].text)
    assert stats == {"verified_insns": 225, "total_states": 19, "peak_states": 17, "stack_depth": 4,
                     "verification_time_us": 16369}
    assert results.prog_show(SHOW) == {"xlated_bytes": 608, "jited_bytes": 463}
    assert results.prog_run(steps[2].output) == (1, 93501)
    assert results.prog_run("Return value: 4294967295, duration (average): 81ns") == (4294967295, 81)
    assert results.map_entries(PERCPU_DUMP) == {0: 3 + 0x0101}  # summed over CPUs
    assert results.map_entries(HASH_DUMP) == {80: 4}


def test_inspect_batch_becomes_show_and_dump_steps():
    batch = json.dumps([{"command": ["prog", "show", "pinned", "/sys/fs/bpf/1/p/drop_syn"], "output": json.loads(SHOW)},
                        {"command": ["map", "dump", "pinned", "/sys/fs/bpf/1/m/syn_drops"], "output": json.loads(PERCPU_DUMP)}])
    steps = results.steps(console(("inspect", batch, 0)))
    assert [(s.kind, s.args) for s in steps] == [("show", ["1", "drop_syn"]), ("dump", ["1", "syn_drops"])]
    assert results.prog_show(steps[0].output)["jited_bytes"] == 463
    assert results.map_entries(steps[1].output) == {0: 3 + 0x0101}
    assert results.steps(console(("inspect", "Error: nope", 255))) == []


def test_each_object_is_one_load_step_and_a_failed_one_is_marked_by_its_exit_code():
    failed = "program xdp other\nlibbpf: elf: '/job/o1.o' is not a proper ELF object\nerror: cannot open /job/o1.o"
    steps = results.steps(console(("load 0 o0.o", LOAD_OK, 0), ("load 1 o1.o", failed, 1)))
    assert [(s.kind, s.args, s.rc) for s in steps] == [("load", ["0", "o0.o"], 0), ("load", ["1", "o1.o"], 1)]
    assert results.program_names(steps[0].output) == ["drop_syn"] and results.program_names(steps[1].output) == ["other"]
    stats = results.log_stats(results.load_logs(steps[0].output)["drop_syn"].text)
    assert stats == {"verified_insns": 225, "total_states": 19, "peak_states": 17, "stack_depth": 4,
                     "verification_time_us": 16369}


# What `tatara-guest load` printed for one object with three programs.
MULTI_LOAD = "\n".join(f"program {sec} {name}" for sec, name in (("xdp", "ingress"), ("tc", "egress"),
                                                                 ("kprobe/tcp_v4_connect", "counter")))


def test_an_object_is_loaded_only_when_every_program_is_pinned(tmp_path):
    """Success is decided from the pins the guest lists after the loads,
    and the plan loads every object once, with our own loader."""
    obj = tmp_path / "o.o"
    obj.write_bytes(b"x")
    pins = "\n".join(f"/sys/fs/bpf/0/p/{n}" for n in ("counter", "egress", "ingress"))
    steps = results.steps(console(("load 0 o0.o", MULTI_LOAD, 0), ("pins", pins, 0)))
    assert [(s.kind, s.rc) for s in steps] == [("load", 0), ("pins", 0)]
    pinned = results.pinned_programs(steps)
    got = runner._object_result(0, runner.ObjectJob(obj), steps, pinned)
    assert got.loaded and got.loader_output is None
    assert [p.program for p in got.programs] == ["ingress", "egress", "counter"]
    # One program missing from the pins: not loaded, whatever the loader said.
    partial = runner._object_result(0, runner.ObjectJob(obj), steps, pinned - {("0", "egress")})
    assert not partial.loaded and "egress" in partial.loader_output
    plan, payload = runner._plan([runner.ObjectJob(obj), runner.ObjectJob(obj)], [])
    assert plan.splitlines()[:2] == ["loads", "pins"]
    assert dict((p, d) for p, _, d in payload)["job/loads"] == b"0 o0.o\n1 o1.o\n"
    from tatara_build.vm import guest
    assert "tatara-guest load-many /job/loads /job /sys/fs/bpf" in guest.INIT_SCRIPT and "bpftool -d" not in guest.INIT_SCRIPT


def test_only_expected_maps_are_dumped(tmp_path):
    obj = tmp_path / "o.o"
    obj.write_bytes(b"x")
    maps = [runner.MapJob(0, "t", "pkts", 0, 1), runner.MapJob(0, "t", "pkts", 1, 1), runner.MapJob(0, "u", "by_port", 80, 1)]
    plan, payload = runner._plan([runner.ObjectJob(obj)], [], maps)
    assert dict((p, d) for p, _, d in payload)["job/dumps"] == b"0 pkts\n0 by_port\n"
    assert [l for l in plan.splitlines() if l.startswith("dump")] == ["dump 0 pkts", "dump 0 by_port"]
    with pytest.raises(VmError, match="not a C identifier"):
        runner._plan([runner.ObjectJob(obj)], [], [runner.MapJob(0, "t", "x; rm", 0, 1)])


def test_budget_exceeded_fails_like_a_rejection(tmp_path):
    obj = tmp_path / "o.o"
    obj.write_bytes(b"x")
    steps = results.steps(console(("load 0 o0.o", LOAD_OK, 0), ("show 0 drop_syn", SHOW, 0)))
    within = runner._object_result(0, runner.ObjectJob(obj, {"drop_syn": 225}), steps)
    over = runner._object_result(0, runner.ObjectJob(obj, {"drop_syn": 224}), steps)
    assert within.programs[0].verdict == "accepted" and within.programs[0].xlated_bytes == 608
    assert over.programs[0].verdict == "over-budget" and over.programs[0].max_insns == 224


def test_case_results_compare_the_action_value_signed():
    cases = [runner.CaseJob(0, "t", "a", "p", b"", "tc-act-unspec", -1),
             runner.CaseJob(0, "t", "b", "p", b"", "xdp-drop", 1)]
    steps = results.steps(console(("run 0 p p0.bin 1 0", "Return value: 4294967295, duration: 5ns", 0),
                                  ("run 0 p p1.bin 1 1", "Return value: 2, duration: 5ns", 0)))
    got = runner._case_results(cases, steps)
    assert [c.passed for c in got] == [True, False] and got[1].got == 2


def test_batch_results_then_individual_runs_after_a_batch_failure():
    cases = [runner.CaseJob(0, "t", name, "p", b"", "xdp-pass", 2) for name in ("a", "b", "c")]
    batch = "Return value: 2, duration (average): 7ns\nError: run: Invalid argument"
    steps = results.steps(console(("runs", batch, 255),
                                  ("run 0 p p1.bin 1 1", "Error: run: Invalid argument", 255),
                                  ("run 0 p p2.bin 1 2", "Return value: 1, duration: 5ns", 0)))
    got = runner._case_results(cases, steps)
    assert [(c.got, c.ns_per_packet) for c in got] == [(2, 7.0), (None, None), (1, 5.0)]
    assert got[1].error == "Error: run: Invalid argument" and [c.passed for c in got] == [True, False, False]


def test_map_checks_absent_key_is_zero_and_failed_dump_is_none():
    maps = [runner.MapJob(0, "t", "hits", 80, 4), runner.MapJob(0, "t", "hits", 81, 0), runner.MapJob(0, "t", "gone", 0, 1)]
    steps = results.steps(console(("dump 0 hits", HASH_DUMP, 0)))
    checks = runner._map_checks(maps, steps)
    assert [(c.got, c.passed) for c in checks] == [(4, True), (0, True), (None, False)]


def test_map_checks_and_the_report_name_maps_as_the_source_does():
    from rich.console import Console

    from tatara_build import report

    job = runner.MapJob(0, "t", "syn_drops", 0, 4, "syn-drops")
    (check,) = runner._map_checks([job], results.steps(console(("dump 0 syn_drops", PERCPU_DUMP, 0))))
    assert (check.map, check.symbol, check.got) == ("syn-drops", "syn_drops", 3 + 1 + (1 << 8))
    v = results.Verification(kernel=results.KernelInfo(name="k", sha256="0" * 64), accel="tcg", boot_seconds=1.0,
                             objects=[], maps=[check], verified=True, passed=False)
    out = Console(record=True, width=120)
    report.render(v, out)
    text = out.export_text()
    assert "syn-drops" in text and "syn_drops" not in text
    with pytest.raises(Exception, match=r"map syn-drops\[0\]"):
        report.verdict(v)


def test_failing_line_maps_to_the_tlisp_marker(tmp_path):
    log = "; int f(struct xdp_md *ctx)\n0: (b7) r0 = 2\n; if (tcp->syn && !tcp->ack) {\n13: (69) r1 = *(u16 *)(r1 +46)\ninvalid access to packet"
    assert sourcemap.failing_line(log) == ("if (tcp->syn && !tcp->ack) {", None)
    generated = tmp_path / "x.bpf.c"
    generated.write_text("int f(void) {\n    /* drop-syn.tlisp:31:5 */\n    if (tcp->syn && !tcp->ack) {\n")
    assert sourcemap.tlisp_span([generated], "if (tcp->syn && !tcp->ack) {", None) == "drop-syn.tlisp:31:5"
    newer = "; if (x) @ x.bpf.c:3\n"
    assert sourcemap.failing_line(newer) == ("if (x)", 3)
    assert sourcemap.tlisp_span([generated], "no such line", None) is None


def test_plan_refuses_names_that_are_not_c_identifiers(tmp_path):
    obj = tmp_path / "o.o"
    obj.write_bytes(b"\x7fELF")
    bad = runner.CaseJob(0, "t", "c", "x; reboot", b"", "xdp-pass", 2)
    with pytest.raises(VmError, match="not a C identifier"):
        runner._plan([runner.ObjectJob(obj)], [bad])
    plan, payload = runner._plan([runner.ObjectJob(obj)], [runner.CaseJob(0, "t", "c", "drop_syn", b"ab", "xdp-pass", 2, 7)])
    assert plan.splitlines() == ["loads", "pins", "runs", "run 0 drop_syn p0.bin 7 0", "inspect", "show 0"]
    assert ("job/p0.bin", 0o100644, b"ab") in payload
    assert ("job/runs", 0o100644, b"prog run pinned /sys/fs/bpf/0/p/drop_syn data_in /job/p0.bin repeat 7\n") in payload


def _bzimage(payload: bytes) -> bytes:
    image = bytearray(0x400)
    image[0x1F1] = 1  # one setup sector: protected-mode code at 2 * 512
    image[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", image, 0x248, 0x10, len(payload))
    return bytes(image) + b"\0" * 0x10 + payload


def test_extract_vmlinux_from_xz_payload_and_refuse_garbage():
    elf = b"\x7fELF" + bytes(range(256)) * 8
    packed = lzma.compress(elf, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32) + struct.pack("<I", len(elf))
    assert kernels.extract_vmlinux(_bzimage(packed)) == elf
    assert kernels.extract_vmlinux(_bzimage(b"not compressed")) is None
    assert kernels.extract_vmlinux(b"\0" * 0x400) is None


def test_unpinned_kernel_line_is_a_usage_error():
    with pytest.raises(UsageError, match="no pinned kernel for 2.6: the pinned lines are 5.10, 6.1, 6.12, 7.2"):
        kernels.resolve("2.6")
    with pytest.raises(UsageError, match="unknown kernel 'nope'"):
        kernels.resolve("nope")


def test_qemu_command_line(tmp_path):
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86 missing")
    tcg = qemu.command(tmp_path / "k", tmp_path / "i", "tcg")
    assert ["-nic", "none"] == tcg[tcg.index("-nic"):tcg.index("-nic") + 2] and "-no-reboot" in tcg
    assert "-enable-kvm" not in tcg and "-enable-kvm" in qemu.command(tmp_path / "k", tmp_path / "i", "kvm")
    append = tcg[tcg.index("-append") + 1].split()
    lsm = next(a for a in append if a.startswith("lsm=")).removeprefix("lsm=").split(",")
    assert lsm[-1] == "bpf" and {"lockdown", "yama", "apparmor"} <= set(lsm)  # BPF LSM on, the rest kept


def test_reads_packet_finds_header_parses_anywhere_in_a_body():
    from tatara_build.check import check
    from tatara_build.frontend import load
    from tatara_build.vm import cases as vm_cases

    root = Path(__file__).resolve().parents[2]
    parsing = check(load(root / "tests/backends/fixtures/kind-cgroup-skb.tlisp"))
    length_only = check(load(root / "examples/size-histogram.tlisp"))
    assert vm_cases._reads_packet(parsing.functions[0].body)
    assert not vm_cases._reads_packet(length_only.functions[0].body)


def test_cases_this_kernel_cannot_run_are_skipped_with_the_reason_not_failed():
    from tatara_build.vm import runner as vm_runner
    from tatara_build.vm.kernels import Kernel
    from tatara_build.vm.results import CaseResult, MapCheck

    kernel = Kernel("6.1", Path("/k"), "0" * 64, no_packet_test_run=frozenset({"cgroup-skb"}))
    jobs = [vm_runner.CaseJob(0, "t", "parses", "p", b"", "deny", 0, 1, "cgroup-skb", True),
            vm_runner.CaseJob(0, "u", "length", "q", b"", "deny", 0, 1, "cgroup-skb", False),
            vm_runner.CaseJob(0, "v", "xdp", "r", b"", "xdp-drop", 1, 1, "xdp", True)]
    results = [CaseResult(test=j.test, case=j.case, program=j.program, expect=j.expect,
                          expect_value=j.expect_value, got=1, passed=False) for j in jobs]
    maps = [MapCheck(test=t, map="m", key=0, expected=1, got=0, passed=False) for t in ("t", "u")]
    vm_runner._skip_untestable(jobs, results, maps, kernel)
    assert "no packet data" in results[0].skipped and "6.1" in results[0].skipped
    assert results[1].skipped is None and results[2].skipped is None  # still failures
    assert maps[0].skipped and maps[1].skipped is None
    user_kernel = Kernel("/my/bzImage", Path("/my/bzImage"), "0" * 64)  # unknown: run everything
    fresh = [r.model_copy(update={"skipped": None}) for r in results]
    vm_runner._skip_untestable(jobs, fresh, [], user_kernel)
    assert not any(r.skipped for r in fresh)


def test_an_object_that_did_not_load_always_has_a_reason(tmp_path):
    """Every program accepted, yet the object failed (a pin, a map): exit 4
    names the object and bpftool's error, never an empty list."""
    from tatara_build import report
    from tatara_build.errors import RejectedError

    obj = tmp_path / "o.o"
    obj.write_bytes(b"x")
    steps = results.steps(console(("load 0 o0.o", LOAD_OK + "\nerror: pinning under /sys/fs/bpf/0 failed: File exists", 1),
                                  ("pins", "/sys/fs/bpf/0/p/drop_syn", 0), ("show 0 drop_syn", SHOW, 0)))
    got = runner._object_result(0, runner.ObjectJob(obj), steps, results.pinned_programs(steps))
    assert not got.loaded and got.programs[0].verdict == "accepted"
    v = results.Verification(kernel=results.KernelInfo(name="6.1", sha256="0"), accel="tcg", boot_seconds=1.0,
                             objects=[got], verified=False, passed=False)
    with pytest.raises(RejectedError, match=r"o\.o: did not load \(error: pinning under /sys/fs/bpf/0 failed: File exists\)"):
        report.verdict(v)


@pytest.mark.skipif(not shutil.which("busybox"), reason="busybox missing")
def test_the_guest_keeps_the_head_and_tail_of_each_verifier_log_and_the_exit_code():
    """A program near the complexity limit logs hundreds of thousands of
    lines; the guest keeps what the parsers need (stats and the failing
    instruction are at the end) so RAM and the serial console stay small."""
    from tatara_build.vm import guest

    script = guest.INIT_SCRIPT
    start = script.index("shorten() {")
    shorten = script[start : script.index("\n}\n", start) + 3]
    log = "\n".join(str(n) for n in range(1, 5001))
    text = (f"program xdp a\nprog 'a': -- BEGIN PROG LOAD LOG --\n{log}\n"
            "processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0\n"
            "-- END PROG LOAD LOG --\nerror: loading /job/o0.o failed: Permission denied\n@@RC 1\n")
    ran = subprocess.run(["busybox", "sh", "-c", shorten + "shorten"], input=text, capture_output=True, text=True)
    assert ran.returncode == 1
    lines = ran.stdout.splitlines()
    assert len(lines) == 2 + guest.LOG_HEAD_LINES + 1 + guest.LOG_TAIL_LINES + 2
    assert lines[2 : 2 + guest.LOG_HEAD_LINES] == [str(n) for n in range(1, guest.LOG_HEAD_LINES + 1)]
    assert lines[2 + guest.LOG_HEAD_LINES] == f"... {5001 - guest.LOG_TAIL_LINES - guest.LOG_HEAD_LINES} lines of the verifier log left out ..."
    assert lines[-1] == "error: loading /job/o0.o failed: Permission denied" and "@@RC" not in ran.stdout
    logs = results.load_logs(ran.stdout)
    assert results.log_stats(logs["a"].text)["verified_insns"] == 9


def test_attach_targets_step_and_suggestions(tmp_path):
    obj = tmp_path / "o.o"
    obj.write_bytes(b"x")
    job = runner.ObjectJob(obj, targets={"drop_syn": ("kprobe", "tcp_v4_conect"), "x": ("xdp", "eth0")})
    plan, payload = runner._plan([job], [])
    assert "targets" in plan.splitlines()
    assert dict((p, d) for p, _, d in payload)["job/targets"] == b"kprobe tcp_v4_conect tcp_\n"  # xdp: not looked up
    out = "missing kprobe tcp_v4_conect\nnear kprobe tcp_v4_conect tcp_v4_connect\nnear kprobe tcp_v4_conect tcp_done\nfound lsm file_open"
    steps = results.steps(console(("load 0 o0.o", LOAD_OK, 0), ("pins", "/sys/fs/bpf/0/p/drop_syn", 0),
                                  ("targets", out, 0), ("show 0 drop_syn", SHOW, 0)))
    found = results.attach_targets(steps)
    assert found == {("kprobe", "tcp_v4_conect"): ("missing", ["tcp_v4_connect", "tcp_done"]), ("lsm", "file_open"): ("found", [])}
    got = runner._object_result(0, job, steps, results.pinned_programs(steps), found)
    (program,) = got.programs
    assert program.verdict == "no-attach-target"
    assert program.attach_error.startswith("kprobe target 'tcp_v4_conect' does not exist on this kernel; "
                                           "did you mean 'tcp_v4_connect'")
    with pytest.raises(VmError, match="is not a kernel function name"):
        runner._plan([runner.ObjectJob(obj, targets={"p": ("kprobe", "x; reboot")})], [])


def test_maps_before_become_a_seeds_step_and_a_failed_write_fails_the_cases(tmp_path):
    obj = tmp_path / "o.o"
    obj.write_bytes(b"x")
    job = runner.ObjectJob(obj, seeds=[("nets", bytes([24, 0, 0, 0, 10, 1, 2, 0]), (5).to_bytes(4, "little")),
                                       ("drops", bytes(4), (5).to_bytes(8, "little"))])
    plan, payload = runner._plan([job], [runner.CaseJob(0, "t", "c", "p", b"", "xdp-pass", 2)])
    lines = plan.splitlines()
    assert lines.index("pins") < lines.index("seeds") < lines.index("runs")
    assert dict((p, d) for p, _, d in payload)["job/seeds"] == (
        b"0 nets 180000000a010200 05000000\n0 drops 00000000 0500000000000000\n")
    ok = results.steps(console(("seeds", "Error: reading batch file failed: File exists", 255),
                               ("run 0 p p0.bin 1 0", "Return value: 2, duration: 5ns", 0)))
    assert results.seed_error(ok) is None
    bad = results.steps(console(("seeds", "Error: update failed: Argument list too long", 255)))
    assert results.seed_error(bad) == "Error: update failed: Argument list too long"


@pytest.mark.skipif(not shutil.which("busybox"), reason="busybox missing")
def test_the_guest_turns_seed_lines_into_bpftool_map_updates(tmp_path):
    from tatara_build.vm import guest

    script = guest.INIT_SCRIPT
    start = script.index("  seeds)\n")
    body = script[start : script.index("    step seeds", start)].split("\n", 1)[1]
    (tmp_path / "seeds").write_text("1 drops 00000000 0500000000000000\n0 nets 180000000a010200 05000000\n")
    body = body.replace("/job/seeds", str(tmp_path / "seeds")).replace("/tmp/seeds", str(tmp_path / "out"))
    subprocess.run(["busybox", "sh", "-c", body], check=True)
    assert (tmp_path / "out").read_text().splitlines() == [
        "map update pinned /sys/fs/bpf/1/m/drops key hex 00 00 00 00  value hex 05 00 00 00 00 00 00 00 ",
        "map update pinned /sys/fs/bpf/0/m/nets key hex 18 00 00 00 0a 01 02 00  value hex 05 00 00 00 ",
    ]


def test_vm_tools_run_through_the_one_wrapper_and_fail_as_toolchain_errors(tmp_path):
    """No vm/ module starts a process itself except qemu.py (it reads the
    console while QEMU runs); a failing tool is exit 3 with its command and
    stderr, never a traceback."""
    from tatara_build.errors import ExitCode, ToolchainError
    from tatara_build.vm import debian, kernels

    vm_dir = Path(kernels.__file__).parent
    direct = [p.name for p in sorted(vm_dir.glob("*.py")) if "subprocess" in p.read_text() and p.name != "qemu.py"]
    assert direct == []
    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"not a deb")
    with pytest.raises(ToolchainError) as err:
        kernels.deb_member(bad, "./boot/vmlinuz", tmp_path / "out")
    assert err.value.exit_code == ExitCode.TOOLCHAIN and "dpkg-deb --fsys-tarfile" in err.value.render()
    zstd_junk = bytearray(0x400)
    zstd_junk[0x1F1], zstd_junk[0x202:0x206] = 1, b"HdrS"
    struct.pack_into("<II", zstd_junk, 0x248, 0x10, 12)
    assert kernels.extract_vmlinux(bytes(zstd_junk) + b"\0" * 0x10 + b"\x28\xb5\x2f\xfd" + b"junkjunk") is None
    assert debian.compare_versions("6.1.2-1", "6.1.10-1") == -1 and debian.compare_versions("7.2", "6.1") == 1

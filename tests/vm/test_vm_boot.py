"""The verifier gate for real: QEMU (TCG here) on the pinned Debian 6.1
kernel, downloaded into the cache on first use. One shared boot runs every
example (C backend), the hand-written drop-syn with the example's cases,
the unsafe fixture, an over-budget load and the no_std Rust fixture."""

from __future__ import annotations

import dataclasses

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tatara_build import tables
from tatara_build.frontend import load
from tatara_build.errors import ToolchainError, VmError
from tatara_build.vm import cases, initramfs, kernels, qemu, runner

pytestmark = pytest.mark.vm

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.tlisp"))
HAND_DROP_SYN = REPO / "tests" / "vm" / "fixtures" / "drop_syn.bpf.c"
UNSAFE = REPO / "tests" / "fixtures" / "unsafe" / "unsafe-read.bpf.c"
NOSTD = REPO / "tests" / "fixtures" / "nostd-xdp"
KINDS = sorted((REPO / "tests" / "backends" / "fixtures").glob("kind-*.tlisp"))
REJECTED = REPO / "tests" / "vm" / "fixtures" / "reject-return.tlisp"
MULTI = REPO / "tests" / "vm" / "fixtures" / "multi-object.tlisp"  # 3 programs, 5 map kinds
BAD_TARGETS = REPO / "tests" / "vm" / "fixtures" / "bad-targets.tlisp"
EVENTS = REPO / "tests" / "vm" / "fixtures" / "events.bpf.c"  # a ring buffer and a perf-event array
# Map semantics the kernel must agree with: lpm keys in network order, struct keys and values.
MAP_FIXTURES = [REPO / "tests" / "backends" / "fixtures" / f"map-{m}.tlisp" for m in ("lpm-trie", "structs")]
# 6.1's and 6.12's BPF_PROG_TEST_RUN leave data_end unset for cgroup-skb:
# cgroup-skb (and socket-filter) programs read headers through
# bpf_skb_load_bytes, so every case runs on both kernels, none is skipped.
HELPER_READ_KINDS = [REPO / "tests" / "backends" / "fixtures" / f"kind-{k}.tlisp" for k in ("cgroup-skb", "socket-filter")]

if not shutil.which("qemu-system-x86_64") or not shutil.which("clang"):
    pytest.skip("qemu-system-x86 and clang are needed for VM tests", allow_module_level=True)


def clang_bpf(source: Path, out: Path) -> Path:
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-fno-ident",
                    "-c", str(source), "-o", str(out)], check=True, capture_output=True)
    return out


def nostd_object(tmp: Path) -> Path | str:
    """The build helper's no_std crate, linked by our LLVM driver; a reason
    string when this machine lacks the Rust toolchain for it."""
    from tatara_build.compile import BuildOptions, compile_generated

    try:
        compile_generated(NOSTD, "nostd-xdp", tmp / "nostd", BuildOptions(linker="llvm", use_cache=False))
    except ToolchainError as err:
        return f"no BPF-capable Rust toolchain: {err}"
    return tmp / "nostd" / "nostd-xdp.o"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Build everything, boot once, return (verification, index by label, modules)."""
    from tatara_build.compile import BuildOptions
    from tatara_build.pipeline import build
    from tatara_build.check import check
    from tatara_build.frontend import load

    tmp = tmp_path_factory.mktemp("vm")
    objects, case_jobs, map_jobs, index, modules = [], [], [], {}, {}
    # Every example and one fixture per program kind (with their packet
    # tests), and a fixture the verifier rejects: the checker now refuses
    # it too (cgroup-skb return range), so it is built with that rule off,
    # as an older checker would have passed it.
    for source in EXAMPLES + KINDS + MAP_FIXTURES + [MULTI, REJECTED, BAD_TARGETS]:
        with pytest.MonkeyPatch.context() as mp:
            if source == REJECTED:
                kind = tables.PROGRAM_KINDS["cgroup-skb"]
                mp.setitem(tables.PROGRAM_KINDS, "cgroup-skb", dataclasses.replace(kind, return_range=None))
            module = check(load(source))
            out = tmp / source.stem
            manifest = build(source, out, BuildOptions(backend="c", use_cache=False))
        o, c, m = cases.jobs(module, out, manifest, object_index=len(objects))
        index[source.stem], modules[source.stem] = len(objects), module
        objects += o
        case_jobs += c
        map_jobs += m
    # The hand-written C drop-syn under the example's own packets and counter.
    drop_syn = modules["drop-syn"]
    hand = len(objects)
    index["hand"] = hand
    objects.append(runner.ObjectJob(clang_bpf(HAND_DROP_SYN, tmp / "hand.o")))
    case_jobs += [runner.CaseJob(hand, "hand", c.case, "drop_syn", c.packet, c.expect, c.expect_value, c.repeat)
                  for c in case_jobs if c.object_index == index["drop-syn"]]
    map_jobs += [runner.MapJob(hand, "hand", "syn_drops", m.key, m.value) for m in map_jobs
                 if m.object_index == index["drop-syn"]]
    # The same generated object again, with a budget it cannot meet.
    index["budget"] = len(objects)
    objects.append(runner.ObjectJob(tmp / "drop-syn" / "drop-syn.o", default_max_insns=10))
    index["unsafe"] = len(objects)
    objects.append(runner.ObjectJob(clang_bpf(UNSAFE, tmp / "unsafe.o"), generated=[UNSAFE]))
    # Records read by the guest tool while the cases run (two runs of one
    # packet, one of another: their first bytes tell them apart).
    index["events"] = events = len(objects)
    objects.append(runner.ObjectJob(clang_bpf(EVENTS, tmp / "events.o"), events=["ring", "perf"]))
    xdp_pass = tables.PROGRAM_KINDS["xdp"].actions["xdp-pass"].value
    case_jobs += [runner.CaseJob(events, "events", name, "emit", packet, "xdp-pass", xdp_pass, repeat)
                  for name, packet, repeat in (("a", b"\xab" * 20, 2), ("b", b"\xcd" * 30, 1))]
    nostd = nostd_object(tmp)
    if isinstance(nostd, Path):
        index["nostd"] = len(objects)
        objects.append(runner.ObjectJob(nostd))
    verification = runner.run(objects, kernels.resolve(drop_syn.programs[0].kernel), case_jobs, map_jobs)
    return verification, index, modules, nostd


def test_every_example_and_program_kind_is_accepted_and_passes_its_packet_tests(shared):
    v, index, modules, _ = shared
    assert v.kernel.sha256 == kernels.KERNELS["6.1"].vmlinuz_sha256
    kinds = {p.kind for stem in modules if stem.startswith("kind-") for p in modules[stem].programs}
    assert kinds == set(tables.PROGRAM_KINDS), "a program kind without a fixture"
    for stem, module in modules.items():
        if stem in (REJECTED.stem, BAD_TARGETS.stem):
            continue
        obj = v.objects[index[stem]]
        assert obj.loaded, obj.loader_output
        assert {p.program for p in obj.programs} == {p.name.replace("-", "_") for p in module.programs}
        for program in obj.programs:
            assert program.verdict == "accepted", (stem, program)
            assert program.verified_insns and program.xlated_bytes and program.jited_bytes is not None
            assert program.verified_insns <= program.max_insns
        mine = [c for c in v.cases if c.test in {t.name for t in module.tests}]
        assert len(mine) == sum(len(t.cases) for t in module.tests)
        assert all(c.got is not None for c in mine), [c for c in mine if c.got is None]
        assert not any(c.skipped for c in mine)
        assert all(c.passed for c in mine), [c for c in mine if not c.passed]
        # :expect-packet cases compared the packet test-run left (data_out)
        wanted = {c.name for t in module.tests for c in t.cases if c.expect_layers or c.expect_packet_hex}
        assert {c.case for c in mine if c.got_packet is not None and c.got_packet == c.expected_packet} == wanted
        assert all(m.passed for m in v.maps if m.test in {t.name for t in module.tests})


def test_consts_set_by_a_test_reach_the_verifier_in_a_copy_of_the_object(shared):
    """const-rate-limit: tests with `:consts` run on copies whose .rodata has
    the loader's values (the built object keeps its defaults), one copy per
    distinct set; the verifier sees the value: with `verbose` on it walks the
    printk path it prunes in the object as built."""
    v, index, modules, _ = shared
    base = index["const-rate-limit"]
    objs = v.objects[base:base + 3]
    assert [o.consts for o in objs] == [None, {"limit": 1}, {"limit": 1, "verbose": 1}]
    assert objs[1].path.endswith("const-rate-limit.o[limit=1]") and objs[0].sha256 != objs[1].sha256
    assert all(o.loaded and all(p.verdict == "accepted" for p in o.programs) for o in objs)
    insns = [{p.program: p.verified_insns for p in o.programs} for o in objs]
    assert insns[2]["limit_in"] > insns[0]["limit_in"], insns
    by_case = {(c.test, c.case): c for c in v.cases}
    # the same second packet: passes under the default budget of 3, dropped under the loader's 1
    assert by_case[("default-budget", "first-three")].passed and by_case[("loader-budget", "second")].passed
    assert by_case[("loader-budget", "second")].got == 1  # XDP_DROP
    assert all(m.passed for m in v.maps if m.test in ("loader-budget", "egress-budget", "verbose-drops"))


def test_many_programs_and_maps_in_one_object_load_once_and_pass(shared):
    """bpftool's batch ends with a stale errno after pinning them all; the
    verdict comes from the pins (the generic test above checks the cases)."""
    v, index, _, _ = shared
    obj = v.objects[index[MULTI.stem]]
    assert obj.loaded and obj.loader_output is None
    assert sorted(p.program for p in obj.programs) == ["connect", "egress", "ingress"]
    assert all(p.verdict == "accepted" for p in obj.programs)
    checks = {(m.map, m.key): m.got for m in v.maps if m.test in ("ingress-packets", "egress-packets")}
    assert checks == {("packets", 0): 3, ("by-port", 443): 2, ("packets", 1): 1, ("recent", 0x0A000009): 1}


def test_attach_targets_the_kernel_lacks_fail_with_its_own_names_as_suggestions(shared):
    v, index, _, _ = shared
    obj = v.objects[index[BAD_TARGETS.stem]]
    assert obj.loaded  # the verifier accepts them all: only the lookup fails them
    got = {p.program: p for p in obj.programs}
    assert got["real_kprobe"].verdict == "accepted" and got["real_kprobe"].attach_error is None
    assert got["typo_kprobe"].verdict == got["typo_tracepoint"].verdict == "no-attach-target"
    assert "'tcp_v4_conect' does not exist on this kernel; did you mean 'tcp_v4_connect'" in got["typo_kprobe"].attach_error
    assert "did you mean 'syscalls/sys_enter_openat'" in got["typo_tracepoint"].attach_error
    # every example's and kind fixture's target exists on the pinned kernel
    others = [p for stem, i in index.items() if stem not in (BAD_TARGETS.stem,) and isinstance(i, int)
              for p in v.objects[i].programs]
    assert not [p for p in others if p.attach_error]


def test_drop_syn_drops_syns_only_and_counts_them(shared):
    v, _, modules, _ = shared
    drop, keep = tables.PROGRAM_KINDS["xdp"].actions["xdp-drop"].value, tables.PROGRAM_KINDS["xdp"].actions["xdp-pass"].value
    for test in ("drop-syn-packets", "hand"):
        got = {c.case: c.got for c in v.cases if c.test == test}
        assert got["syn"] == drop and got["syn-options"] == drop and got["syn-ipv6"] == drop
        for case in ("syn-ack", "ack", "udp", "arp", "truncated-tcp", "fragment", "ipv6-ack"):
            assert got[case] == keep, (test, case)
        repeats = {c.case: c.repeat for c in v.cases if c.test == test}
        dropped = sum(repeats[name] for name, value in got.items() if value == drop)
        (counter,) = [m for m in v.maps if m.test == test and m.key == 0]
        assert counter.got == dropped
        if test == "drop-syn-packets":  # reported as the source names it
            assert (counter.map, counter.symbol) == ("syn-drops", "syn_drops")


def test_budget_exceeded_fails_like_a_rejection(shared):
    v, index, _, _ = shared
    (program,) = v.objects[index["budget"]].programs
    assert program.verdict == "over-budget" and program.verified_insns > program.max_insns == 10
    assert not v.verified and not v.passed


def test_unsafe_program_is_rejected_with_the_verifier_log(shared):
    v, index, _, _ = shared
    obj = v.objects[index["unsafe"]]
    (program,) = obj.programs
    assert not obj.loaded and program.verdict == "rejected"
    assert "invalid access to packet" in program.verifier_log
    assert program.failing_source == "if (tcp->syn && !tcp->ack)"
    assert program.verified_insns is not None


def test_rejection_is_mapped_back_to_the_tlisp_form(shared):
    """Generated C carries `/* file:L:C */` markers on the lines each form
    produced; BTF line info brings the marker into the verifier log."""
    v, index, _, _ = shared
    (program,) = v.objects[index[REJECTED.stem]].programs
    assert program.verdict == "rejected"
    assert "should have been in" in program.verifier_log
    expected_line = next(n for n, line in enumerate(REJECTED.read_text().splitlines(), 1) if "(return verdict)" in line)
    assert program.failing_span == f"{REJECTED.name}:{expected_line}:5"
    assert program.failing_tlisp.strip() == "(return verdict)))"
    assert program.failing_source.startswith("return ")


def test_ring_buffer_and_perf_array_records_are_read_in_order(shared):
    v, index, _, _ = shared
    record = lambda first, length: (0x7A7A7A7A).to_bytes(4, "little") + length.to_bytes(4, "little") + bytes([first, 0, 0, 0])
    expected = [record(0xAB, 20).hex()] * 2 + [record(0xCD, 30).hex()]
    streams = {s.map: s for s in v.events if s.object == index["events"]}
    assert set(streams) == {"ring", "perf"}
    assert streams["ring"].records == expected and streams["ring"].error is None
    # a 12-byte perf record needs no padding (4 + 12 is a multiple of 8)
    assert streams["perf"].records == expected and streams["perf"].lost == 0 and streams["perf"].error is None


def test_nostd_rust_fixture_loads(shared):
    v, index, _, nostd = shared
    if "nostd" not in index:
        pytest.skip(nostd)
    (program,) = v.objects[index["nostd"]].programs
    assert program.program == "pass_all" and program.verdict == "accepted"


def test_cli_test_boots_the_pin_of_the_sources_kernel_line_and_writes_manifest_json_and_junit(tmp_path):
    """`:kernel "6.12.5"` (the docs' example) selects the pinned 6.12 build;
    the manifest's `verification`, --json and --junit are keyed by kernel."""
    source = tmp_path / "drop-syn.tlisp"
    source.write_text((REPO / "examples" / "drop-syn.tlisp").read_text().replace(':kernel "6.1"', ':kernel "6.12.5"'))
    assert ':kernel "6.12.5"' in source.read_text()
    try:
        kernels.resolve("6.12")
    except kernels.PinDropped as err:
        pytest.skip(str(err))
    out, junit = tmp_path / "out", tmp_path / "junit.xml"
    run = subprocess.run([str(REPO / ".venv" / "bin" / "tatara-build"), "test", str(source), "--backend", "c",
                          "-o", str(out), "--json", "--junit", str(junit)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    stored = json.loads((out / "manifest.json").read_text())["verification"]
    assert printed == stored and list(stored) == ["6.12"]
    result = stored["6.12"]
    declared = sum(len(t.cases) for t in load(source).tests)
    assert result["verified"] and result["passed"] and len(result["cases"]) == declared >= 11
    assert result["kernel"]["version"] == kernels.KERNELS["6.12"].version
    assert 'name="kernel 6.12"' in junit.read_text() and 'failures="0"' in junit.read_text()


def test_cli_exits_4_when_a_case_fails(tmp_path):
    source = (REPO / "examples" / "drop-syn.tlisp").read_text()
    wrong = tmp_path / "wrong.tlisp"
    wrong.write_text(source.replace("(tcp :flags (syn ack)))        :expect :xdp-pass",
                                    "(tcp :flags (syn ack)))        :expect :xdp-drop"))
    assert wrong.read_text() != source
    run = subprocess.run([str(REPO / ".venv" / "bin" / "tatara-build"), "test", str(wrong), "--backend", "c",
                          "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 4, run.stderr
    assert "syn-ack: expected xdp-drop, got 2" in run.stderr


def test_timeout_kills_qemu_and_leaves_nothing(tmp_path, monkeypatch):
    kernel = kernels.resolve("6.1")
    initrd = initramfs.write_initrd([("init", 0o100755, b"#!/bin/busybox sh\n/bin/busybox sleep 600\n")],
                                    tmp_path / "sleepy.img")
    started = []
    real_popen = qemu.subprocess.Popen

    def recording_popen(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(qemu.subprocess, "Popen", recording_popen)
    with pytest.raises(VmError, match="VM timed out") as err:
        qemu.boot(kernel.image, initrd, timeout=6, accel="tcg")
    assert err.value.exit_code == 5
    (proc,) = started
    assert proc.returncode is not None  # reaped
    assert not Path(f"/proc/{proc.pid}").exists()
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, str(initrd))]
    assert leftovers == []


def _cmdline_has(proc_dir: Path, needle: str) -> bool:
    try:
        return needle in (proc_dir / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def test_cli_verify_shows_the_verifier_log_and_records_the_verdict(tmp_path):
    from tatara_build.compile import BuildOptions
    from tatara_build.pipeline import build

    out = tmp_path / "out"
    build(REPO / "examples" / "drop-syn.tlisp", out, BuildOptions(backend="c", use_cache=False))
    unsafe = clang_bpf(UNSAFE, tmp_path / "unsafe.o")
    run = subprocess.run([str(REPO / ".venv" / "bin" / "tatara-build"), "verify", str(out / "drop-syn.o"), str(unsafe)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 4, run.stderr
    assert "verifier log of unsafe_read" in run.stderr and "invalid access to packet" in run.stderr
    assert "unsafe_read: rejected" in run.stderr
    stored = json.loads((out / "manifest.json").read_text())["verification"]["6.1"]
    assert stored["passed"] and [Path(o["path"]).name for o in stored["objects"]] == ["drop-syn.o"]
    assert stored["objects"][0]["programs"][0]["verdict"] == "accepted"


def test_a_guest_that_dies_early_is_a_vm_failure(tmp_path, monkeypatch):
    kernel = kernels.resolve("6.1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # keep the broken base out of the real cache
    monkeypatch.setattr(initramfs, "INIT_SCRIPT", "#!/bin/busybox sh\necho @@TATARA-READY\nexit 0\n")
    obj = clang_bpf(UNSAFE, tmp_path / "unsafe.o")
    with pytest.raises(VmError, match="stopped before finishing its plan") as err:
        runner.run([runner.ObjectJob(obj)], kernel, timeout=120, accel="tcg")
    assert err.value.exit_code == 5 and "Kernel panic" in str(err.value)


def test_drop_syn_and_helper_read_kinds_on_the_6_12_kernel(tmp_path):
    """The second pinned kernel (trixie; Debian drops superseded
    security builds, so a vanished pin is a skip with the reason, not a pass):
    drop-syn, and the kinds that read headers through helpers (cgroup-skb's
    test-run has no packet pointers on 6.12 either), in one boot."""
    from tatara_build.compile import BuildOptions
    from tatara_build.pipeline import build
    from tatara_build.check import check
    from tatara_build.frontend import load

    try:
        kernel = kernels.resolve("6.12")
    except ToolchainError as err:
        pytest.skip(f"6.12 pin not downloadable here: {err}")
    objects, case_jobs, map_jobs = [], [], []
    for source in [REPO / "examples" / "drop-syn.tlisp", *HELPER_READ_KINDS]:
        out = tmp_path / source.stem
        manifest = build(source, out, BuildOptions(backend="c", use_cache=False))
        o, c, m = cases.jobs(check(load(source)), out, manifest, object_index=len(objects))
        objects, case_jobs, map_jobs = objects + o, case_jobs + c, map_jobs + m
    v = runner.run(objects, kernel, case_jobs, map_jobs)
    assert v.kernel.version == kernels.KERNELS["6.12"].version
    assert len(v.cases) == len(case_jobs) and not any(c.skipped for c in v.cases)
    assert v.passed, [c for c in v.cases if not c.passed]

"""The guest's own libbpf tool (vm/tool.py, vm/tool/tatara-guest.c): built
static and reproducibly, cached by content and checked, refused with exit 3
and what to install when the toolchain is missing; and run for real on the
host kernel in a private bpffs (nothing attached): load with pins, a
rejection with its full log, and ring buffer / perf-event array readers."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from tatara_build.errors import ExitCode, ToolchainError
from tatara_build.vm import results, tool

REPO = Path(__file__).resolve().parents[2]
UNSAFE = REPO / "tests" / "fixtures" / "unsafe" / "unsafe-read.bpf.c"
EVENTS = REPO / "tests" / "vm" / "fixtures" / "events.bpf.c"
TOO_COMPLEX = REPO / "tests" / "vm" / "fixtures" / "too-complex.bpf.c"
MULTI_PROGRAM = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u64); __uint(max_entries, 1); } counts SEC(".maps");
static __attribute__((noinline)) int helper(int x) { return x + 1; }
SEC("xdp") int first(struct xdp_md *ctx) { __u32 k = 0; __u64 *v = bpf_map_lookup_elem(&counts, &k); if (v) (*v)++; return helper(1); }
SEC("tc") int second(struct __sk_buff *skb) { return helper(skb->len & 1); }
SEC("xdp") int third(struct xdp_md *ctx) { void *d = (void *)(long)ctx->data; if (d + 1 > (void *)(long)ctx->data_end) return 1; return *(__u8 *)d & 1; }
char LICENSE[] SEC("license") = "GPL";
"""

def _has_interpreter(elf: bytes) -> bool:
    """Does this ELF64 name a dynamic loader (a PT_INTERP program header)?"""
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    return any(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] == 3 for i in range(phnum))


needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed to build the guest tool")


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tool.binary.cache_clear()
    yield tmp_path / "cache"
    tool.binary.cache_clear()


@needs_gcc
def test_the_tool_is_static_and_the_same_bytes_from_any_directory(own_cache):
    first = tool._compile()
    assert first == tool._compile()
    assert first[:4] == b"\x7fELF"
    assert not _has_interpreter(first)  # static: the guest has no libc
    assert b"/tmp/" not in first and str(REPO).encode() not in first


@needs_gcc
def test_a_damaged_cached_tool_is_rebuilt_not_booted(own_cache):
    built = tool.binary()
    (cached,) = (own_cache / "tatara-build" / "guest-tool").glob("tatara-guest-*[!6]")
    cached.write_bytes(built[:1000])
    tool.binary.cache_clear()
    assert tool.binary() == built and cached.read_bytes() == built


def test_without_gcc_the_tool_is_a_toolchain_error_naming_the_packages(monkeypatch, own_cache):
    monkeypatch.setattr(tool.shutil, "which", lambda name: None)
    with pytest.raises(ToolchainError) as err:
        tool.binary()
    assert err.value.exit_code == ExitCode.TOOLCHAIN
    assert "gcc not found" in str(err.value) and "libbpf-dev" in str(err.value)


@needs_gcc
def test_a_missing_static_library_names_its_package(monkeypatch, own_cache):
    monkeypatch.setitem(tool.LIBRARIES, "libtatara-nope.a", "tatara-nope-dev")
    with pytest.raises(ToolchainError, match=r"missing libtatara-nope\.a \(tatara-nope-dev\)") as err:
        tool.binary()
    assert err.value.exit_code == ExitCode.TOOLCHAIN


def test_event_lines_become_streams_of_the_maps_asked_for():
    output = "\n".join([
        "error: /sys/fs/bpf/1/m/gone: cannot open the pinned map: No such file or directory",
        "Return value: 2, duration: 100ns",
        "EVENT /sys/fs/bpf/0/m/ring 0a0b",
        "EVENT /sys/fs/bpf/0/m/perf 0c0d0e0f",
        "EVENT /sys/fs/bpf/0/m/ring -",
        "EVENT /sys/fs/bpf/0/m/ring 0a0c",
        "EVENT /sys/fs/bpf/2/m/other ff",  # not asked for
        "LOST /sys/fs/bpf/0/m/perf 3",
    ])
    steps = [results.Step("runs", [], output, 0)]
    got = {(s.object, s.map): s for s in results.events(steps, [(0, "ring"), (0, "perf"), (1, "gone")])}
    assert got[(0, "ring")].records == ["0a0b", "", "0a0c"] and got[(0, "ring")].lost == 0
    assert got[(0, "perf")].records == ["0c0d0e0f"] and got[(0, "perf")].lost == 3
    assert got[(1, "gone")].records == [] and "cannot open the pinned map" in got[(1, "gone")].error
    assert len(got) == 3
    (none,) = results.events([], [(0, "ring")])
    assert none.error and none.records == []


# --- the tool on the host kernel --------------------------------------------

def _host_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (loads into a private bpffs; attaches nothing)"
    for name in ("gcc", "clang", "bpftool"):
        if shutil.which(name) is None:
            return f"{name} not installed"
    return None


host = pytest.mark.skipif(_host_reason() is not None, reason=str(_host_reason()))


@pytest.fixture
def bpffs():
    root = Path(tempfile.mkdtemp(prefix="tatara-test-bpffs-"))
    subprocess.run(["mount", "-t", "bpf", "bpf", str(root)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=False)
        root.rmdir()


@pytest.fixture(scope="module")
def guest_tool(tmp_path_factory):
    path = tmp_path_factory.mktemp("tool") / "tatara-guest"
    path.write_bytes(tool.binary())
    path.chmod(0o755)
    return path


def _clang(source: Path, out: Path, *defines: str) -> Path:
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-fno-ident",
                    *defines, "-c", str(source), "-o", str(out)], check=True, capture_output=True)
    return out


@host
def test_load_pins_every_program_and_map_with_statistics_only(guest_tool, bpffs, tmp_path):
    source = tmp_path / "multi.bpf.c"
    source.write_text(MULTI_PROGRAM)
    obj = _clang(source, tmp_path / "multi.o")
    done = subprocess.run([guest_tool, "load", obj, bpffs / "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(results.program_names(done.stdout)) == ["first", "second", "third"]  # `helper` is a subprogram
    logs = results.load_logs(done.stdout)
    assert set(logs) == {"first", "second", "third"} and not any(log.failed for log in logs.values())
    for log in logs.values():
        stats = results.log_stats(log.text)
        assert stats["verified_insns"] > 0 and stats["total_states"] >= 0 and "verification_time_us" in stats
        assert "R1" not in log.text  # no instruction trace: statistics only
    assert sorted(p.name for p in (bpffs / "0" / "p").iterdir()) == ["first", "second", "third"]
    assert "counts" in {p.name for p in (bpffs / "0" / "m").iterdir()}


@host
def test_a_rejected_program_gets_its_full_log_and_nothing_is_pinned(guest_tool, bpffs, tmp_path):
    obj = _clang(UNSAFE, tmp_path / "unsafe.o")
    done = subprocess.run([guest_tool, "load", obj, bpffs / "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    log = results.load_logs(done.stdout)["unsafe_read"]
    assert log.failed and "invalid access to packet" in log.text
    assert results.log_stats(log.text)["verified_insns"] > 0
    assert "if (tcp->syn && !tcp->ack)" in log.text  # the full log has the source lines
    assert not (bpffs / "0").exists()


@host
def test_load_many_frames_each_object_as_a_load_step_of_its_own(guest_tool, bpffs, tmp_path):
    """One guest process for every load (the VM spends no shell, awk or cut
    per object), each object in a child, framed as the guest's steps."""
    source = tmp_path / "multi.bpf.c"
    source.write_text(MULTI_PROGRAM)
    _clang(source, tmp_path / "o0.o")
    _clang(UNSAFE, tmp_path / "o1.o")
    (tmp_path / "loads").write_text("0 o0.o\n1 o1.o\n")
    done = subprocess.run([guest_tool, "load-many", tmp_path / "loads", tmp_path, bpffs], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = results.steps(done.stdout)
    assert [(s.kind, s.args, s.rc) for s in steps] == [("load", ["0", "o0.o"], 0), ("load", ["1", "o1.o"], 1)]
    assert sorted(results.program_names(steps[0].output)) == ["first", "second", "third"]
    assert results.load_logs(steps[1].output)["unsafe_read"].failed
    assert sorted(p.name for p in (bpffs / "0" / "p").iterdir()) == ["first", "second", "third"]
    assert not (bpffs / "1").exists()


@host
def test_a_rejection_after_an_accepted_program_blames_only_the_rejected_one(guest_tool, bpffs, tmp_path):
    source = tmp_path / "reject.bpf.c"
    source.write_text(MULTI_PROGRAM.replace("if (d + 1 > (void *)(long)ctx->data_end) return 1; ", ""))
    obj = _clang(source, tmp_path / "reject.o")
    done = subprocess.run([guest_tool, "load", obj, bpffs / "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    logs = results.load_logs(done.stdout)
    assert logs["third"].failed and "invalid access to packet" in logs["third"].text
    assert "R1" in logs["third"].text  # the full log: the instruction trace
    assert not logs["first"].failed and results.log_stats(logs["first"].text)["verified_insns"] > 0
    assert "second" not in logs  # libbpf stopped at the rejection: never verified
    assert "error: loading" in done.stdout and not (bpffs / "0").exists()


@host
def test_over_the_complexity_limit_is_the_verifiers_own_message_without_a_second_verification(guest_tool, bpffs, tmp_path):
    obj = _clang(TOO_COMPLEX, tmp_path / "big.o")
    done = subprocess.run([guest_tool, "load", obj, bpffs / "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    log = results.load_logs(done.stdout)["too_large"]
    assert log.failed and "BPF program is too large. Processed 1000001 insn" in log.text
    assert results.log_stats(log.text)["verified_insns"] == 1000001
    assert len(log.text.splitlines()) < 10  # statistics only, once


@host
def test_a_rejection_after_many_instructions_keeps_the_message_and_says_why_the_trace_is_left_out(guest_tool, bpffs, tmp_path):
    obj = _clang(TOO_COMPLEX, tmp_path / "late.o", "-DLATE_REJECT")
    done = subprocess.run([guest_tool, "load", obj, bpffs / "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    log = results.load_logs(done.stdout)["late_reject"]
    assert log.failed and "invalid access to packet" in log.text
    assert "the instruction log is left out: the verifier processed" in log.text
    assert results.log_stats(log.text)["verified_insns"] > 20000


@host
def test_run_and_drain_reads_ring_buffer_and_perf_records_and_events_refuses_perf(guest_tool, bpffs, tmp_path):
    obj = _clang(EVENTS, tmp_path / "events.o")
    assert subprocess.run([guest_tool, "load", obj, bpffs / "0"], capture_output=True, timeout=60).returncode == 0
    packet = tmp_path / "p.bin"
    packet.write_bytes(b"\xab" * 20)
    ring, perf = f"{bpffs}/0/m/ring", f"{bpffs}/0/m/perf"
    done = subprocess.run([guest_tool, "run-and-drain", ring, perf, "--", "bpftool", "prog", "run", "pinned",
                           f"{bpffs}/0/p/emit", "data_in", packet, "repeat", "3"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    record = ((0x7A7A7A7A).to_bytes(4, "little") + (20).to_bytes(4, "little") + b"\xab\0\0\0").hex()
    assert lines[0].startswith("Return value: 2")  # the command's output first
    assert lines[-7:] == [f"EVENT {ring} {record}"] * 3 + [f"EVENT {perf} {record}"] * 3 + [f"LOST {perf} 0"]
    # the ring buffer is empty now; a perf array cannot be drained afterwards
    done = subprocess.run([guest_tool, "events", ring, perf], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "use run-and-drain" in done.stdout and "EVENT" not in done.stdout
    # a failing command's exit code is the tool's
    failed = subprocess.run([guest_tool, "run-and-drain", ring, "--", "false"], capture_output=True, timeout=60)
    assert failed.returncode == 1


@host
def test_usage_errors_exit_2(guest_tool):
    for args in ([], ["load", "x"], ["run-and-drain", "m", "--"], ["frobnicate", "a", "b"], ["fw-cfg-wait", "a", "b"], ["load-many", "l"]):
        assert subprocess.run([guest_tool, *args], capture_output=True, timeout=30).returncode == 2, args

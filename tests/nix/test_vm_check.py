"""nix/vm_check.py, the body of the flake's `vm-verifier` NixOS test. The NixOS
driver cannot run here (no nixpkgs), so the same code is driven (a) by a
fake `machine` that answers like bpftool, to check the verdict logic, and
(b) on this host's kernel: the example's C object loaded into a private
bpffs and its packets run with BPF_PROG_TEST_RUN (nothing is attached)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tatara_build import tables
from tatara_build.frontend import load

ROOT = Path(__file__).resolve().parents[2]
DROP_SYN = ROOT / "examples/drop-syn.tlisp"


def _vm_check():
    spec = importlib.util.spec_from_file_location("vm_check", ROOT / "nix/vm_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vm_check = _vm_check()


class FakeMachine:
    """Answers the commands vm_check sends like bpftool would, with every
    test run returning `verdict` and the counter holding `per_cpu`."""

    def __init__(self, verdict: int, per_cpu: list[int], load_ok: bool = True) -> None:
        self.verdict, self.per_cpu, self.load_ok = verdict, per_cpu, load_ok
        self.commands: list[str] = []

    def execute(self, cmd: str) -> tuple[int, str]:
        self.commands.append(cmd)
        if "prog loadall" in cmd:
            return (0, "processed 50 insns") if self.load_ok else (255, "R1 invalid mem access 'scalar'")
        if cmd.startswith("ls -1") and cmd.rstrip("'").endswith("/p"):
            return 0, "drop_syn\n"
        if cmd.startswith("ls -1") and cmd.rstrip("'").endswith("/m"):
            return 0, "syn_drops\n"
        if "prog run pinned" in cmd:
            return 0, f"Return value: {self.verdict}, duration (average): 42ns\n"
        if "map dump pinned" in cmd:
            return 0, json.dumps([{"key": 0, "values": [{"cpu": i, "value": v} for i, v in enumerate(self.per_cpu)]}])
        return 1, f"unexpected command {cmd}"


def _cases():
    module = load(DROP_SYN)
    [test] = module.tests
    return test.cases, test.expect_maps


def test_every_case_is_checked_against_the_kinds_action_values() -> None:
    cases, maps = _cases()
    drop = tables.PROGRAM_KINDS["xdp"].actions["xdp-drop"].value
    expected_drops = sum(c.expect == "xdp-drop" for c in cases)
    [counter] = maps
    machine = FakeMachine(verdict=drop, per_cpu=[counter.value - 1, 1])
    result = vm_check.check_examples(machine, {"drop-syn": {"object": "/o/drop-syn.o", "source": str(DROP_SYN)}})
    # Only the cases expecting a drop pass; each other one is named.
    assert result.passed == expected_drops + 1  # + the per-CPU counter, summed over CPUs
    assert len(result.failures) == len(cases) - expected_drops
    assert all("expected xdp-pass" in f for f in result.failures)
    runs = [c for c in machine.commands if "prog run pinned /sys/fs/bpf/tatara/drop-syn/p/drop_syn" in c]
    assert len(runs) == len(cases)


def test_map_mismatch_and_rejection_are_failures() -> None:
    cases, [counter] = _cases()
    wrong = vm_check.check_examples(FakeMachine(verdict=2, per_cpu=[counter.value + 1]),
                                    {"drop-syn": {"object": "/o/drop-syn.o", "source": str(DROP_SYN)}})
    assert any(f"syn-drops[0] = {counter.value + 1}, expected {counter.value}" in f for f in wrong.failures)
    rejected = vm_check.check_examples(FakeMachine(verdict=2, per_cpu=[0], load_ok=False),
                                       {"drop-syn": {"object": "/o/drop-syn.o", "source": str(DROP_SYN)}})
    assert rejected.passed == 0 and len(rejected.failures) == 1
    assert "verifier rejected" in rejected.failures[0] and "invalid mem access" in rejected.failures[0]


def test_map_entries_without_btf_are_little_endian_bytes() -> None:
    entry = {"key": ["0x00", "0x00", "0x00", "0x00"],
             "values": [{"cpu": 0, "value": ["0x03", "0x01", "0", "0", "0", "0", "0", "0"]},
                        {"cpu": 1, "value": ["0x01", "0", "0", "0", "0", "0", "0", "0"]}]}
    assert vm_check._map_key(entry) == 0
    assert vm_check._map_value(entry) == 0x0103 + 1
    assert vm_check._map_value({"key": 1, "value": 7}) == 7


def test_pinned_names_follow_the_object_symbols() -> None:
    assert vm_check._pinned_name(["drop_syn"], "drop-syn") == "drop_syn"
    assert vm_check._pinned_name(["SYN_DROPS"], "syn-drops") == "SYN_DROPS"
    assert vm_check._pinned_name(["a_very_long_map"], "a-very-long-map-name") == "a_very_long_map"
    assert vm_check._pinned_name(["other"], "drop-syn") is None


class HostMachine:
    """`machine.execute` on this host, as root, in a scratch directory."""

    def execute(self, cmd: str) -> tuple[int, str]:
        ran = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=60)
        return ran.returncode, ran.stdout + ran.stderr


@pytest.mark.slow
def test_drop_syn_c_object_passes_its_packet_tests_on_the_host_kernel(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("bpftool") is None or shutil.which("clang") is None:
        pytest.skip("needs root, bpftool and clang (loads into a private bpffs; attaches nothing)")
    from tatara_build.build import BuildOptions, build

    build(DROP_SYN, tmp_path / "out", BuildOptions(backend="c", use_cache=False))
    bpffs = Path(tempfile.mkdtemp(prefix="tatara-bpffs-"))
    if subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], capture_output=True).returncode != 0:
        bpffs.rmdir()
        pytest.skip("cannot mount a private bpffs here")
    try:
        result = vm_check.check_examples(
            HostMachine(), {"drop-syn": {"object": str(tmp_path / "out/drop-syn.o"), "source": str(DROP_SYN)}},
            bpffs=str(bpffs), scratch=str(tmp_path))
    finally:
        subprocess.run(["umount", str(bpffs)], check=True)  # drops every pin
        bpffs.rmdir()
    cases, maps = _cases()
    assert result.failures == []
    assert result.passed == len(cases) + len(maps)


def test_packet_files_are_written_without_shell_metacharacters() -> None:
    machine = FakeMachine(verdict=1, per_cpu=[4])
    vm_check.check_examples(machine, {"drop-syn": {"object": "/o/drop-syn.o", "source": str(DROP_SYN)}})
    for cmd in machine.commands:
        if cmd.startswith("echo "):
            assert re.fullmatch(r"echo [A-Za-z0-9+/=]+ \| base64 -d > \S+ && bpftool prog run pinned \S+ "
                                r"data_in \S+ repeat \d+ 2>&1", cmd), cmd

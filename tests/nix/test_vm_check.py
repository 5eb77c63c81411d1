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

    def __init__(self, verdict: int, per_cpu: list[int], load_ok: bool = True, insns: int = 50) -> None:
        self.verdict, self.per_cpu, self.load_ok, self.insns = verdict, per_cpu, load_ok, insns
        self.commands: list[str] = []

    def execute(self, cmd: str) -> tuple[int, str]:
        self.commands.append(cmd)
        if "prog loadall" in cmd:
            if not self.load_ok:
                return 255, "libbpf: prog 'drop_syn': failed to load: -13\nR1 invalid mem access 'scalar'"
            return 0, ("libbpf: prog 'drop_syn': -- BEGIN PROG LOAD LOG --\n"
                       f"processed {self.insns} insns (limit 1000000) max_states_per_insn 0 total_states 4 "
                       "peak_states 4 mark_read 1\n-- END PROG LOAD LOG --\n")
        if "prog run pinned" in cmd:
            return 0, f"Return value: {self.verdict}, duration (average): 42ns\n"
        if "map dump pinned" in cmd:
            return 0, json.dumps([{"key": _le(0, 4), "values": [{"cpu": i, "value": _le(v, 8)}
                                                               for i, v in enumerate(self.per_cpu)]}])
        return 1, f"unexpected command {cmd}"


def _le(n: int, size: int) -> list[str]:
    return [f"0x{b:02x}" for b in n.to_bytes(size, "little")]


def _cases():
    module = load(DROP_SYN)
    [test] = module.tests
    return test.cases, test.expect_maps


@pytest.fixture(scope="module")
def drop_syn_out(tmp_path_factory) -> Path:
    """drop-syn built with the C backend: the same layout as the Nix object
    output (drop-syn.o, manifest.json, src/)."""
    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    from tatara_build.compile import BuildOptions
    from tatara_build.pipeline import build

    out = tmp_path_factory.mktemp("drop-syn") / "out"
    build(DROP_SYN, out, BuildOptions(backend="c", use_cache=False))
    return out


def _check(machine, out: Path, **where):
    return vm_check.check_examples(machine, {"drop-syn": {"out": str(out), "source": str(DROP_SYN)}}, **where)


def test_every_case_is_checked_against_the_kinds_action_values(drop_syn_out: Path) -> None:
    cases, maps = _cases()
    drop = tables.PROGRAM_KINDS["xdp"].actions["xdp-drop"].value
    expected_drops = sum(c.expect == "xdp-drop" for c in cases)
    [counter] = maps
    machine = FakeMachine(verdict=drop, per_cpu=[counter.value - 1, 1])
    result = _check(machine, drop_syn_out)
    # Only the cases expecting a drop pass; each other one is named.
    # (+ the load, the insn budget and the per-CPU counter, summed over CPUs)
    assert result.passed == expected_drops + 3
    assert len(result.failures) == len(cases) - expected_drops
    assert all("expected :xdp-pass" in f for f in result.failures)
    runs = [c for c in machine.commands if "prog run pinned /sys/fs/bpf/tatara/drop-syn/p/drop_syn " in c]
    assert len(runs) == len(cases)


def test_map_mismatch_budget_and_rejection_are_failures(drop_syn_out: Path) -> None:
    cases, [counter] = _cases()
    wrong = _check(FakeMachine(verdict=2, per_cpu=[counter.value + 1]), drop_syn_out)
    assert any(f"syn_drops[0] = {counter.value + 1}, expected {counter.value}" in f for f in wrong.failures)
    budget = load(DROP_SYN).programs[0].max_insns
    over = _check(FakeMachine(verdict=2, per_cpu=[counter.value], insns=budget + 1), drop_syn_out)
    assert any(f"verified {budget + 1} insns, budget :max-insns {budget}" in f for f in over.failures)
    rejected = _check(FakeMachine(verdict=2, per_cpu=[0], load_ok=False), drop_syn_out)
    assert rejected.passed == 0 and len(rejected.failures) == 1
    assert "verifier rejected drop-syn.o" in rejected.failures[0]
    assert "invalid mem access" in rejected.failures[0]


def test_packet_files_are_written_without_shell_metacharacters(drop_syn_out: Path) -> None:
    machine = FakeMachine(verdict=1, per_cpu=[4])
    _check(machine, drop_syn_out)
    runs = [cmd for cmd in machine.commands if cmd.startswith("echo ")]
    assert runs
    for cmd in runs:
        assert re.fullmatch(r"echo [A-Za-z0-9+/=]+ \| base64 -d > \S+ && bpftool prog run pinned \S+ "
                            r"data_in \S+ repeat \d+ 2>&1", cmd), cmd


class HostMachine:
    """`machine.execute` on this host, as root, in a scratch directory."""

    def execute(self, cmd: str) -> tuple[int, str]:
        ran = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=60)
        return ran.returncode, ran.stdout + ran.stderr


@pytest.mark.slow
@pytest.mark.parametrize("source", sorted((ROOT / "examples").glob("*.tlisp")), ids=lambda p: p.stem)
def test_every_example_c_object_passes_its_packet_tests_on_the_host_kernel(source: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("bpftool") is None or shutil.which("clang") is None:
        pytest.skip("needs root, clang and bpftool (loads into a private bpffs; attaches nothing)")
    from tatara_build.compile import BuildOptions
    from tatara_build.pipeline import build

    lsms = Path("/sys/kernel/security/lsm")
    if any(p.kind == "lsm" for p in load(source).programs) and (not lsms.is_file() or "bpf" not in lsms.read_text()):
        pytest.skip("this host kernel runs without the bpf LSM: LSM programs do not load here (they do in the VM)")
    build(source, tmp_path / "out", BuildOptions(backend="c", use_cache=False))
    bpffs = Path(tempfile.mkdtemp(prefix="tatara-bpffs-"))
    if subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], capture_output=True).returncode != 0:
        bpffs.rmdir()
        pytest.skip("cannot mount a private bpffs here")
    try:
        result = vm_check.check_examples(HostMachine(), {source.stem: {"out": str(tmp_path / "out"),
                                                                       "source": str(source)}},
                                         bpffs=str(bpffs), scratch=str(tmp_path))
    finally:
        subprocess.run(["umount", str(bpffs)], check=True)  # drops every pin
        bpffs.rmdir()
    module = load(source)
    copies = len({tuple(sorted((c.name, c.value) for c in t.consts)) for t in module.tests if t.consts})
    checks = len(module.programs) + sum(len(t.cases) + len(t.maps_before) for t in module.tests)
    checks += sum(len(t.expect_maps) for t in module.tests if t.trigger is None)  # triggers fire in `test` only
    checks += sum(len(m.programs or []) for m in module.maps)  # prog-array slots filled
    assert result.failures == []
    # per :consts copy of the object (written first): its write, load and a budget per program
    slots = sum(len(m.programs or []) for m in module.maps)
    assert result.passed == 1 + checks + copies * (2 + len(module.programs) + slots)

"""The body of the `vm-verifier` NixOS test (nix/vm-test.nix): on the VM's
pinned kernel, load every example object with bpftool and run the packet
tests declared next to each program, as `tatara-build test` does in its own
QEMU guest. The jobs (ELF symbols, packet bytes, expected action values,
`:max-insns` budgets, map expectations) and the parsing of bpftool's output
are tatara_build's own (vm.cases, vm.results), so the Nix check and the CLI
cannot drift apart; only the transport differs (the NixOS test driver
instead of an initramfs plan).

`machine` is the NixOS test driver's Machine; only `execute(cmd)` ->
(status, output) is used, so tests/nix drives this module with a fake and
on the host kernel."""

from __future__ import annotations

import base64
import shlex
from pathlib import Path

from tatara_build.compile.manifest import Manifest
from tatara_build.frontend import load
from tatara_build.vm import cases, results, runner


class Checker:
    def __init__(self, machine, bpffs: str = "/sys/fs/bpf/tatara", scratch: str = "/tmp") -> None:
        self.machine = machine
        self.bpffs = bpffs
        self.scratch = scratch
        self.packet = f"{scratch}/tatara-packet"
        self.failures: list[str] = []
        self.passed = 0

    def sh(self, cmd: str) -> tuple[int, str]:
        return self.machine.execute(cmd)

    def check(self, ok: bool, failure: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failures.append(failure)

    def example(self, stem: str, out: Path, source: Path) -> None:
        """`out`: the object derivation's output (<stem>.o, manifest.json, src/).
        Tests with `:consts` run on copies of the object with their values
        in .rodata (cases.jobs lists one object per distinct set)."""
        manifest = Manifest.model_validate_json((out / "manifest.json").read_text())
        objects, case_jobs, map_jobs = cases.jobs(load(source), out, manifest)
        for index, obj in enumerate(objects):
            self.object(stem, index, obj, [j for j in case_jobs if j.object_index == index],
                        [j for j in map_jobs if j.object_index == index])

    def object(self, stem: str, index: int, obj: runner.ObjectJob, case_jobs: list, map_jobs: list) -> None:
        pin = f"{self.bpffs}/{stem}" + (f"-{index}" if index else "")
        path = str(obj.path)
        if obj.patches:  # a copy with a test's :consts written into .rodata
            path = f"{self.scratch}/tatara-{stem}-{index}.o"
            data = base64.b64encode(obj.data()).decode()
            status, out = self.sh(f"echo {data} | base64 -d > {shlex.quote(path)}")
            self.check(status == 0, f"{stem}: writing the object with :consts {obj.consts} failed:\n{out[-2000:]}")
        status, log = self.sh(f"mkdir -p {pin} && bpftool -d prog loadall {shlex.quote(path)} "
                              f"{pin}/p pinmaps {pin}/m 2>&1")
        self.check(status == 0, f"{stem}: the verifier rejected {Path(obj.label).name}:\n{log[-4000:]}")
        if status != 0:
            return
        for symbol, load_log in results.load_logs(log).items():
            insns = results.log_stats(load_log.text).get("verified_insns")
            budget = obj.max_insns.get(symbol, obj.default_max_insns)
            self.check(insns is not None and insns <= budget,
                       f"{stem}: {symbol} verified {insns} insns, budget :max-insns {budget}")
        for symbol, key, value in obj.seeds:  # :maps-before, as the VM guest writes them
            status, out = self.sh(f"bpftool map update pinned {pin}/m/{symbol} key hex {' '.join(f'{b:02x}' for b in key)}"
                                  f" value hex {' '.join(f'{b:02x}' for b in value)} 2>&1")
            self.check(status == 0, f"{stem}: writing :maps-before into {symbol} failed:\n{out[-2000:]}")
        for symbol, key, program in obj.slots:  # prog-array :programs, as the VM guest fills them
            status, out = self.sh(f"bpftool map update pinned {pin}/m/{symbol} key hex {' '.join(f'{b:02x}' for b in key)}"
                                  f" value pinned {pin}/p/{program} 2>&1")
            self.check(status == 0, f"{stem}: filling prog-array {symbol} with {program} failed:\n{out[-2000:]}")
        for job in case_jobs:
            self.case(stem, pin, job)
        # A :trigger test's maps fill only when its program is attached and
        # fired, which `tatara-build test` does in its guest; this check loads
        # and test-runs, it attaches nothing.
        triggered = {t.test for t in obj.triggers}
        for job in [j for j in map_jobs if j.test not in triggered]:  # compared as the VM run compares them
            status, dump = self.sh(f"bpftool -j map dump pinned {pin}/m/{job.map} 2>&1")
            step = results.Step("dump", [str(job.object_index), job.map], dump, status)
            (got,) = runner._map_checks([job], [step])
            self.check(got.passed, f"{stem} {job.test}: map {job.map}[{job.key}] = {got.got}, expected {job.value}"
                       + ("" if status == 0 else f"\n{dump[-2000:]}"))

    def case(self, stem: str, pin: str, job: cases.CaseJob) -> None:
        data = base64.b64encode(job.packet).decode()
        status, out = self.sh(f"echo {data} | base64 -d > {self.packet} && "
                              f"bpftool prog run pinned {pin}/p/{job.program} data_in {self.packet} "
                              f"repeat {int(job.repeat)} 2>&1")
        ran = results.prog_run(out) if status == 0 else None
        if ran is None:
            self.check(False, f"{stem} {job.test}/{job.case}: test run failed:\n{out[-2000:]}")
        else:
            self.check(runner._as_signed32(ran[0]) == runner._as_signed32(job.expect_value),
                       f"{stem} {job.test}/{job.case}: returned {ran[0]}, "
                                                   f"expected :{job.expect} ({job.expect_value})")


def check_examples(machine, examples: dict[str, dict[str, str]], **where: str) -> Checker:
    """examples: stem -> {"out": the object's output dir, "source": its .tlisp};
    `where`: the Checker's bpffs / scratch directories."""
    checker = Checker(machine, **where)
    for stem, paths in sorted(examples.items()):
        checker.example(stem, Path(paths["out"]), Path(paths["source"]))
    return checker

"""The body of the `vm-verifier` NixOS test (nix/vm-test.nix): on the VM's
pinned kernel, load every example object with bpftool and run the packet
tests declared next to each program, as `tatara-build test` does in its own
QEMU guest. Expected actions, map values and packet bytes come from
tatara_build itself (frontend, tables, packets), so the Nix check and the
CLI cannot drift apart.

`machine` is the NixOS test driver's Machine; only `execute(cmd)` ->
(status, output) is used, so tests/nix drives this module with a fake."""

from __future__ import annotations

import base64
import json
import re
import shlex
from pathlib import Path

from tatara_build import packets, tables
from tatara_build.frontend import load

RETURN_VALUE = re.compile(r"Return value: (\d+)")


def _pinned_name(pins: list[str], name: str) -> str | None:
    """bpftool pins programs and maps by their object names: `drop_syn`
    (C) or `SYN_DROPS` (aya statics) for `drop-syn` / `syn-drops`."""
    want = name.replace("-", "_").lower()
    matches = [p for p in pins if p.lower() == want or p.lower() == want[:15]]
    return matches[0] if matches else None


def _map_value(entry: dict) -> int:
    """One entry of `bpftool -j map dump`: BTF-formatted ints, or hex byte
    lists (little endian) without BTF; per-CPU maps summed over CPUs."""

    def as_int(v) -> int:
        return v if isinstance(v, int) else int.from_bytes(bytes(int(b, 16) for b in v), "little")

    if "values" in entry:
        return sum(as_int(v["value"]) for v in entry["values"])
    return as_int(entry["value"])


def _map_key(entry: dict) -> int:
    key = entry["key"]
    return key if isinstance(key, int) else int.from_bytes(bytes(int(b, 16) for b in key), "little")


class Checker:
    def __init__(self, machine, bpffs: str = "/sys/fs/bpf/tatara", scratch: str = "/tmp") -> None:
        self.machine = machine
        self.bpffs = bpffs
        self.packet = f"{scratch}/tatara-packet"
        self.failures: list[str] = []
        self.passed = 0

    def sh(self, cmd: str) -> tuple[int, str]:
        return self.machine.execute(cmd)

    def fail(self, what: str) -> None:
        self.failures.append(what)

    def ls(self, path: str) -> list[str]:
        status, out = self.sh(f"ls -1 {shlex.quote(path)}")
        return out.split() if status == 0 else []

    def example(self, stem: str, obj: str, source: str) -> None:
        module = load(Path(source))
        pin = f"{self.bpffs}/{stem}"
        status, log = self.sh(
            f"mkdir -p {pin} && bpftool -d prog loadall {shlex.quote(obj)} {pin}/p pinmaps {pin}/m 2>&1"
        )
        if status != 0:
            self.fail(f"{stem}: the verifier rejected {obj}:\n{log[-4000:]}")
            return
        progs, maps = self.ls(f"{pin}/p"), self.ls(f"{pin}/m")
        kinds = {p.name: p.kind for p in module.programs}
        for name in kinds:
            if _pinned_name(progs, name) is None:
                self.fail(f"{stem}: program {name} not loaded (pinned: {progs})")
        for test in module.tests:
            kind = tables.PROGRAM_KINDS[kinds[test.program]]
            prog = _pinned_name(progs, test.program)
            if prog is None or not kind.test_run:
                continue
            for case in test.cases:
                self.case(stem, f"{pin}/p/{prog}", kind, test.name, case)
            for expect in test.expect_maps:
                self.map_expect(stem, f"{pin}/m", maps, expect)

    def case(self, stem: str, prog: str, kind, test: str, case) -> None:
        data = base64.b64encode(packets.build_case(case)).decode()
        status, out = self.sh(
            f"echo {data} | base64 -d > {self.packet} && "
            f"bpftool prog run pinned {prog} data_in {self.packet} repeat {int(case.repeat)} 2>&1"
        )
        got = RETURN_VALUE.search(out)
        want = kind.actions[case.expect].value
        if status != 0 or got is None:
            self.fail(f"{stem} {test}/{case.name}: test run failed:\n{out[-2000:]}")
        elif int(got.group(1)) != want:
            self.fail(f"{stem} {test}/{case.name}: returned {got.group(1)}, expected {case.expect} ({want})")
        else:
            self.passed += 1

    def map_expect(self, stem: str, dir: str, maps: list[str], expect) -> None:
        pinned = _pinned_name(maps, expect.map)
        status, out = self.sh(f"bpftool -j map dump pinned {dir}/{pinned}") if pinned else (1, f"no map {expect.map} in {maps}")
        if status != 0:
            self.fail(f"{stem}: map {expect.map}: {out[-2000:]}")
            return
        values = {_map_key(e): _map_value(e) for e in json.loads(out)}
        if values.get(expect.key) != expect.value:
            self.fail(f"{stem}: map {expect.map}[{expect.key}] = {values.get(expect.key)}, expected {expect.value}")
        else:
            self.passed += 1


def check_examples(machine, examples: dict[str, dict[str, str]], **where: str) -> Checker:
    """examples: stem -> {"object": path of <stem>.o, "source": path of <stem>.tlisp};
    `where`: Checker's bpffs / scratch directories."""
    checker = Checker(machine, **where)
    for stem, paths in sorted(examples.items()):
        checker.example(stem, paths["object"], paths["source"])
    return checker

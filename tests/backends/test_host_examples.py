"""Every example's object loads on the host kernel (private bpffs, never
attached) and its `defbpf-test` packets give the expected actions and map
contents, in the C backend and, with TATARA_VENDOR_DIR, the aya backend.
The C object is built by every cell of the compiler matrix (clang 14 and 22,
-mcpu v2/v3/v4, tests/backends/compilers.py): a cell the verifier rejects or
whose packets fail, fails. The VM stage does the same on the target kernels
with the default build; this is the quick check."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from tatara_build import eventdata, mapdata, packets, structs, tables
from tatara_build.backends import emit
from tatara_build.backends.base import snake

from . import hostbpf
from .compilers import Cell, cells, fetch_atomics, require
from .helpers import EXAMPLES, FIXTURES, ids, load

# Kinds whose load needs an attach point resolved against the host's BTF or
# a specific attach type bpftool cannot infer; they are compile-only here.
LOADABLE = {"xdp", "tc", "socket-filter", "kprobe", "tracepoint", "cgroup-skb", "perf-event"}


def c_object(module, tmp: Path, cell: Cell) -> Path:
    [c_file] = emit(module, "c", tmp)
    return cell.compile(c_file, tmp / f"{c_file.name.removesuffix('.bpf.c')}.o")


def aya_object(module, tmp: Path, stem: str) -> Path:
    from tatara_build.compile import BuildOptions, compile_generated

    emit(module, "aya", tmp / "crate")
    compile_generated(tmp / "crate", stem, tmp / "out",
                    BuildOptions(backend="aya", vendor_dir=Path(os.environ["TATARA_VENDOR_DIR"])))
    return tmp / "out" / f"{stem}.o"


def run_tests(module, obj: Path) -> None:
    """Every test of the module, as the VM runs them: tests with the same
    `:consts` share one object (the first group the object as built), each
    other set a copy with those values written into its .rodata."""
    from tatara_build.compile import describe
    from tatara_build.vm.cases import const_patches

    info = {c.name: c for c in describe(obj, module).consts}
    groups: dict[tuple, list] = {(): []}
    for test in module.tests:
        if test.trigger is not None:  # attaches a probe: done only inside the VM (tests/vm/test_triggers.py)
            continue
        groups.setdefault(tuple(sorted((c.name, c.value) for c in test.consts)), []).append(test)
    failures = []
    for n, (key, tests) in enumerate(groups.items()):
        target = obj
        if key:
            data = bytearray(obj.read_bytes())
            for offset, value in const_patches(bytes(data), info, tests[0]):
                data[offset:offset + len(value)] = value
            target = obj.with_name(f"{obj.stem}-consts{n}.o")
            target.write_bytes(bytes(data))
        failures += run_group(module, target, tests)
    assert not failures, "\n".join(failures)


def run_group(module, obj: Path, tests: list) -> list[str]:
    layouts = structs.layouts(module.structs)
    failures = []
    with hostbpf.loaded(obj) as (root, insns):
        assert insns, "the verifier reported no processed instructions"
        for decl_map in module.maps:  # prog-array slots, as the VM fills them
            for slot in decl_map.programs or []:
                hostbpf.slot_update(root, snake(decl_map.name), decl_map, slot.index, snake(slot.program))
        for test in tests:  # :maps-before, before any case (as in the VM)
            for seed in test.maps_before:
                decl_map = next(m for m in module.maps if m.name == seed.map)
                hostbpf.map_update(root, snake(seed.map), decl_map, seed.key, seed.value, layouts)
        for test in tests:
            decl = next(p for p in module.programs if p.name == test.program)
            kind = tables.PROGRAM_KINDS[decl.kind]
            with read_events(module, test, root) as events:
                for case in test.cases:
                    got, left = hostbpf.run_out(root, snake(test.program), packets.build_case(case), case.repeat)
                    want = kind.actions[case.expect].value & 0xFFFFFFFF
                    if got != want:
                        failures.append(f"{test.name}/{case.name}: got {got}, expected {want} (:{case.expect})")
                    expected = packets.expected_packet(case)
                    if expected is not None and left != expected:
                        failures.append(f"{test.name}/{case.name}: packet differs from :expect-packet: "
                                        f"{packets.describe_diff(expected, left)}")
            for name, (record_type, expected) in events.items():
                for line in eventdata.diff(record_type, expected, events.got[name], structs.layouts(module.structs)):
                    failures.append(f"{test.name}: events of {name}: {line}")
            for expect in test.expect_maps:
                decl_map = next(m for m in module.maps if m.name == expect.map)
                got = hostbpf.map_value(root, snake(expect.map), decl_map, expect.key, layouts)
                if not mapdata.matches(decl_map, expect.value, got, layouts):
                    failures.append(f"{test.name}: {expect.map}[{mapdata.show_key(expect.key)}] = "
                                    f"{mapdata.show_value(decl_map, got, layouts)}, "
                                    f"expected {mapdata.show_value(decl_map, expect.value, layouts)}")
    return failures


class Events(dict):
    """map -> (record type, expected values) of one test; `got` after its cases."""

    got: dict[str, list[bytes]]


@contextlib.contextmanager
def read_events(module, test, root: Path):
    """Read the events of one test's cases as the VM does: ring buffers
    drained before (records of earlier tests dropped) and after, perf
    arrays read by a reader open while the cases run."""
    from tatara_build.check.events import event_sends, event_types

    sends, records = event_sends(module), event_types(module)
    listed = [e.map for e in test.expect_events or []]
    if test.expect_events == []:
        listed = [m for m, uses in sends.items() if any(p == test.program for p, _, _ in uses)]
    events = Events({m: (records[m], [e.value for e in test.expect_events if e.map == m])
                     for m in dict.fromkeys(listed)})
    events.got = {}
    decls = {m.name: m for m in module.maps}
    rings = [m for m in events if decls[m].kind == "ring-buf"]
    for m in rings:
        hostbpf.ringbuf_records(root, snake(m), decls[m].max_entries)
    with contextlib.ExitStack() as stack:
        perf = {m: stack.enter_context(hostbpf.perf_events(root, snake(m))) for m in events if m not in rings}
        yield events
    events.got.update(perf)
    for m in rings:
        events.got[m] = hostbpf.ringbuf_records(root, snake(m), decls[m].max_entries)


def loadable(path: Path) -> bool:
    return all(p.kind in LOADABLE for p in load(path).programs)


HOST = hostbpf.available()
LOAD_SOURCES = [p for p in EXAMPLES + FIXTURES if loadable(p)]


COMPILE_ONLY = [p for p in EXAMPLES + FIXTURES if not loadable(p)]


@pytest.mark.skipif(HOST is not None, reason=str(HOST))
@pytest.mark.parametrize("cell", cells(), ids=lambda c: c.id)
@pytest.mark.parametrize("source", LOAD_SOURCES, ids=ids(LOAD_SOURCES))
def test_c_object_loads_and_passes_its_packets(source, cell, tmp_path):
    require(cell)
    module = load(source)
    obj = c_object(module, tmp_path, cell)
    assert not fetch_atomics(obj), f"{cell.id} emits atomics kernels before 5.12 reject: {fetch_atomics(obj)}"
    run_tests(module, obj)


@pytest.mark.parametrize("cell", cells(), ids=lambda c: c.id)
@pytest.mark.parametrize("source", COMPILE_ONLY, ids=ids(COMPILE_ONLY))
def test_c_object_of_a_kind_the_host_cannot_load_compiles(source, cell, tmp_path):
    require(cell)
    obj = c_object(load(source), tmp_path, cell)
    assert obj.stat().st_size > 0 and not fetch_atomics(obj)


@pytest.mark.slow
@pytest.mark.skipif(HOST is not None or "TATARA_VENDOR_DIR" not in os.environ,
                    reason="needs root, bpftool and TATARA_VENDOR_DIR (aya's crates)")
@pytest.mark.parametrize("source", LOAD_SOURCES, ids=ids(LOAD_SOURCES))
def test_aya_object_loads_and_passes_its_packets(source, tmp_path):
    module = load(source)
    run_tests(module, aya_object(module, tmp_path, source.stem))

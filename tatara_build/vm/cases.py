"""From a checked module and its build output to VM jobs: the object with
each program's `:max-insns`, the `defbpf-test` cases as packets with the
action's numeric value, and the map expectations, all named by the ELF
symbols the build recorded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import ir, mapdata, packets, structs, tables
from ..frontend import names
from ..backends import dialects
from ..compile.manifest import Manifest, ObjectInfo
from ..errors import SourceError
from .runner import CaseJob, EventJob, MapJob, ObjectJob, TriggerJob

GENERATED_SUFFIXES = tuple(d.source_suffix for d in dialects().values())  # what the verifier's line info names


def jobs(module: ir.Module, out: Path, manifest: Manifest, object_index: int = 0,
         ) -> tuple[list[ObjectJob], list[CaseJob], list[MapJob]]:
    """`object_index`: where this object will sit among all objects of the boot.
    The module is checked: what the checker validated is asserted here."""
    objs = _object_jobs(module, out, manifest)
    layouts = structs.layouts(module.structs)
    _seed(module, objs, layouts)
    _expect_events(_typed(module), objs, layouts)
    cases: list[CaseJob] = []
    maps: list[MapJob] = []
    programs = {p.name: p for p in module.programs}
    for test in module.tests:
        program = programs.get(test.program)
        assert program is not None, "the checker names a test's unknown program"
        index = object_index + objs.group_of[test.name]
        if test.trigger is not None:
            objs.of(test).triggers.append(trigger_job(test, program, objs.symbols))
        cases += _case_jobs(module, test, program, index, objs.symbol(program.name))
        maps += _map_jobs(module, test, index, objs.manifest_object, layouts)
    return objs.jobs, cases, maps


@dataclass
class _Objects:
    """The object jobs of one source: the object as built, then a patched
    copy per other set of test `:consts` (tests with the same set share one)."""

    manifest_object: ObjectInfo
    symbols: dict[str, str]  # program name -> ELF symbol, as the build recorded
    jobs: list[ObjectJob]
    group_of: dict[str, int]  # test name -> index in jobs

    def of(self, test: ir.TestDecl) -> ObjectJob:
        return self.jobs[self.group_of[test.name]]

    def symbol(self, program: str) -> str:
        return self.symbols.get(program, names.symbol(program))


def _object_jobs(module: ir.Module, out: Path, manifest: Manifest) -> _Objects:
    obj = manifest.objects[0]  # one object per source file
    objs = _Objects(obj, {p.name: p.symbol for p in obj.programs if p.name}, [], {})
    generated = sorted(p for p in (out / "src").rglob("*") if p.suffix in GENERATED_SUFFIXES and "target" not in p.parts)
    budgets = {objs.symbol(p.name): p.max_insns or tables.DEFAULT_MAX_INSNS for p in module.programs}
    targets = {objs.symbol(p.name): (p.kind, p.attach.target) for p in module.programs
               if p.attach is not None and p.attach.target is not None}
    job = lambda: ObjectJob(out / obj.file, budgets, tables.DEFAULT_MAX_INSNS, generated, Path(module.file), targets)  # noqa: E731
    objs.jobs.append(job())
    groups: dict[tuple, int] = {(): 0}
    const_info = {c.name: c for c in obj.consts}
    for test in module.tests:
        key = tuple(sorted((c.name, c.value) for c in test.consts))
        if key not in groups:
            groups[key] = len(objs.jobs)
            copy = job()
            copy.consts = dict(key)
            copy.patches = const_patches((out / obj.file).read_bytes(), const_info, test)
            objs.jobs.append(copy)
        objs.group_of[test.name] = groups[key]
    return objs


def _seed(module: ir.Module, objs: _Objects, layouts: dict) -> None:
    """Map entries written before the cases: prog-array slots (in every copy
    of the object) and each test's :maps-before (in its own)."""
    for decl in module.maps:
        for slot in decl.programs or []:
            for job in objs.jobs:
                job.slots.append((names.symbol(decl.name), mapdata.key_bytes(decl, slot.index), objs.symbol(slot.program)))
    map_decls = {m.name: m for m in module.maps}
    for test in module.tests:
        for seed in test.maps_before:
            decl = map_decls[seed.map]
            objs.of(test).seeds.append((_map_symbol(seed, objs.manifest_object), mapdata.key_bytes(decl, seed.key, layouts),
                                        mapdata.value_bytes(decl, seed.value, layouts)))


def _typed(module: ir.Module) -> ir.Module:
    """Record types come from the typed bodies: type a module loaded unchecked."""
    if any(t.expect_events is not None for t in module.tests) and any(
            isinstance(n, ir.EventOutput) and n.type is None for f in [*module.functions, *module.funcs]
            for n in ir.walk(f.body)):
        from ..check import check

        return check(module.model_copy(deep=True))
    return module


def _expect_events(module: ir.Module, objs: _Objects, layouts: dict) -> None:
    """Each test's :expect-events, and the event maps its object reads."""
    from ..check.events import event_sends, event_types

    sends = event_sends(module)
    records = event_types(module)
    for test in module.tests:
        assert all(e.map in records for e in test.expect_events or []), "the checker finds who sends each event"
        listed = dict.fromkeys(e.map for e in test.expect_events or [])
        if test.expect_events == []:  # `()`: none of the program's event maps gets a record
            listed = dict.fromkeys(m for m, uses in sends.items() if any(p == test.program for p, _, _ in uses))
        job = objs.of(test)
        for name in listed:
            values = [e.value for e in test.expect_events if e.map == name]
            job.expect_events.append(EventJob(test.name, names.symbol(name), name, records[name], values, layouts))
            if names.symbol(name) not in job.events:
                job.events.append(names.symbol(name))


def _case_jobs(module: ir.Module, test: ir.TestDecl, program: ir.ProgramDecl, index: int, symbol: str) -> list[CaseJob]:
    kind = tables.PROGRAM_KINDS[program.kind]
    assert test.trigger is not None or kind.test_run, "the checker refuses packet tests of kinds test-run cannot run"
    # Direct packet access only: helper reads need no test-run packet pointers.
    body = next((f.body for f in module.functions if f.name == program.name), [])
    reads_packet = kind.packet_read is None and _reads_packet(body)
    out = []
    for case in test.cases:
        action = kind.actions.get(case.expect)
        assert action is not None, "the checker holds :expect to the kind's actions"
        out.append(CaseJob(index, test.name, case.name, symbol, packets.build_case(case), case.expect, action.value,
                           case.repeat, program.kind, reads_packet, packets.expected_packet(case)))
    return out


def _map_jobs(module: ir.Module, test: ir.TestDecl, index: int, obj: ObjectInfo, layouts: dict) -> list[MapJob]:
    map_decls = {m.name: m for m in module.maps}
    out = []
    for expect in test.expect_maps:
        decl = map_decls[expect.map]
        is_struct = structs.struct_name(decl.value) is not None
        out.append(MapJob(index, test.name, _map_symbol(expect, obj), expect.key, expect.value, expect.map,
                          key_bytes=mapdata.key_bytes(decl, expect.key, layouts), lpm=mapdata.is_lpm(decl),
                          value_type=None if is_struct else decl.value,
                          decl=decl if is_struct else None, layouts=layouts if is_struct else None))
    return out


def trigger_job(test: ir.TestDecl, program: ir.ProgramDecl, symbols: dict[str, str]) -> TriggerJob:
    """A `:trigger` test: the program to attach and the guest tool's words."""
    words: list[str] = []
    for t in test.trigger or []:
        words += ["open", t.path, str(t.flags)] if t.action == "open" else ["connect", str(t.port)]
    return TriggerJob(test.name, symbols.get(program.name, names.symbol(program.name)), program.kind,
                      program.attach.target, words, len(test.trigger or []))


def const_bytes(t: str, value: int) -> bytes:
    """A const's value as the object stores it: little-endian (BPF is
    little-endian here), two's complement; bool is one byte."""
    if t == "bool":
        return bytes([1 if value else 0])
    info = tables.INT_TYPES[t]
    return (value & ((1 << info.bits) - 1)).to_bytes(info.bits // 8, "little")


def const_patches(data: bytes, consts: dict, test: ir.TestDecl) -> list[tuple[int, bytes]]:
    """(file offset, bytes) that set a test's `:consts` in the object's
    data, at the offsets the manifest recorded from its symbol table."""
    from ..compile import elf

    out = []
    for item in test.consts:
        info = consts.get(item.name)
        if info is None or info.symbol is None or info.offset is None:
            raise SourceError(f"test {test.name}: const {item.name} is not in the object (the manifest lists "
                              f"{', '.join(c for c in consts) or 'no consts'}); rebuild it", item.span)
        start, size = elf.section_range(data, info.section)
        value = const_bytes(info.type, item.value)
        if info.size != len(value) or info.offset + len(value) > size:
            raise SourceError(f"test {test.name}: const {item.name} is {info.size} bytes at {info.section}+"
                              f"{info.offset} in the object, not a {info.type}; rebuild it", item.span)
        out.append((start + info.offset, value))
    return out


def _reads_packet(value) -> bool:
    """Does this IR contain a `header` parse (direct packet access)?"""
    if isinstance(value, ir.Header):
        return True
    if isinstance(value, list):
        return any(_reads_packet(v) for v in value)
    if isinstance(value, ir.Node):
        return any(_reads_packet(getattr(value, name)) for name in type(value).model_fields)
    return False



def _map_symbol(expect: ir.MapExpect, obj: ObjectInfo) -> str:
    symbol = names.symbol(expect.map)
    if obj.maps and symbol not in obj.maps:
        raise SourceError(f"map {expect.map} is not in {obj.file} (it has: {', '.join(obj.maps)})", expect.span)
    return symbol

"""From a checked module and its build output to VM jobs: the object with
each program's `:max-insns`, the `defbpf-test` cases as packets with the
action's numeric value, and the map expectations, all named by the ELF
symbols the build recorded."""

from __future__ import annotations

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
    """`object_index`: where this object will sit among all objects of the boot."""
    obj = manifest.objects[0]  # one object per source file
    programs = {p.name: p for p in module.programs}
    map_decls = {m.name: m for m in module.maps}
    bodies = {f.name: f.body for f in module.functions}
    symbols = {p.name: p.symbol for p in obj.programs if p.name}
    generated = sorted(p for p in (out / "src").rglob("*") if p.suffix in GENERATED_SUFFIXES and "target" not in p.parts)
    budgets = {
        symbols.get(p.name, names.symbol(p.name)): p.max_insns or tables.DEFAULT_MAX_INSNS for p in module.programs
    }
    targets = {symbols.get(p.name, names.symbol(p.name)): (p.kind, p.attach.target) for p in module.programs
               if p.attach is not None and p.attach.target is not None}
    base = ObjectJob(out / obj.file, budgets, tables.DEFAULT_MAX_INSNS, generated, Path(module.file), targets)
    # Tests with the same `:consts` share one object; the first is the object
    # as built (the defaults), each other set a patched copy with maps of its own.
    groups: dict[tuple, int] = {(): 0}
    objects = [base]
    group_of: dict[str, int] = {}
    const_info = {c.name: c for c in obj.consts}
    for test in module.tests:
        key = tuple(sorted((c.name, c.value) for c in test.consts))
        if key not in groups:
            groups[key] = len(objects)
            copy = ObjectJob(base.path, budgets, tables.DEFAULT_MAX_INSNS, generated, Path(module.file), targets)
            copy.consts = dict(key)
            copy.patches = const_patches((out / obj.file).read_bytes(), const_info, test)
            objects.append(copy)
        group_of[test.name] = groups[key]
    cases: list[CaseJob] = []
    maps: list[MapJob] = []
    for decl in module.maps:  # prog-array slots: filled with the seeds, in every copy of the object
        for slot in decl.programs or []:
            for job in objects:
                job.slots.append((names.symbol(decl.name), mapdata.key_bytes(decl, slot.index),
                                  symbols.get(slot.program, names.symbol(slot.program))))
    layouts = structs.layouts(module.structs)
    for test in module.tests:
        for seed in test.maps_before:
            decl = map_decls[seed.map]
            objects[group_of[test.name]].seeds.append((_map_symbol(seed, obj), mapdata.key_bytes(decl, seed.key, layouts),
                                                       mapdata.value_bytes(decl, seed.value, layouts)))
    from ..check.events import event_sends, event_types

    if any(t.expect_events is not None for t in module.tests) and any(
            isinstance(n, ir.EventOutput) and n.type is None for f in [*module.functions, *module.funcs]
            for n in ir.walk(f.body)):
        from ..check import check  # record types come from the typed bodies: type a module loaded unchecked

        module = check(module.model_copy(deep=True))
    sends = event_sends(module)
    records = event_types(module)
    for test in module.tests:
        for expect in test.expect_events or []:
            if expect.map not in records:
                raise SourceError(f"no program sends events to `{expect.map}`", expect.span)
        listed = dict.fromkeys(e.map for e in test.expect_events or [])
        if test.expect_events == []:  # `()`: none of the program's event maps gets a record
            listed = dict.fromkeys(m for m, uses in sends.items() if any(p == test.program for p, _, _ in uses))
        for name in listed:
            values = [e.value for e in test.expect_events if e.map == name]
            objects[group_of[test.name]].expect_events.append(
                EventJob(test.name, names.symbol(name), name, records[name], values, layouts))
            if names.symbol(name) not in objects[group_of[test.name]].events:
                objects[group_of[test.name]].events.append(names.symbol(name))
    for test in module.tests:
        index = object_index + group_of[test.name]
        program = programs.get(test.program)
        if program is None:
            raise SourceError(f"defbpf-test {test.name}: no program named {test.program}", test.span)
        kind = tables.PROGRAM_KINDS[program.kind]
        if test.trigger is not None:
            objects[group_of[test.name]].triggers.append(trigger_job(test, program, symbols))
        elif not kind.test_run:
            raise SourceError(f"{program.kind} programs cannot be run with packets (BPF_PROG_TEST_RUN)", test.span)
        symbol = symbols.get(program.name, names.symbol(program.name))
        # Direct packet access only: helper reads need no test-run packet pointers.
        reads_packet = kind.packet_read is None and _reads_packet(bodies.get(program.name, []))
        for case in test.cases:
            action = kind.actions.get(case.expect)
            if action is None:
                known = ", ".join(f":{a}" for a in kind.actions)
                raise SourceError(f"unknown action :{case.expect} for {program.kind}; known: {known}", case.span)
            cases.append(CaseJob(index, test.name, case.name, symbol, packets.build_case(case), case.expect,
                                 action.value, case.repeat, program.kind, reads_packet,
                                 packets.expected_packet(case)))
        for expect in test.expect_maps:
            decl = map_decls[expect.map]
            is_struct = structs.struct_name(decl.value) is not None
            maps.append(MapJob(index, test.name, _map_symbol(expect, obj), expect.key, expect.value, expect.map,
                               key_bytes=mapdata.key_bytes(decl, expect.key, layouts), lpm=mapdata.is_lpm(decl),
                               value_type=None if is_struct else decl.value,
                               decl=decl if is_struct else None, layouts=layouts if is_struct else None))
    return objects, cases, maps


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

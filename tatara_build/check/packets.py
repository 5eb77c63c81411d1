"""Checks of `defbpf-test` blocks: program, actions, packet layers and their
field values (tables.PACKET_LAYERS), and expected map contents."""

from __future__ import annotations

import ipaddress
import re

from .. import ir, mapdata, tables
from ..errors import Diagnostic, suggestion

MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")
HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def check_tests(module: ir.Module, programs: dict[str, ir.ProgramDecl], maps: dict[str, ir.MapDecl],
                layouts: dict | None = None) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for test in module.tests:
        program = programs.get(test.program)
        if program is None:
            out.append(Diagnostic(f"test `{test.name}` names unknown program `{test.program}`", test.span))
            continue
        kind = tables.PROGRAM_KINDS[program.kind]
        if test.trigger is not None:
            out += check_trigger(test, program)
            out += check_map_expects(test, program, maps, layouts, programs)
            continue
        if not kind.test_run:
            hint = (['fire it in the VM instead: :trigger ((open "/tmp/x")) or :trigger ((connect 80))']
                    if kind.name in tables.TRIGGER_KINDS else [])
            out.append(Diagnostic(f"{kind.name} programs cannot be run on test packets (BPF_PROG_TEST_RUN)", test.span,
                                  hint))
            continue
        seen: set[str] = set()
        for case in test.cases:
            if case.name in seen:
                out.append(Diagnostic(f"duplicate test case name `{case.name}`", case.span))
            seen.add(case.name)
            out += check_expect(case, kind)
            for layer in case.layers + (case.expect_layers or []):
                out += check_layer(layer)
            out += check_packet_hex(case)
        out += check_map_expects(test, program, maps, layouts, programs)
    return out


def check_trigger(test: ir.TestDecl, program: ir.ProgramDecl) -> list[Diagnostic]:
    """`:trigger` attaches the program in the VM: a kind the guest's tool can
    attach, with its target named."""
    if program.kind not in tables.TRIGGER_KINDS:
        kinds = ", ".join(tables.TRIGGER_KINDS)
        how = (["give it :cases with packets instead"] if tables.PROGRAM_KINDS[program.kind].test_run else [])
        return [Diagnostic(f"`:trigger` fires {kinds} programs attached in the VM; `{program.name}` is a "
                           f"program of kind {program.kind}", test.span, how)]
    if program.attach is None or program.attach.target is None:
        return [Diagnostic(f"`:trigger` attaches `{program.name}` at its :attach :target, which it does not have",
                           test.span)]
    return []


def check_expect(case: ir.TestCase, kind: tables.ProgramKind) -> list[Diagnostic]:
    """`:expect` names an action of the kind (a number the frontend could
    not name, frontend/sugar.py, is none of its actions' values)."""
    span = case.expect_span or case.span
    if isinstance(case.expect, int):
        known = " ".join(f":{a.name} ({a.value})" for a in kind.actions.values())
        return [Diagnostic(f"{case.expect} is not the value of a {kind.name} action", span, [f"known: {known}"])]
    if case.expect not in kind.actions:
        known = " ".join(f":{a}" for a in kind.actions)
        return [Diagnostic(f"`:{case.expect}` is not a {kind.name} action", span,
                           [*suggestion(case.expect, kind.actions), f"known: {known}"])]
    return []


def check_packet_hex(case: ir.TestCase) -> list[Diagnostic]:
    """:packet-hex and :expect-packet-hex (the frontend holds source to
    this; IR from JSON reaches here): hex byte pairs, white space between."""
    out = []
    for option, text in ((":packet-hex", case.packet_hex), (":expect-packet-hex", case.expect_packet_hex)):
        if text is not None and not HEX.fullmatch("".join(text.split())):
            out.append(Diagnostic(f"{option}: expected an even number of hex digits", case.span))
    return out


def check_layer(layer: ir.Layer) -> list[Diagnostic]:
    """The only check of a test packet's layers (vm/packets.py builds what passes)."""
    spec = tables.PACKET_LAYERS.get(layer.kind)
    if spec is None:  # the frontend refuses it in source; IR from JSON reaches here
        return [Diagnostic(f"unknown packet layer `{layer.kind}`", layer.span)]
    out = []
    for name, value in layer.fields.items():
        field = spec.fields.get(name)
        if field is None:
            out.append(Diagnostic(f"{layer.kind} has no field `:{name}`; known: {', '.join(spec.fields)}", layer.span))
            continue
        problem = value_problem(layer.kind, field, value)
        if problem:
            out.append(Diagnostic(f"{layer.kind} :{name}: {problem}", layer.span))
    return out


def value_problem(layer: str, field: tables.LayerField, value: object) -> str | None:
    if field.kind == "int":
        bits = tables.LAYER_FIELD_BITS.get((layer, field.name), 32)
        if isinstance(value, bool) or not isinstance(value, int):
            return "expected an integer"
        return None if 0 <= value < (1 << bits) else f"{value} does not fit in {bits} bits"
    if field.kind == "flags":
        known = tables.LAYER_FLAG_BITS.get(layer, {})
        if not isinstance(value, list):
            return "expected a list of flags, e.g. (syn ack)"
        bad = [f for f in value if f not in known]
        return f"unknown flag(s) {', '.join(bad)}; known: {' '.join(known)}" if bad else None
    if not isinstance(value, str):
        return f"expected a string ({field.kind})"
    if field.kind == "mac":
        return None if MAC.fullmatch(value) else f"{value!r} is not a MAC address like 02:00:00:00:00:01"
    if field.kind == "hex":
        return None if HEX.fullmatch(value) else "expected an even number of hex digits"
    if field.kind in ("ipv4", "ipv6"):
        parse = ipaddress.IPv4Address if field.kind == "ipv4" else ipaddress.IPv6Address
        try:
            if "%" in value:
                raise ValueError
            parse(value)
        except ValueError:
            return f"{value!r} is not an {field.kind.upper().replace('V', 'v')} address"
        return None
    return f"unsupported field kind {field.kind}"


def check_map_expects(test: ir.TestDecl, program: ir.ProgramDecl, maps: dict[str, ir.MapDecl],
                      layouts: dict | None = None, programs: dict[str, ir.ProgramDecl] | None = None) -> list[Diagnostic]:
    reach = reachable_maps(program, maps, programs or {})
    return (_check_entries(test.maps_before, "seeded", "written twice", program, maps, layouts, reach)
            + _check_entries(test.expect_maps, "expected", "expected twice", program, maps, layouts, reach))


def reachable_maps(program: ir.ProgramDecl, maps: dict[str, ir.MapDecl],
                   programs: dict[str, ir.ProgramDecl]) -> set[str]:
    """The maps a test run of `program` can touch: its own and, through the
    prog-arrays it uses, those of every program its tail-calls reach (a
    dispatcher's test seeds and checks its handlers' maps)."""
    seen, todo, out = {program.name}, [program], set()
    while todo:
        p = todo.pop()
        out.update(p.uses_maps)
        for name in p.uses_maps:
            m = maps.get(name)
            for slot in (m.programs if m is not None and m.programs else []):
                if slot.program in programs and slot.program not in seen:
                    seen.add(slot.program)
                    todo.append(programs[slot.program])
    return out


def _check_entries(entries: list[ir.MapExpect], what: str, twice: str, program: ir.ProgramDecl,
                   maps: dict[str, ir.MapDecl], layouts: dict | None, reach: set[str]) -> list[Diagnostic]:
    out = []
    seen: set[tuple[str, bytes]] = set()
    for e in entries:
        m = maps.get(e.map)
        if m is None or e.map not in reach:
            out.append(Diagnostic(f"{what} map `{e.map}` is not used by program `{program.name}` "
                                  "(nor by a program it tail-calls)", e.span))
            continue
        if not tables.MAP_KINDS[m.kind].test_entries:
            slots = " (its slots are the map's :programs)" if "tail-call" in tables.MAP_KINDS[m.kind].ops else ""
            out.append(Diagnostic(f"{m.kind} map `{m.name}` holds file descriptors: tests cannot write or compare "
                                  f"its entries{slots}", e.span))
            continue
        if m.value is None or not tables.MAP_KINDS[m.kind].has_value:
            out.append(Diagnostic(f"{m.kind} map `{m.name}` has no key/value contents to compare", e.span))
            continue
        problem = mapdata.key_problem(m, e.key, layouts)
        if problem:
            out.append(Diagnostic(problem, e.span))
        else:
            key = mapdata.key_bytes(m, e.key, layouts)
            if (e.map, key) in seen:
                out.append(Diagnostic(f"`{e.map}` key {mapdata.show_key(e.key)} is {twice}", e.span))
            seen.add((e.map, key))
            if tables.MAP_KINDS[m.kind].key_required and e.key >= m.max_entries:  # index-keyed (arrays)
                out.append(Diagnostic(f"key {e.key} is beyond :max-entries {m.max_entries} of `{m.name}`", e.span))
        problem = mapdata.value_problem(m, e.value, layouts)
        if problem:
            out.append(Diagnostic(problem, e.span))
    return out

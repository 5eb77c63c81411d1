"""Event maps (ring-buf, perf-event-array): the one record type each carries,
and the `:expect-events` of tests.

A map's records all have one type, so a reader in user space decodes every
record one way; the manifest records it (`objects[].events[]`). It is the
map's declared `:value` when it has one (the body checker holds every
`(event-output MAP …)` to it), else the type of the values its event-output
forms send (in every program of the file), where a second type sent to the
same map is an error at that form. Runs after the bodies are typed."""

from __future__ import annotations

from .. import eventdata, ir, structs, tables
from ..errors import Diagnostic, Span
from ..types import ERROR, Type


def event_sends(module: ir.Module) -> dict[str, list[tuple[str, Type, Span | None]]]:
    """map -> (program, value type, span) of every typed event-output, in
    order; a defbpf-func's sends count for each program that calls it."""
    funcs = {f.name: f for f in module.funcs}
    out: dict[str, list[tuple[str, Type, Span | None]]] = {}
    for fn in module.functions:
        for node in _outputs(fn.body, funcs, set()):
            out.setdefault(node.map, []).append((fn.name, node.value.type, node.span))
    return out


def _outputs(body: list[ir.Expr], funcs: dict[str, ir.FuncDecl], seen: set[str]):
    """The typed event-outputs of a body and of the functions it calls (each function once)."""
    for node in ir.walk(body):
        if isinstance(node, ir.EventOutput) and node.value.type not in (None, ERROR):
            yield node
        elif isinstance(node, ir.FuncCall) and node.name in funcs and node.name not in seen:
            seen.add(node.name)  # also ends recursion, which the checker reports
            yield from _outputs(funcs[node.name].body, funcs, seen)


def event_types(module: ir.Module) -> dict[str, str]:
    """map -> the type of its records: declared, or sent (maps with neither
    are absent), spelled as the manifest records it (eventdata reads that)."""
    sent = {m: sends[0][1].spell() for m, sends in event_sends(module).items()}
    return {m.name: m.value or sent[m.name] for m in module.maps
            if tables.MAP_KINDS[m.kind].events and (m.value or m.name in sent)}


def check_events(module: ir.Module) -> list[Diagnostic]:
    out = []
    sends = event_sends(module)
    for m, uses in sends.items():
        first = uses[0]
        for program, t, span in uses[1:]:
            if t != first[1]:
                out.append(Diagnostic(
                    f"event map `{m}` carries {first[1].show()} records (sent by `{first[0]}` at {first[2]}); "
                    f"this sends {t.show()}: every record of one map has one type, so a reader can decode them", span,
                    ["send the same type (a cast, or one struct for every event), or use a second map"]))
    out += check_expected_events(module, sends, event_types(module))
    return out


def check_expected_events(module: ir.Module, sends, records: dict[str, str]) -> list[Diagnostic]:
    out = []
    maps = {m.name: m for m in module.maps}
    programs = {p.name: p for p in module.programs}
    layouts = structs.layouts(module.structs)
    for test in module.tests:
        program = programs.get(test.program)
        if program is None or not (tables.PROGRAM_KINDS[program.kind].test_run or test.trigger is not None):
            continue  # check_tests reports it
        for e in test.expect_events or []:
            m = maps.get(e.map)
            if m is None or e.map not in program.uses_maps:
                out.append(Diagnostic(f"expected events of map `{e.map}`, which program `{program.name}` does not use",
                                      e.span))
                continue
            if tables.MAP_KINDS[m.kind].events is None:
                out.append(Diagnostic(f"{m.kind} map `{m.name}` receives no events: :expect-events lists ring-buf and "
                                      "perf-event-array maps (use :expect-maps for map contents)", e.span))
                continue
            types = {t for p, t, _ in sends.get(e.map, []) if p == program.name}
            if not types:
                out.append(Diagnostic(f"program `{program.name}` never sends events to `{e.map}` "
                                      "(no (event-output …) of it in its body)", e.span))
                continue
            problem = eventdata.problem(records[e.map], e.value, layouts)
            if problem:
                out.append(Diagnostic(f"event of `{e.map}`: {problem}", e.span))
    return out

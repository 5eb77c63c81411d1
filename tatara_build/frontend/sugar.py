"""Test-block shorthands that need the program's kind, resolved once the
whole file is read, so every later stage (the checker, the VM jobs, the Nix
check, which reads unchecked modules) sees one spelling. What cannot be
resolved is left for the checker to report."""

from __future__ import annotations

from .. import ir, tables


def resolve_tests(module: ir.Module) -> None:
    kinds = {p.name: tables.PROGRAM_KINDS.get(p.kind) for p in module.programs}
    for test in module.tests:
        kind = kinds.get(test.program)
        if kind is None:
            continue
        for case in test.cases:
            name_expected_number(case, kind)
            frame_l3_packets(case, kind)


def name_expected_number(case: ir.TestCase, kind: tables.ProgramKind) -> None:
    """`:expect 1` on cgroup-skb is `:allow`: bodies may return literals, so
    tests may give the number; reports and junit still show the name."""
    if isinstance(case.expect, int):
        named = [a.name for a in kind.actions.values() if a.value & 0xFFFFFFFF == case.expect & 0xFFFFFFFF]
        if named:
            case.expect = named[0]


def frame_l3_packets(case: ir.TestCase, kind: tables.ProgramKind) -> None:
    """Kinds whose packet starts at L3 (cgroup-skb, socket-filter) are still
    test-run on Ethernet frames: the kernel strips the header before the
    program runs. A packet written from its IP layer on gets a default one,
    or the kernel would take its first 14 bytes for the frame header."""
    if kind.packet != "l3":
        return
    for layers in (case.layers, case.expect_layers):
        if layers and layers[0].kind in tables.headers_with("l3"):
            layers.insert(0, ir.Layer(kind="eth", span=layers[0].span))

"""Every dialect spells every parser step; the parser plans are typed steps
built from the header roles in tables.HEADERS, not from field names."""

from __future__ import annotations

import dataclasses

import pytest

from tatara_build import tables
from tatara_build.backends import parsers
from tatara_build.backends.aya import AyaGenerator
from tatara_build.backends.libbpf import CGenerator

DIALECTS = [AyaGenerator, CGenerator]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_every_dialect_spells_every_step(dialect):
    missing = [s.__name__ for s in parsers.STEPS if not callable(getattr(dialect, f"step_{s.key}", None))]
    assert not missing


def test_steps_are_every_step_class():
    assert set(parsers.STEPS) == set(parsers.Step.__subclasses__())


def all_steps(steps):
    for step in steps:
        yield step
        if isinstance(step, parsers.IfEq):
            yield from all_steps(step.body)


@pytest.mark.parametrize("packet", ["l2", "l3"])
def test_plans_are_frozen_typed_steps(packet):
    wanted = set(tables.HEADERS) if packet == "l2" else set(tables.headers_with("l3", "l4"))
    plans = parsers.plans(wanted, packet)
    names = [name for name, _ in plans]
    assert names[-len(tables.headers_with("l4")):] == tables.headers_with("l4")
    assert parsers.L3 in names
    for _, steps in plans:
        for step in all_steps(steps):
            assert isinstance(step, parsers.Step) and dataclasses.is_dataclass(step)
            with pytest.raises(dataclasses.FrozenInstanceError):
                step.ptr = "x"  # type: ignore[misc]


def test_a_header_with_a_length_field_is_checked_and_skipped_by_it():
    """The IPv4 rules come from its roles (length ihl*4, fragment field),
    so a renamed field would follow, not break, the parser."""
    (name, steps), = [p for p in parsers.plans({"tcp"}, "l2") if p[0] == "tcp"]
    ipv4 = tables.HEADERS["ipv4"]
    over_ipv4 = next(s for s in steps if isinstance(s, parsers.IfEq) and s.values == (tables.ETH_P_IP,))
    loads = [s for s in over_ipv4.body if isinstance(s, parsers.Load)]
    assert [s.field for s in loads] == [ipv4.fields[f] for f in ("ihl", "frag-offset", "protocol", "ihl")]
    assert parsers.FailUnless(loads[0].var, ">=", 5) in over_ipv4.body
    assert parsers.FailUnless(loads[1].var, "==", 0) in over_ipv4.body
    assert parsers.Offset("__p", "__q", parsers.Scaled(loads[3].var, 4)) in over_ipv4.body

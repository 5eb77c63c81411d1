"""tatara_build.records stands in for the standard library's dataclass on
`check`'s path (issue 18): the same classes made both ways must build,
compare, hash, print, refuse and copy alike, and their generated __init__
(made after many instances) must behave as the shared one."""

import dataclasses

import pytest

from tatara_build import records, tables
from tatara_build.frontend import reader


def both(**options):
    """The same three classes, from dataclasses and from records."""
    made = []
    for module in (dataclasses, records):
        @module.dataclass(**options)
        class Base:
            a: int
            b: str = "x"

        @module.dataclass(**options)
        class Point(Base):
            c: list = module.field(default_factory=list)
            d: int = 4

        @module.dataclass(**options)
        class Checked:
            n: int

            def __post_init__(self):
                if self.n < 0:
                    raise ValueError("negative")

        made.append((Base, Point, Checked))
    return made


@pytest.mark.parametrize("options", [{}, {"frozen": True}, {"slots": True}, {"eq": False}, {"repr": False},
                                     {"frozen": True, "slots": True}])
def test_records_behave_as_dataclasses(options):
    (sb, sp, sc), (rb, rp, rc) = both(**options)
    for std, ours in ((sb, rb), (sp, rp), (sc, rc)):
        assert [f.name for f in dataclasses.fields(std)] == list(ours.__dataclass_fields__)
    for args, kwargs in [((1,), {}), ((1, "y"), {}), ((), {"a": 2, "b": "z"}), ((1,), {"d": 9}),
                         ((1, "q", [3]), {"d": 0})]:
        s, o = sp(*args, **kwargs), rp(*args, **kwargs)
        assert [s.a, s.b, s.c, s.d] == [o.a, o.b, o.c, o.d]
        assert (s == sp(*args, **kwargs)) == (o == rp(*args, **kwargs))
        assert (s == sb(1)) == (o == rb(1))
        if options.get("repr", True):
            assert repr(s) == repr(o)
        assert (s.__hash__ is None) == (o.__hash__ is None)
        if options.get("frozen"):
            assert hash(sb(1, "h")) == hash(rb(1, "h"))  # (Point holds a list: unhashable either way)
            with pytest.raises(AttributeError):
                o.a = 5
            with pytest.raises(dataclasses.FrozenInstanceError):
                s.a = 5
        else:
            o.a = 5
            assert o.a == 5
        assert dataclasses.replace(o, a=7).a == 7 and dataclasses.replace(o, a=7).b == o.b
    assert sp(1).c is not sp(1).c and rp(1).c is not rp(1).c
    for bad_args, bad_kwargs in [((), {}), ((1, "b", [], 4, 5), {}), ((1,), {"e": 1}), ((1,), {"a": 2})]:
        with pytest.raises(TypeError):
            sp(*bad_args, **bad_kwargs)
        with pytest.raises(TypeError):
            rp(*bad_args, **bad_kwargs)
    with pytest.raises(ValueError):
        rc(-1)
    assert rc(3).n == 3
    if options.get("slots"):
        assert "__slots__" in rp.__dict__ and not hasattr(rp(1), "__dict__")


def test_a_class_built_often_gets_the_same_init():
    (_, _, _), (_, rp, rc) = both()
    for _ in range(records._SPECIALISE_AFTER + 1):
        p = rp(1, "s", d=2)
        rc(1)
    assert rp.__init__ is not records._init and rc.__init__ is not records._init
    assert (p.a, p.b, p.c, p.d) == (1, "s", [], 2) and rp(1).c is not rp(1).c
    with pytest.raises(TypeError):
        rp()
    with pytest.raises(TypeError):
        rp(1, e=2)
    with pytest.raises(ValueError):
        rc(-1)


def test_the_reader_and_tables_use_them():
    assert not hasattr(reader.Symbol(("f", 1, 1, 1, 2), "x"), "__dict__")  # slots, as before
    kind = tables.PROGRAM_KINDS["xdp"]
    with pytest.raises(AttributeError):
        kind.name = "other"
    assert dataclasses.replace(kind, return_range=None).return_range is None and kind == dataclasses.replace(kind)

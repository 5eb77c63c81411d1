"""Header parsers as typed, dialect-neutral steps, built once from the
header roles in `tables.HEADERS` (l2 / tag / l3 / l4, next-protocol,
length, fragment and version fields) and spelled by each dialect with one
`step_<key>` method per step class (as sqlglot's generator spells each
expression class).

Pointers are byte addresses (`usize` in Rust, `void *` in C); "fail" means
"not this packet" (None / NULL). The parse of L3 happens once per program
(see base.l3_anchor): `TakeL3` reads the location found there.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count
from typing import ClassVar, Iterator

from .. import tables
from ..tables import HeaderFieldSpec, HeaderSpec


class Step:
    key: ClassVar[str]  # the dialect method that spells it: step_<key>

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.key = "".join("_" + c.lower() if c.isupper() else c for c in cls.__name__).lstrip("_")


@dataclass(frozen=True)
class Need(Step):
    """Fail unless `size` bytes at `ptr` are inside the packet. `direct_only`:
    only the verifier needs it (a range for direct reads); helper reads past
    the end give zeros, and a later check fails anyway."""
    ptr: str
    size: int
    direct_only: bool = False


@dataclass(frozen=True)
class Load(Step):
    """A new variable holding one header field (host order, masked)."""
    var: str
    ptr: str
    field: HeaderFieldSpec
    mutable: bool = False


@dataclass(frozen=True)
class FailUnless(Step):
    """Fail unless `var <cmp> value` (cmp: "==" or ">=")."""
    var: str
    cmp: str
    value: int


@dataclass(frozen=True)
class Scaled:
    """`var * scale` bytes (a header's own length field)."""
    var: str
    scale: int


@dataclass(frozen=True)
class Offset(Step):
    """A new pointer `base + size`."""
    var: str
    base: str
    size: int | Scaled
    mutable: bool = False


@dataclass(frozen=True)
class Scalar(Step):
    """A new mutable byte count (an offset from an L3 header)."""
    var: str
    value: int


@dataclass(frozen=True)
class Extract(Step):
    """`field` (offset 0, size 4) of the host-order 32-bit `word`: a new
    mutable variable, or assigned to the existing `var` when not `new`."""
    var: str
    word: str
    field: HeaderFieldSpec
    new: bool = True


@dataclass(frozen=True)
class Member(Step):
    """A new u64, 1 when the byte `var` is one of `values` (all below 64),
    else 0: a bit test, branch-free through a pin (one verifier path
    however many kinds there are)."""
    mask: str
    var: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class Keep(Step):
    """A new u64 mask: all ones unless the byte `var` is `value`, then 0.
    Branch-free, through a pin the optimiser cannot see past: a branch
    would give the verifier a constant header size on one path (a state
    per count of fixed-size headers), this gives it one unknown size."""
    mask: str
    var: str
    value: int
    bits: int = 8  # the width of var


@dataclass(frozen=True)
class Blend(Step):
    """`var = other` unless `mask` (all ones or 0, from Keep) is set; both of `type`."""
    var: str
    other: str
    mask: str
    type: str


@dataclass(frozen=True)
class AddUnless(Step):
    """`var += value` unless `mask` (all ones or 0, from Keep) is set."""
    var: str
    value: int
    mask: str


@dataclass(frozen=True)
class Mask(Step):
    """`var &= mask` (`~mask` when inverted); var is of `type`."""
    var: str
    mask: str
    type: str
    invert: bool = False


@dataclass(frozen=True)
class Grow(Step):
    """`var += size + extra`; fail when var is then past `limit`, else pin
    var and mask it with `limit` (2^k - 1). The mask changes no value but
    widens the verifier's range to [0, limit] on every path (clang would
    drop it after the check without the pin), so states that differ only in
    how many headers were skipped are pruned as one."""
    var: str
    size: Scaled
    extra: int
    limit: int


@dataclass(frozen=True)
class Pin(Step):
    """From here on `ptr` is opaque to the optimiser. A packet pointer plus a
    non-constant offset (IPv4's ihl * 4) is a new pointer to the verifier
    (fresh id, no range), so the register that is bounds-checked must be the
    one dereferenced; clang 22 sank `q + ihl * 4` below its check into the
    IPv4/IPv6 merge and recomputed it there, unchecked ("invalid access to
    packet"). Constant offsets keep the verifier's id and range: no pin."""
    ptr: str


@dataclass(frozen=True)
class IfEq(Step):
    """Run `body` when `var` is one of `values`."""
    var: str
    values: tuple[int, ...]
    body: tuple[Step, ...]


@dataclass(frozen=True)
class Ret(Step):
    """The header starts at `ptr`."""
    ptr: str


@dataclass(frozen=True)
class Fail(Step):
    """Not this packet."""


@dataclass(frozen=True)
class TakeL3(Step):
    """`ptr` and `proto` from the program's one L3 location; fail when none."""
    ptr: str
    proto: str


@dataclass(frozen=True)
class RetL3(Step):
    """The L3 locator's answer: L3 starts at `ptr`, ethertype `proto`."""
    ptr: str
    proto: str


@dataclass(frozen=True)
class RetByVersion(Step):
    """The L3 locator's answer where no L2 header says: `var` (the version
    field) picks the ethertype; fail on any other version."""
    ptr: str
    var: str
    table: tuple[tuple[int, int], ...]  # (version, ethertype)


STEPS: tuple[type[Step], ...] = (Need, Load, FailUnless, Offset, Scalar, Extract, Member, Keep, Blend, AddUnless, Mask,
                                 Grow, Pin, IfEq, Ret, Fail, TakeL3, RetL3, RetByVersion)
L3 = "l3"  # the plan name of the L3 locator


def above_l2(header: str) -> bool:
    """Parsed from the program's one L3 location (not Ethernet or a tag)."""
    return tables.HEADERS[header].role in ("l3", "l4")


def l2_spec() -> HeaderSpec:
    return tables.HEADERS[tables.headers_with("l2")[0]]


class Planner:
    """The parser plans for the headers one program kind's packet access uses."""

    def __init__(self, wanted: set[str], packet: str):
        self.wanted, self.packet = wanted, packet
        self.vars: Iterator[int] = count(1)

    def load(self, ptr: str, field: HeaderFieldSpec) -> tuple[str, Load]:
        var = f"__v{next(self.vars)}"
        return var, Load(var, ptr, field)

    def plans(self) -> list[tuple[str, tuple[Step, ...]]]:
        """(name, steps) per parser function, in dependency order."""
        l2, wanted = l2_spec(), self.wanted
        plans: list[tuple[str, tuple[Step, ...]]] = []
        if self.packet == "l2":
            if l2.name in wanted:
                plans.append((l2.name, (Need("__data", l2.min_len), Ret("__data"))))
            plans += [(tag, self.tag_plan(tables.HEADERS[tag])) for tag in tables.headers_with("tag") if tag in wanted]
        if any(above_l2(h) for h in wanted):
            plans.append((L3, self.l3_plan()))
        plans += [(h, self.l3_header_plan(tables.HEADERS[h])) for h in tables.headers_with("l3") if h in wanted]
        plans += [(h, self.l4_plan(tables.HEADERS[h])) for h in tables.headers_with("l4") if h in wanted]
        return plans

    def tag_plan(self, tag: HeaderSpec) -> tuple[Step, ...]:
        l2 = l2_spec()
        var, step = self.load("__data", l2.fields[l2.next_protocol])
        return (Need("__data", l2.min_len), step,
                IfEq(var, tuple(v for _, v in tag.via),
                     (Offset("__p", "__data", l2.min_len), Need("__p", tag.min_len), Ret("__p"))),
                Fail())

    def l3_header_plan(self, spec: HeaderSpec) -> tuple[Step, ...]:
        return (TakeL3("__p", "__proto"),
                IfEq("__proto", (spec.via[0][1],), (*self.whole(spec, "__p"), Ret("__p"))),
                Fail())

    def l4_plan(self, spec: HeaderSpec) -> tuple[Step, ...]:
        steps: list[Step] = [TakeL3("__q", "__proto")]
        for outer_name, proto in spec.via:
            outer = tables.HEADERS[outer_name]
            steps.append(IfEq("__proto", (outer.via[0][1],), self.past(outer, proto, spec)))
        return (*steps, Fail())

    def past(self, outer: HeaderSpec, proto: int, inner: HeaderSpec) -> tuple[Step, ...]:
        """From an L3 header at __q to `inner` at __p: a first fragment (or
        none), carrying `proto`, `inner.min_len` bytes there."""
        branch = list(self.whole(outer, "__q"))
        if outer.fragment:
            var, step = self.load("__q", outer.fields[outer.fragment])
            branch += [step, FailUnless(var, "==", 0)]
        var, step = self.load("__q", outer.fields[outer.next_protocol])
        if outer.extensions:
            step = Load(var, "__q", step.field, mutable=True)
            fast = (Offset("__p", "__q", outer.min_len), Need("__p", inner.min_len), Ret("__p"))
            return (*branch, step, IfEq(var, (proto,), fast), *self.extensions(outer, var, proto, inner))
        branch += [step, FailUnless(var, "==", proto)]
        if outer.length:
            field, scale = outer.length
            var, step = self.load("__q", outer.fields[field])
            branch += [step, Offset("__p", "__q", Scaled(var, scale), mutable=True), Pin("__p")]
        else:
            branch.append(Offset("__p", "__q", outer.min_len))
        return (*branch, Need("__p", inner.min_len), Ret("__p"))

    def extensions(self, outer: HeaderSpec, nh: str, proto: int, inner: HeaderSpec) -> tuple[Step, ...]:
        """From an L3 header at __q whose next header `nh` is not `proto`:
        skip up to MAX_IPV6_EXTENSIONS extension headers, then `inner` at
        __p when the last one announces `proto`. A non-first fragment has no
        L4 header; a chain longer than the bound is not this packet."""
        sized = [e for e in outer.extensions if e.length]
        fixed = [e for e in outer.extensions if not e.length]
        field, scale = sized[0].length
        fields = {f for e in outer.extensions for f in e.fields.values()}
        assert all(f.offset == 0 and f.size == 4 for f in fields), "one 32-bit word per header"
        assert all(e.length == (field, scale) and e.fields[field] == sized[0].fields[field] for e in sized)
        assert all(e.fields[e.next_protocol] == sized[0].fields[sized[0].next_protocol] for e in outer.extensions)
        off, word = "__off", tables.HeaderFieldSpec("word", 0, 4, "u32")
        rounds: tuple[Step, ...] = ()
        # Nested, innermost first: once `nh` is no extension the walk ends
        # (not tested again by each later round).
        for n in reversed([next(self.vars) for _ in range(tables.MAX_IPV6_EXTENSIONS)]):
            at, w, size, member = f"__e{n}", f"__w{n}", f"__s{n}", f"__m{n}"
            body: list[Step] = [Offset(at, "__q", Scaled(off, 1), mutable=True), Pin(at),
                                Need(at, 8, direct_only=True), Load(w, at, word),
                                Extract(size, w, sized[0].fields[field])]
            for ext in fixed:  # 8 bytes: (size + 1) * scale with size 0
                keep = f"__k{n}"
                body += [Keep(keep, nh, ext.number), Mask(size, keep, "u8")]
                if ext.fragment:  # checked only in this header: the other kinds' bits there are masked
                    frag = f"__f{n}"
                    body += [Extract(frag, w, ext.fields[ext.fragment]), Mask(frag, keep, "u16", invert=True),
                             FailUnless(frag, "==", 0)]
            body += [Extract(nh, w, sized[0].fields[sized[0].next_protocol], new=False),
                     Grow(off, Scaled(size, scale), scale, tables.MAX_IPV6_EXTENSION_END)]
            rounds = (Member(member, nh, tuple(e.number for e in outer.extensions)),
                      IfEq(member, (1,), (*body, *rounds)))
        return (Scalar(off, outer.min_len), *rounds, FailUnless(nh, "==", proto),
                Offset("__p", "__q", Scaled(off, 1), mutable=True), Pin("__p"), Need("__p", inner.min_len), Ret("__p"))

    def whole(self, spec: HeaderSpec, ptr: str) -> tuple[Step, ...]:
        """The fixed part is in the packet; a header with a length field says
        at least that much (IPv4: ihl >= 5)."""
        if not spec.length:
            return (Need(ptr, spec.min_len),)
        field, scale = spec.length
        var, step = self.load(ptr, spec.fields[field])
        return (Need(ptr, spec.min_len), step, FailUnless(var, ">=", spec.min_len // scale))

    def l3_plan(self) -> tuple[Step, ...]:
        """Start of L3 and its ethertype. On `l2` kinds: after L2 and up to
        MAX_VLAN_TAGS tags; on `l3` kinds the version field decides."""
        l3s = [tables.HEADERS[h] for h in tables.headers_with("l3")]
        if self.packet == "l3":
            field, _ = l3s[0].version
            var, step = self.load("__data", l3s[0].fields[field])
            # Check for the shortest L3 header, not 1 byte: `data + 1 > end`
            # becomes `data >= end`, which LLVM may narrow to a 32-bit compare
            # of the zero-extended skb fields, and the verifier then learns
            # no packet range (seen with the aya backend).
            shortest = min(h.min_len for h in l3s)
            return (Need("__data", shortest), step,
                    RetByVersion("__data", var, tuple((h.version[1], h.via[0][1]) for h in l3s)))
        l2, [tag] = l2_spec(), [tables.HEADERS[t] for t in tables.headers_with("tag")]
        # Branch-free: one L3 location [14, 14 + 4 * tags] for the verifier,
        # not a state per tag count that every later parse is walked in.
        # Room for every tag is asked first (no L3 header fits in less).
        # Advanced by masks, not branches: clang 14 (-mcpu=v3) copies __data
        # with a 32-bit move when an offset is added to it, a scalar to the
        # verifier; pointer += scalar keeps it a pointer.
        proto, ptr = "__proto", "__p"
        steps: list[Step] = [Need("__data", l2.min_len + tables.MAX_VLAN_TAGS * tag.min_len),
                             Load(proto, "__data", l2.fields[l2.next_protocol], mutable=True),
                             Offset(ptr, "__data", l2.min_len, mutable=True)]
        bits = l2.fields[l2.next_protocol].size * 8
        for _ in range(tables.MAX_VLAN_TAGS):
            keeps = [f"__k{next(self.vars)}" for _ in tag.via]
            var, load = self.load(ptr, tag.fields[tag.next_protocol])
            steps += [*(Keep(k, proto, v, bits) for k, (_, v) in zip(keeps, tag.via)),
                      *(Mask(keeps[0], k, "u64") for k in keeps[1:]), Need(ptr, tag.min_len, direct_only=True),
                      load, Blend(proto, var, keeps[0], load.field.type), AddUnless(ptr, tag.min_len, keeps[0])]
        # Not NULL where found, said to clang: offsets that are masks hide it,
        # and clang 14 then threaded the parsers' NULL tests into a path the
        # verifier walks with a NULL packet pointer ("invalid mem access").
        return (*steps, FailUnless(ptr, "!=", 0), RetL3(ptr, proto))


def plans(wanted: set[str], packet: str) -> list[tuple[str, tuple[Step, ...]]]:
    return Planner(wanted, packet).plans()


def _check_roles() -> None:
    """Every field a role names exists (a typo would otherwise surface as a
    KeyError in some later build)."""
    for spec in tables.HEADERS.values():
        assert spec.role in tables.ROLES, spec.name
        named = [spec.next_protocol, spec.fragment, spec.length and spec.length[0], spec.version and spec.version[0]]
        assert all(f in spec.fields for f in named if f), spec.name
        assert (spec.role == "l2") == (not spec.via), spec.name
    assert len(tables.headers_with("l2")) == 1, "packet access starts at exactly one L2 header"


_check_roles()

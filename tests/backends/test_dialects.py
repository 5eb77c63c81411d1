"""The dialect system: every registered dialect covers every program kind,
map kind, helper, action, context field, integer type and parser step; the
parser plans are typed steps built from the header roles in tables.HEADERS;
a new dialect is one class in one file (here: a toy pseudo-assembly listing
defined in this test and nothing else)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tatara_build import backends, check, frontend, tables
from tatara_build.backends import base, parsers

REAL = dict(backends.dialects())
EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.tlisp"))


@pytest.mark.parametrize("dialect", REAL.values(), ids=list(REAL))
def test_every_dialect_covers_every_kind(dialect):
    assert set(dialect.PROGRAMS) >= set(tables.PROGRAM_KINDS)
    assert set(dialect.MAPS) >= set(tables.MAP_KINDS)
    assert set(dialect.HELPERS) >= set(tables.HELPERS)
    assert set(dialect.FORMS) >= set(tables.HELPER_FORMS)
    assert set(dialect.INTS) >= set(tables.INT_TYPES)
    assert set(dialect.READS) >= set(tables.PACKET_READS)
    for key, method in base.Generator.SPELL_METHODS.items():  # a template, or a method of its own
        assert key in dialect.SPELL or getattr(dialect, method) is not getattr(base.Generator, method), key
    actions = {a.uapi for k in tables.PROGRAM_KINDS.values() for a in k.actions.values() if a.uapi}
    assert set(dialect.ACTIONS) >= actions
    for kind in tables.PROGRAM_KINDS.values():
        assert set(dialect.CTX_FIELDS.get(kind.name, {})) >= set(kind.ctx_fields), kind.name
        assert dialect.section_prefix(kind.name)


@pytest.mark.parametrize("dialect", REAL.values(), ids=list(REAL))
def test_every_dialect_spells_every_step_and_form(dialect):
    wanted = list(base.Generator.SPELLINGS) + [f"step_{s.key}" for s in parsers.STEPS]
    missing = [m for m in wanted if not callable(getattr(dialect, m, None))
               or getattr(getattr(dialect, m), "__isabstractmethod__", False)]
    assert not missing


def test_the_registry_is_what_the_cli_manifest_engine_and_vm_read():
    from tatara_build.cli.build import Backend
    from tatara_build.compile import engine
    from tatara_build.compile.manifest import BackendName
    from tatara_build.vm import cases, sourcemap

    assert [b.value for b in Backend] == list(REAL) == list(BackendName.__args__)
    assert {d.compiler for d in REAL.values()} <= set(engine.PLANNERS)
    assert set(cases.GENERATED_SUFFIXES) == {d.source_suffix for d in REAL.values()}
    for d in REAL.values():
        assert sourcemap._MARKER.search(f"x; {d.comment[0]}f.tlisp:3:4{d.comment[1]}")["span"] == "f.tlisp:3:4"


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
    at = over_ipv4.body.index(parsers.Offset("__p", "__q", parsers.Scaled(loads[3].var, 4), mutable=True))
    assert over_ipv4.body[at + 1] == parsers.Pin("__p")  # the variable-offset pointer is pinned (issue 19)


# --- a toy third dialect: one class, nothing else --------------------------------


def define_listing() -> type[base.Generator]:
    """A pseudo-assembly listing: every statement one line, blocks by
    indentation, `;` comments. It registers itself by being defined."""

    class Listing(base.Generator):
        name = "listing"
        summary = "a pseudo-assembly listing (for reading, not building)"
        source_suffix = ".lst"
        comment = ("; ", "")
        PROGRAMS = {k: f"section {k.replace('-', '_')}" for k in tables.PROGRAM_KINDS}
        MAPS = {k: k.replace("-", "_") for k in tables.MAP_KINDS}
        HELPERS = {h: f"helper#{tables.HELPERS[h].kernel_id}" for h in tables.HELPERS}
        CTX_FIELDS = {k.name: {f: f"ctx.{f}" for f in k.ctx_fields} for k in tables.PROGRAM_KINDS.values()}
        ACTIONS = {a.uapi: a.uapi.lower() for k in tables.PROGRAM_KINDS.values() for a in k.actions.values() if a.uapi}
        INTS = {t: t for t in tables.INT_TYPES}
        FORMS = {f: f"({f} {{map}} …)" for f in tables.HELPER_FORMS}
        READS = {r: f"read.{r}" for r in tables.PACKET_READS}
        DIRECT_ARGS = READ_ARGS = base.PacketArgs("__data", "__l3", "__data")

        def files(self):
            out = [f"; {self.module.file}"]
            for decl, body in self.functions():
                out += [f"{self.PROGRAMS[decl.kind]} {decl.name}:", *body]
            for packet in sorted(self.headers_needed):
                for name, steps in self.parser_plans(packet):
                    out += [f"parser {name}/{packet}:", *self.spell_steps(steps)]
            return {f"{base.stem(self.module)}.lst": "\n".join(out) + "\n"}

        @classmethod
        def section_prefix(cls, kind):
            return cls.PROGRAMS[kind].split()[1]

        spell_int = lambda self, v, t: f"{v}:{t}"  # noqa: E731
        spell_bool = lambda self, v: "#t" if v else "#f"  # noqa: E731
        spell_default = lambda self, t: f"0:{t}"  # noqa: E731
        spell_action = lambda self, a: self.ACTIONS.get(a.uapi, str(a.value))  # noqa: E731
        spell_binary = lambda self, op, a, b, t: f"({op}.{t} {a} {b})"  # noqa: E731
        spell_cast = lambda self, v, src, dst: f"(cast.{dst} {v})"  # noqa: E731
        spell_call = lambda self, h, args: f"(call {self.HELPERS[h.name]} {' '.join(args)})"  # noqa: E731
        spell_ctx_field = lambda self, spec, text: text  # noqa: E731
        field_bytes = lambda self, p, f: f"(load.{f.size} {p}+{f.offset})"  # noqa: E731
        field_as = lambda self, v, f: v  # noqa: E731
        spell_found = spell_found_ptr = lambda self, name: f"(some? {name})"  # noqa: E731
        spell_deref = lambda self, ptr, decl: f"[{ptr}]"  # noqa: E731
        line_return = lambda self, v: f"ret {v}"  # noqa: E731
        line_discard = lambda self, v: f"eval {v}"  # noqa: E731
        line_assign = lambda self, n, v: f"mov {n}, {v}"  # noqa: E731
        line_let = lambda self, n, t, v, mutable: f"let {n}:{t}, {v}"  # noqa: E731
        line_unread = lambda self, n: None  # noqa: E731
        open_if = lambda self, c: f"if {c}"  # noqa: E731
        open_while = lambda self, c: f"while {c}"  # noqa: E731
        open_scope = lambda self: "do"  # noqa: E731
        close_scope = lambda self: "end"  # noqa: E731
        else_ = lambda self: "else"  # noqa: E731
        line_lookup = lambda self, p, d, k: f"lookup {p}, {self.MAPS[d.kind]} {d.name}, {k}"  # noqa: E731
        line_event_output = lambda self, d, v, t: f"output {d.name}, {v}"  # noqa: E731
        open_reserve = lambda self, r, d, t: f"reserve {r}, {d.name}, {t}"  # noqa: E731
        line_store = lambda self, r, v: f"store {r}, {v}"  # noqa: E731
        line_submit = lambda self, r: f"submit {r}"  # noqa: E731
        record_ptr = lambda self, r: r  # noqa: E731
        array_ptr = lambda self, n: n  # noqa: E731
        line_let_array = lambda self, n, t: f"array {n}:{t}"  # noqa: E731
        line_fill = lambda self, f, p, t: f"fill {p}, {f.helper.name}"  # noqa: E731
        line_zero_record = lambda self, p, t: f"zero {p}"  # noqa: E731
        member_ptr = lambda self, p, m: f"{p}.{m}"  # noqa: E731
        packet_prologue = lambda self, pull: ["    packet __data, __data_end"]  # noqa: E731
        line_locate_l3 = lambda self, loc: f"call {loc}"  # noqa: E731
        line_set_ctx_field = lambda self, member, v: f"store ctx.{member}, {v}"  # noqa: E731
        write_helper = lambda self, w, access: [f"set {w.header}.{w.field.name}"]  # noqa: E731
        load_helper = lambda self, header, size, access: [f"load {header}.{size}"]  # noqa: E731
        line_load = lambda self, name, t, call: (f"let {name}:{t}, {call})", f"(some? {name})")  # noqa: E731
        guard = lambda self, c: [f"fail-if {c}"]  # noqa: E731
        line_fail = lambda self: "fail"  # noqa: E731
        spell_ctx_u64 = lambda self, off: f"(load.8 ctx+{off})"  # noqa: E731
        spell_core_read = lambda self, layouts, p, e: f"(kread {p} {e.struct}.{'.'.join(e.fields)})"  # noqa: E731
        spell_tp_field = lambda self, layouts, e: f"(load ctx.{e.field})"  # noqa: E731
        spell_tp_string = lambda self, layouts, e: f"(address ctx.{e.field})"  # noqa: E731
        map_symbol = lambda self, d: d.name  # noqa: E731
        line_zeroed = lambda self, n, t: f"let {n}:{t}, zeroed"  # noqa: E731
        spell_member = lambda self, v, m: f"{v}.{m}"  # noqa: E731
        spell_ref_member = lambda self, r, m: f"[{r}].{m}"  # noqa: E731
        spell_ref_deref = lambda self, r: f"[{r}]"  # noqa: E731
        line_set_member = lambda self, r, m, v: f"store [{r}].{m}, {v}"  # noqa: E731
        line_copy_array = lambda self, n, m, v: f"copy {n}.{m}, {v}"  # noqa: E731
        line_field_add = lambda self, r, m, d, t: f"atomic-add.{t} [{r}].{m}, {d}"  # noqa: E731
        step_load = lambda self, s: [f"let {s.var}, {self.spell_field(s.ptr, s.field)}"]  # noqa: E731
        step_scalar = lambda self, s: [f"let {s.var}, {s.value}"]  # noqa: E731
        step_extract = lambda self, s: [f"bits {s.var}, {s.word}>>{s.field.shift}&{s.field.mask}"]  # noqa: E731
        step_member = lambda self, s: [f"let {s.mask}, {s.var} in {s.values}"]  # noqa: E731
        step_keep = lambda self, s: [f"let {s.mask}, {s.var} != {s.value}"]  # noqa: E731
        step_blend = lambda self, s: [f"blend {s.var}, {s.other}, {s.mask}"]  # noqa: E731
        step_add_unless = lambda self, s: [f"add {s.var}, {s.value} unless {s.mask}"]  # noqa: E731
        step_mask = lambda self, s: [f"and {s.var}, {'~' * s.invert}{s.mask}"]  # noqa: E731
        step_grow = lambda self, s: [f"add {s.var}, {s.size.var}*{s.size.scale}+{s.extra} max {s.limit}"]  # noqa: E731
        step_offset = lambda self, s: [f"let {s.var}, {s.base}+{s.size}"]  # noqa: E731
        step_pin = lambda self, s: [f"pin {s.ptr}"]  # noqa: E731
        step_ret = lambda self, s: [f"ret {s.ptr}"]  # noqa: E731
        step_take_l3 = lambda self, s: [f"let {s.ptr} {s.proto}, __l3"]  # noqa: E731
        step_ret_l3 = lambda self, s: [f"ret {s.ptr} {s.proto}"]  # noqa: E731
        step_ret_by_version = lambda self, s: [f"ret-by {s.var} {s.table}"]  # noqa: E731
        spell_const = lambda self, c: f"[rodata {c.name}]"  # noqa: E731
        const_lines = lambda self, c: [f"rodata {c.name}:{c.const_type} = {c.default}"]  # noqa: E731
        line_printk = lambda self, fmt, args: f"printk {fmt!r} {' '.join(a for a, _, _ in args)}"  # noqa: E731
        func_lines = lambda self, n, ps, r, body: [f"func {n}:", *body]  # noqa: E731

    return Listing


@pytest.fixture
def listing():
    cls = define_listing()
    try:
        yield cls
    finally:
        del base.DIALECTS[cls.name]


def test_a_third_dialect_is_one_class(listing, tmp_path):
    assert backends.dialect("listing") is listing
    test_every_dialect_covers_every_kind(listing)
    test_every_dialect_spells_every_step_and_form(listing)
    for example in EXAMPLES:
        module = check.check(frontend.load(example))
        # one directory each: emit replaces its own earlier output whole, never merges into it
        (path,) = backends.emit(module, "listing", tmp_path / example.stem)
        text = path.read_text()
        assert path.name == f"{example.stem}.lst" and "; " + example.name in text
        for program in module.programs:
            assert f"section {program.kind.replace('-', '_')} {program.name}:" in text
    drop_syn = (tmp_path / "drop-syn" / "drop-syn.lst").read_text()
    assert "parser tcp/l2:" in drop_syn and "fail-if" in drop_syn and "ret xdp_drop" in drop_syn


def test_a_dialect_without_a_compiler_is_a_clear_build_error(listing, tmp_path):
    from tatara_build.compile import BuildOptions, compile_generated
    from tatara_build.errors import ToolchainError

    (tmp_path / "src").mkdir()
    with pytest.raises(ToolchainError, match="listing backend's output has no compiler"):
        compile_generated(tmp_path / "src", "x", tmp_path / "out", BuildOptions(backend="listing", use_cache=False))


def test_every_target_the_checker_accepts_fits_a_section_name():
    """The backends assert check.SECTION_TARGET; the checker's per-kind
    target syntax must never let through more than that."""
    import re

    from tatara_build.check import SECTION_TARGET

    for kind, (syntax, _) in tables.ATTACH_TARGET_SYNTAX.items():
        for probe in ("do_sys_open", "a.b", "syscalls/sys_enter_openat", "x:y", "../x", "a..b", ".x", "+x", "a b"):
            if re.fullmatch(syntax, probe):
                assert SECTION_TARGET.fullmatch(probe) and ".." not in probe, (kind, probe)
    for kind in tables.PROGRAM_KINDS.values():
        for target in kind.attach_targets:
            assert SECTION_TARGET.fullmatch(target), (kind.name, target)

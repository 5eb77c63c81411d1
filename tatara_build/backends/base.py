"""One generator walk over the checked IR, shared by every backend.

Like sqlglot's `Generator`, `Generator` knows the traversal (statements,
temporaries, scopes, header parsers, map helpers) and asks its dialect
subclass only how to *spell* each piece. Dialects (aya.py, libbpf.py) are
small tables of spellings plus the file layout they write.

Lowering model: every IR expression is either a *value* (pure, spelled
inline) or lowered to *statements* that leave its value in a destination:
`RETURN` (the function's result), a temporary variable, or nowhere.
Header parsers and map accessors become small always-inline functions, so
one bounds-checked shape serves every use and the verifier sees the same
code from both backends.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .. import ir, mapdata, structs, tables
from . import parsers
from .parsers import above_l2
from .. import kernelbtf
from ..check import LICENSE_TEXT, section_target_ok
from ..check.exprs import printk_conversions
from ..check.kernels import target_kernels
from ..errors import Diagnostic, SourceError
from ..frontend.names import ident_problem, symbol
from ..types import BOOL, I64, U32, U64, UNIT, NEVER, Array, Header, LpmKey, Ref, Struct, Type, of

RETURN = "<return>"
DISCARD = "<discard>"
INDENT = "    "
# A file name goes into a span marker only if it is this plain (it is user text).
MARKER_FILE = re.compile(r"[A-Za-z0-9._-]{1,64}")
BRACES = {"{", "}", "} else {"}


def snake(name: str) -> str:
    return symbol(name)


def screaming(name: str) -> str:
    return snake(name).upper()


def stem(module: ir.Module) -> str:
    """The source file's name without `.tlisp`: names the output files."""
    name = Path(module.file).name
    return name.removesuffix(".tlisp") if name.endswith(".tlisp") else Path(name).stem


def checked_name(name: str, span, local: bool = False) -> str:
    """Only validated identifiers reach generated code (the frontend already
    rejects the rest; this keeps a hand-built IR from injecting text)."""
    problem = ident_problem(name, local)
    if problem:
        raise SourceError(problem, span)
    return name


@dataclass
class Fn:
    """State of the function being generated."""

    kind: tables.ProgramKind | None  # None: a defbpf-func (no context)
    ctx: str
    lines: list[str] = field(default_factory=list)
    depth: int = 1
    scopes: list[dict[str, str]] = field(default_factory=lambda: [{}])
    used: set[str] = field(default_factory=set)
    temps: int = 0
    mutated: set[str] = field(default_factory=set)
    span: object = None  # the form being lowered (its span goes into markers)
    marked: object = None  # the span of the last marker written
    l3_at: object = None  # the statement before which L3 is located (see l3_anchor)
    l3_scope: dict | None = None  # the scope L3's locals were declared in
    reload: bool = False  # packet pointers are re-read after a tail-call (see stmt_tail_call)
    body: list = field(default_factory=list)  # the program's body (what runs after a tail-call)
    func: ir.FuncDecl | None = None  # the defbpf-func being generated
    refs: set[str] = field(default_factory=set)  # bindings that point into a map value (ref:struct:<n>)


@dataclass(frozen=True)
class PacketArgs:
    """What generated code passes its support functions for the packet, for
    one way of reading it (direct pointers, or a helper read of the skb)."""

    l2: str  # to the L2 parsers and the L3 locator: where the packet starts (and ends)
    l3: str  # to a parser above L2: the located L3 header
    pkt: str  # to a field write or a load: what bounds the packet (the skb a helper reads)


# Every dialect by name, in registration order: the one list the CLI
# choices, the manifest, the compile engine and the vm stage read.
DIALECTS: dict[str, type[Generator]] = {}


class Generator:
    """Dialect-independent walk. A dialect spells values (`spell_*`), lines
    (`line_*`, `open_*`, `close_scope`, `else_`), parser steps (`step_*`),
    the packet prologue, the support functions (parsers from
    `parser_plans`, map and integer helpers) and the file layout (`files`).

    A subclass that sets `name` registers itself as a dialect. It also says
    what the rest of the pipeline needs to know about its output: the
    generated sources' suffix and comment syntax (the vm maps verifier
    output back through span markers), the compiler that builds them, and
    its spelling tables keyed by the names in tables.py (PROGRAMS, MAPS,
    HELPERS, CTX_FIELDS, ACTIONS, INTS, READS; a test checks they cover every kind)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line for --help
    # Kernel struct offsets (core-read, tp-field) are relocated by the loader
    # (CO-RE); False: taken from the target kernels' BTF and compiled in.
    relocates: ClassVar[bool] = True
    source_suffix: ClassVar[str] = ""  # of the generated source the verifier's line info names
    comment: ClassVar[tuple[str, str]] = ("", "")  # opener and closer of a one-line comment
    compiler: ClassVar[str | None] = None  # the compile stage's planner for the files: "clang", "cargo"
    PROGRAMS: ClassVar[dict] = {}
    MAPS: ClassVar[dict] = {}
    HELPERS: ClassVar[dict] = {}
    CTX_FIELDS: ClassVar[dict] = {}
    ACTIONS: ClassVar[dict] = {}
    INTS: ClassVar[dict] = {}
    READS: ClassVar[dict] = {}  # tables.PACKET_READS -> how the dialect calls the read helper
    # The spellings that only fill a template: SPELL_METHODS' keys -> a
    # template over the method's arguments (`deref`: {ptr}; `store`: {rec},
    # {value}; …). A dialect whose spelling needs logic overrides the method.
    SPELL: ClassVar[dict[str, str]] = {}
    SPELL_METHODS: ClassVar[dict[str, str]] = {
        "found_ptr": "spell_found_ptr", "deref": "spell_deref", "ref_member": "spell_ref_member",
        "ref_deref": "spell_ref_deref", "store": "line_store", "submit": "line_submit", "record_ptr": "record_ptr",
        "array_ptr": "array_ptr", "zero_record": "line_zero_record", "member_ptr": "member_ptr"}
    DIRECT_ARGS: ClassVar[PacketArgs]  # packet arguments with direct access
    READ_ARGS: ClassVar[PacketArgs]  # and with a helper read (self.read)
    # tables.HELPER_FORMS -> a template over the form's parts: `{map}` (the
    # map's symbol, map_symbol; `{name}` its snake_case name), `{ret}` (the kind's return type), and the
    # arguments by their IR field names (`{key}`, `{ifindex}`, `{delta}`…).
    FORMS: ClassVar[dict] = {}

    # What every dialect spells (besides `step_<key>` for each parsers.STEPS
    # class and the tables above); the walk calls these. A dialect that
    # builds its support code from write_body/csum_lines/packet_read_helpers/
    # packet_support spells their parts too (line_word, raw_load,
    # line_write_field, csum_fix, pseudo_csum_fix, read_load_helper,
    # read_has_helper, parser).
    SPELLINGS: ClassVar[tuple[str, ...]] = (
        "spell_int", "spell_bool", "spell_default", "spell_action", "spell_binary", "spell_cast", "spell_call",
        "spell_ctx_field", "field_bytes", "field_as", "spell_found", "spell_found_ptr", "spell_deref", "line_return",
        "line_discard", "line_assign", "line_let", "line_unread", "open_if", "open_while", "line_lookup",
        "line_event_output", "open_reserve", "line_store", "line_submit", "record_ptr", "line_fill", "line_let_array",
        "array_ptr", "packet_prologue", "line_locate_l3", "guard",
        "line_set_ctx_field", "write_helper", "load_helper", "line_load", "line_fail", "files",
        "section_prefix", "spell_ctx_u64", "spell_core_read", "spell_tp_field", "spell_tp_string", "map_symbol",
        "spell_const", "const_lines", "line_printk", "func_lines", "line_zeroed", "spell_member",
        "spell_ref_member", "line_set_member", "line_copy_array", "line_field_add", "spell_ref_deref",
        "line_zero_record", "member_ptr")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            DIALECTS[cls.name] = cls

    @abstractmethod
    def files(self) -> dict[str, str]:
        """Relative path -> text of everything this dialect writes."""
        raise NotImplementedError

    @classmethod
    @abstractmethod
    def section_prefix(cls, kind: str) -> str:
        """The ELF section (up to any `/`) a program of this kind lands in."""
        raise NotImplementedError

    def __init__(self, module: ir.Module):
        self.module = module
        self.maps = {m.name: m for m in module.maps}
        self.programs = {p.name: p for p in module.programs}
        # On-demand support code: headers parsed, map accessors, helpers.
        # access (packet start, and `_<read>` when read through a helper) -> headers
        self.headers_needed: dict[str, set[str]] = {}
        self.read: tables.PacketRead | None = None  # how the code being generated reads packets
        self.loads: set[tuple[str, int]] = set()  # (read name, bytes) of packet loads through a helper
        self.map_helpers: set[tuple[str, str]] = set()  # (get|set|add|delete, map)
        self.int_helpers: set[tuple[str, Type]] = set()  # (op, type)
        self.lpm_widths: set[int] = set()  # address bytes of the lpm keys built
        # Kernels whose struct layouts a dialect without CO-RE compiled in.
        self.layout_kernels: set[str] = set()
        self.writes: set[tuple[str, str, str]] = set()  # (access, header, field) of set-field! on headers
        self.payload_loads: set[tuple[str, str, int]] = set()  # (access, header, bytes) of `load`s
        self.consts = {c.name: c for c in module.consts}
        for decl in [*module.maps, *module.consts, *module.funcs]:
            checked_name(decl.name, decl.span)
        self.layouts = structs.layouts(module.structs)  # checked: every struct has one
        for decl in module.structs:
            checked_name(decl.name, decl.span)
            for f in decl.fields:
                checked_name(f.name, f.span)

    # Template spellings (SPELL); a dialect whose spelling needs logic overrides the method.
    def spell_found_ptr(self, ptr: str) -> str:
        return self.SPELL["found_ptr"].format(ptr=ptr)

    def spell_deref(self, ptr: str, decl: ir.MapDecl) -> str:
        return self.SPELL["deref"].format(ptr=ptr)

    def spell_ref_member(self, ref: str, member: str) -> str:
        return self.SPELL["ref_member"].format(ref=ref, member=member)

    def spell_ref_deref(self, ref: str) -> str:
        return self.SPELL["ref_deref"].format(ref=ref)

    def line_store(self, rec: str, value: str) -> str:
        return self.SPELL["store"].format(rec=rec, value=unparen(value))

    def line_submit(self, rec: str) -> str:
        return self.SPELL["submit"].format(rec=rec)

    def record_ptr(self, rec: str) -> str:
        return self.SPELL["record_ptr"].format(rec=rec)

    def array_ptr(self, name: str) -> str:
        return self.SPELL["array_ptr"].format(name=name)

    def line_zero_record(self, ptr: str, t: str) -> str:
        return self.SPELL["zero_record"].format(ptr=ptr)

    def member_ptr(self, ptr: str, member: str) -> str:
        return self.SPELL["member_ptr"].format(ptr=ptr, member=member)

    # Both dialects are brace languages; these spellings are shared.
    def spell_member(self, value: str, member: str) -> str:
        return f"{value}.{member}"

    def line_break(self) -> str:
        return "break;"

    def open_scope(self) -> str:
        return "{"

    def close_scope(self) -> str:
        return "}"

    def else_(self) -> str:
        return "} else {"

    # --- entry point ------------------------------------------------------

    def functions(self) -> list[tuple[ir.ProgramDecl, list[str]]]:
        out = []
        for fn in self.module.functions:
            decl = self.programs.get(fn.name)
            if decl is None:
                raise SourceError(f"bpf-fn `{fn.name}` has no defbpf-program declaration", fn.span)
            checked_name(fn.name, fn.span)
            out.append((decl, self.function_body(decl, fn)))
        return out

    def subroutines(self) -> list[list[str]]:
        """Each defbpf-func, in declaration order (a function calls only
        earlier ones, so C needs no prototypes), spelled by `func_lines`."""
        out = []
        called = called_funcs(self.module)
        for decl in self.module.funcs:
            if decl.name not in called:
                continue  # never called: C's -Wunused-function (under -Werror) would refuse it
            self.fn = Fn(kind=None, ctx="", func=decl)  # "" is no name: nothing resolves to the context
            self.fn.mutated = {e.name for e in ir.walk(decl.body) if isinstance(e, ir.SetVar)}
            self.read = None
            params = [(self.bind(p.name, p.span), p.param_type, p.name in self.fn.mutated) for p in decl.params]
            for (target, _, _), p in zip(params, decl.params):
                self.mark_if_unread(target, p.name, decl.body)
            self.block(decl.body, RETURN if decl.returns else DISCARD, decl.returns)
            out.append(self.func_lines(snake(decl.name), params, decl.returns, self.fn.lines))
        return out

    def function_body(self, decl: ir.ProgramDecl, fn: ir.BpfFn) -> list[str]:
        kind = tables.PROGRAM_KINDS[decl.kind]
        self.program = decl
        self.fn = Fn(kind=kind, ctx=checked_name(fn.ctx, fn.span, local=True))
        self.fn.mutated = {e.name for e in ir.walk(fn.body) if isinstance(e, ir.SetVar)}
        self.read = packet_read(kind, fn.body)
        self.fn.l3_at = l3_anchor(fn.body)
        parsed = {e.header for e in ir.walk(fn.body) if isinstance(e, ir.Header)}
        self.fn.reload = bool(parsed) and not self.read and any(
            parses_after(fn.body, e) for e in ir.walk(fn.body) if isinstance(e, ir.TailCall))
        self.fn.body = fn.body
        self.block(fn.body, RETURN, kind.return_type)
        body = self.fn.lines
        if parsed:
            loads = any(isinstance(n, ir.Load) for n in ir.walk(fn.body))
            pull = pull_bytes(parsed, past_end=loads) if kind.pull_first else None
            if pull and loads:
                pull += tables.MAX_LOAD_OFFSET + 8  # the payload a `load` may read
            body = self.packet_prologue(pull) + body
        return body

    # --- statements -------------------------------------------------------

    def emit(self, lines: str) -> None:
        """Append one or more lines (a dialect may spell a step as several).
        The first code line lowered from a form other than the last marked
        one gets a trailing span marker: on the same line, so it reaches the
        BTF line info the verifier prints."""
        for line in lines.split("\n"):
            span = self.fn.span
            if line and span is not None and span != self.fn.marked and self.markable(line):
                marker = self.span_marker(span)
                if marker:
                    line = f"{line} {marker}"
                    self.fn.marked = span
            self.fn.lines.append(INDENT * self.fn.depth + line if line else "")

    def markable(self, line: str) -> bool:
        """A line that may end in a marker (not a lone brace)."""
        return line.strip() not in BRACES

    def span_marker(self, span) -> str | None:
        """`file.tlisp:L:C` (`L:C` when the file name is not plain) in the
        dialect's comment syntax; None for no markers."""
        opener, closer = self.comment
        return f"{opener}{self.span_text(span)}{closer}" if opener else None

    @staticmethod
    def span_text(span) -> str:
        name = span.file.replace("\\", "/").rsplit("/", 1)[-1]
        where = f"{int(span.line)}:{int(span.col)}"
        return f"{name}:{where}" if MARKER_FILE.fullmatch(name) else where

    @contextmanager
    def lowering(self, e: ir.Node):
        """Lines emitted inside belong to `e` (when it has a span)."""
        outer = self.fn.span
        if getattr(e, "span", None) is not None:
            self.fn.span = e.span
        try:
            yield
        finally:
            self.fn.span = outer

    def open(self, line: str) -> None:
        self.emit(line)
        self.fn.depth += 1
        self.fn.scopes.append({})

    def close(self, line: str = "}") -> None:
        self.fn.depth -= 1
        self.fn.scopes.pop()
        self.emit(line)

    def bind(self, name: str, span) -> str:
        """A fresh target-language name for a user binding; shadowing gets a
        distinct name (`x__2`): C would read the new, uninitialised variable
        in `int x = x + 1`."""
        base = snake(checked_name(name, span, local=True))
        out, n = base, 1
        # `ctx` is the program's context parameter in both dialects, whatever
        # the source calls it: a user binding never takes that spelling.
        while out in self.fn.used or out == "ctx":
            n += 1
            out = f"{base}__{n}"
        self.fn.used.add(out)
        self.fn.scopes[-1][name] = out
        return out

    def lookup(self, name: str, span) -> str:
        for scope in reversed(self.fn.scopes):
            if name in scope:
                return scope[name]
        if name == self.fn.ctx:
            return "ctx"
        if name in self.consts:  # no variable shadows a const (checker)
            return self.spell_const(self.consts[name])
        raise SourceError(f"unbound variable `{name}`", span)

    def mark_if_unread(self, target: str, name: str, body: list[ir.Expr]) -> None:
        """A binding the body never reads is still legal source: tell the
        compiler so (C's -Wall -Werror would reject it)."""
        # `(set! x x)` is dropped (stmt_set), so it reads nothing
        dropped = {id(n.value) for n in ir.walk(body) if isinstance(n, ir.SetVar) and isinstance(n.value, ir.Var)
                   and n.value.name == n.name == name}
        if not any(isinstance(n, ir.Var) and n.name == name and id(n) not in dropped for n in ir.walk(body)):
            line = self.line_unread(target)
            if line:
                self.emit(line)

    def temp(self) -> str:
        self.fn.temps += 1
        return f"__t{self.fn.temps}"

    def block(self, body: list[ir.Expr], dest: str, dest_type: Type | None) -> None:
        for expr in body[:-1]:
            self.stmt(expr, DISCARD, None)
        if body:
            self.stmt(body[-1], dest, dest_type)
        elif dest not in (DISCARD,) and dest_type not in (None, UNIT):
            raise SourceError("empty body where a value is needed", None)

    def deliver(self, value: str, dest: str, expr: ir.Node) -> None:
        """Put a value where the destination wants it."""
        if dest == RETURN:
            self.emit(self.line_return(value))
        elif dest == DISCARD:
            if has_effect(expr):
                self.emit(self.line_discard(value))
        else:
            self.emit(self.line_assign(dest, value))

    def stmt(self, e: ir.Expr, dest: str, dest_type: Type | None) -> None:
        with self.lowering(e):
            if e is self.fn.l3_at:
                self.emit(self.line_locate_l3(self.l3_locator(self.access())))
                self.fn.l3_scope = self.fn.scopes[-1]
            method = getattr(self, "stmt_" + e.form.replace("-", "_").rstrip("!"), None)
            if method is not None:
                method(e, dest, dest_type)
                return
            self.deliver(self.value(e), dest, e)

    def line_return_action(self, e: ir.Return) -> str:
        action = self.fn.kind.actions.get(e.action)
        if action is None:
            raise SourceError(f"unknown action `:{e.action}` for {self.fn.kind.name}", e.span)
        return self.line_return(self.spell_action(action))

    # Forms that are statements.

    def stmt_begin(self, e: ir.Begin, dest, dest_type) -> None:
        self.block(e.body, dest, dest_type)

    def stmt_let(self, e: ir.Let, dest, dest_type) -> None:
        value = self.value(e.value)
        self.open(self.open_scope())
        name = self.bind(e.name, e.span)
        self.emit(self.line_let(name, e.value.type, value, e.name in self.fn.mutated))
        self.mark_if_unread(name, e.name, e.body)
        self.block(e.body, dest, dest_type)
        self.close(self.close_scope())

    def stmt_set(self, e: ir.SetVar, dest, dest_type) -> None:
        target, value = self.lookup(e.name, e.span), self.value(e.value)
        if unparen(value) == target:
            return  # `(set! x x)` does nothing (and C's -Wself-assign would refuse it)
        self.emit(self.line_assign(target, value))

    def stmt_if(self, e: ir.If, dest, dest_type) -> None:
        cond = self.value(e.cond)
        self.open(self.open_if(cond))
        self.stmt(e.then, dest, dest_type)
        self.else_branch(e.otherwise, dest, dest_type)
        self.close(self.close_scope())

    def else_branch(self, otherwise: ir.Expr, dest, dest_type) -> None:
        """`} else {` and the else statement in a scope of its own; nothing
        when the source had no else."""
        if not is_empty(otherwise):
            self.close(self.else_())
            self.fn.scopes.append({})
            self.fn.depth += 1
            self.stmt(otherwise, dest, dest_type)

    def stmt_if_let(self, e: ir.IfLet, dest, dest_type) -> None:
        if isinstance(e.value, ir.Header):
            found = self.header_value(e.value)
            self.open(self.open_scope())
            name = self.bind(e.name, e.span)
            self.emit(self.line_let(name, Header(e.value.header), found, False))
            self.open(self.open_if(self.spell_found(name)))
        elif isinstance(e.value, ir.Load):
            load = e.value
            assert type(load.value.type) is Header, "the checker only lets loads past headers through"
            header = load.value.type.name
            size = of(load.to).bits // 8
            self.payload_loads.add((self.access(), header, size))
            ptr, off = self.arguments([load.value, load.offset])
            call = f"{self.load_name(header, size, self.access())}({self.pkt_arg()}, {ptr}, {unparen(off)}"
            self.open(self.open_scope())
            name = self.bind(e.name, e.span)
            let, cond = self.line_load(name, of(load.to), call)
            self.emit(let)
            self.open(self.open_if(cond))
        elif isinstance(e.value, ir.MapLookup):
            decl = self.map_decl(e.value.map, e.value.span)
            ptr = self.temp()
            self.open(self.open_scope())
            self.emit(self.line_lookup(ptr, decl, self.value(self.key_expr(decl, e.value.key))))
            self.open(self.open_if(self.spell_found_ptr(ptr)))
            name = self.bind(e.name, e.span)
            value = of(decl.value)
            if type(value) is Struct:
                # a struct value stays in the map: the binding is the pointer
                # (field reads, set-field! and field-add! go through it)
                self.fn.refs.add(name)
                self.emit(self.line_let(name, Ref(value), ptr, False))
            else:
                self.emit(self.line_let(name, value, self.spell_deref(ptr, decl), False))
            self.mark_if_unread(name, e.name, [e.then])
        else:
            raise SourceError("if-let needs (header …) or (map-lookup …)", e.value.span)
        self.stmt(e.then, dest, dest_type)
        self.else_branch(e.otherwise, dest, dest_type)
        self.close(self.close_scope())
        self.close(self.close_scope())

    def stmt_loop(self, e: ir.Loop, dest, dest_type) -> None:
        self.open(self.open_scope())
        var = self.bind(e.var, e.span)
        self.emit(self.line_let(var, U32, self.spell_int(e.start, U32), True))
        self.open(self.open_while(f"{var} < {self.spell_int(e.end, U32)}"))
        # The increment must run on `continue`-free paths only; bodies have
        # no continue, so it goes last.
        self.block(e.body, DISCARD, None)
        self.emit(self.line_assign(var, self.spell_binary("add", var, self.spell_int(1, U32), U32)))
        self.close(self.close_scope())
        self.close(self.close_scope())

    def stmt_break(self, e: ir.Break, dest, dest_type) -> None:
        self.emit(self.line_break())

    def stmt_map_set(self, e: ir.MapSet, dest, dest_type) -> None:
        self.map_call("set", e.map, e.span, e.key, e.value)

    def stmt_map_add(self, e: ir.MapAdd, dest, dest_type) -> None:
        self.map_call("add", e.map, e.span, e.key, e.value)

    def stmt_map_delete(self, e: ir.MapDelete, dest, dest_type) -> None:
        self.map_call("delete", e.map, e.span, e.key)

    def map_call(self, op: str, map_name: str, span, *args: ir.Expr) -> None:
        """Map updates go through one small inline function per (op, map),
        generated once: short call sites, one place per map API."""
        decl = self.map_decl(map_name, span, f"map-{op}")
        self.map_helpers.add((op, decl.name))
        key, *rest = args
        values = ", ".join(unparen(v) for v in self.arguments([self.key_expr(decl, key), *rest]))
        self.emit(f"{self.helper_name(op, snake(decl.name))}({values});")

    def stmt_event_output(self, e: ir.EventOutput, dest, dest_type) -> None:
        """Ring buffers: reserve the record, write the value straight into it,
        submit (a full buffer drops the event: nothing to write into). Perf
        arrays: build the value on the stack; the helper copies it. The value
        is computed before the reservation, so no path (a return inside it)
        leaves a reservation open, which the verifier refuses."""
        decl = self.map_decl(e.map, e.span, "event-output")
        t = e.value.type
        if tables.MAP_KINDS[decl.kind].events == "reserve" and isinstance(e.value, ir.Make):
            self.reserve_struct(decl, e.value)
            return
        fill = self.array_fill(e.value)
        value = None if fill else self.value(e.value)
        if tables.MAP_KINDS[decl.kind].events == "reserve":
            rec = self.temp()
            self.open(self.open_reserve(rec, decl, t))
            if fill:
                self.emit_record_ptr(rec)
            self.emit(self.line_fill(fill, self.record_ptr(rec), t) if fill else self.line_store(rec, value))
            self.emit(self.line_submit(rec))
            self.close(self.close_scope())
            return
        if isinstance(e.value, ir.Make) and value.isidentifier():
            # the struct `make` built is already the stack copy the helper
            # reads: a second one doubled the stack (a 504-byte record passed
            # `check` and failed clang's 512-byte limit)
            self.emit(self.line_event_output(decl, value, t))
            return
        tmp = self.temp()
        if fill:
            self.emit(self.line_let_array(tmp, t))
            self.emit(self.line_fill(fill, self.array_ptr(tmp), t))
        else:
            self.emit(self.line_let(tmp, t, value, False))
        self.emit(self.line_event_output(decl, tmp, t))

    def reserve_struct(self, decl: ir.MapDecl, make: ir.Make) -> None:
        """`(event-output RING (make s :f v …))`: the field values first (so
        no path leaves the record reserved), then reserve, zero the record
        (fields not named and padding), store each field in place and
        submit; `(current-comm)` fields are written by the helper."""
        specs = [self.layouts[make.struct].field(f) for f in make.fields]
        if any(type(of(spec.type)) is Array and not self.filler(v) for spec, v in zip(specs, make.values)):
            value = self.value(make)  # an array value: build the struct, store it whole
            rec = self.temp()
            self.open(self.open_reserve(rec, decl, make.type))
            self.emit(self.line_store(rec, value))
            self.emit(self.line_submit(rec))
            self.close(self.close_scope())
            return
        fields = []
        for spec, v in zip(specs, make.values):
            fill = self.array_fill(v)
            fields.append((spec, snake(checked_name(spec.name, make.span)), fill, None if fill else self.operand(v)))
        rec = self.temp()
        self.open(self.open_reserve(rec, decl, make.type))
        self.emit_record_ptr(rec)
        ptr = self.record_ptr(rec)
        self.emit(self.line_zero_record(ptr, make.type))
        for spec, member, fill, value in fields:
            if fill:
                self.emit(self.line_fill(fill, self.member_ptr(ptr, member), of(spec.type)))
            else:
                self.emit(self.line_set_member(ptr, member, value))
        self.emit(self.line_submit(rec))
        self.close(self.close_scope())

    def emit_record_ptr(self, rec: str) -> None:
        line = self.line_record_ptr(rec)
        if line:
            self.emit(line)

    def line_record_ptr(self, rec: str) -> str:
        """A line naming the reserved record's pointer (record_ptr), if the dialect needs one."""
        return ""

    @staticmethod
    def filler(e: ir.Expr) -> tables.Helper | None:
        """The helper that writes an array value in place ((current-comm),
        (probe-read-user-str P)), or None."""
        if isinstance(e, ir.Call):
            helper = tables.HELPERS.get(e.helper)
            if helper is not None and type(e.type) is Array:
                return helper
        return None

    def array_fill(self, e: ir.Expr) -> Fill | None:
        """The helper that writes `e` in place with its arguments spelled
        (before any record is reserved), or None."""
        helper = self.filler(e)
        return Fill(helper, self.arguments(e.args)) if helper else None

    # Helper forms (tables.HELPER_FORMS): one template per form in the dialect's FORMS.

    def helper_form(self, e: ir.Node, **args: ir.Expr | None) -> str:
        parts = {"ret": self.INTS[self.fn.kind.return_type]}
        if hasattr(e, "map"):
            decl = self.map_decl(e.map, e.span, e.form)
            parts["map"], parts["name"] = self.map_symbol(decl), snake(decl.name)
        given = {k: v for k, v in args.items() if isinstance(v, ir.Node)}
        parts.update({k: v for k, v in args.items() if isinstance(v, str)})
        parts.update(zip(given, (unparen(a) for a in self.arguments(list(given.values())))))
        return self.FORMS[e.form].format(**parts)

    def value_redirect(self, e: ir.Redirect) -> str:
        flags = self.spell_int(tables.REDIRECT_INGRESS if e.ingress else 0, U64)
        return self.helper_form(e, ifindex=e.ifindex, flags=flags)

    def value_redirect_map(self, e: ir.RedirectMap) -> str:
        fallback = self.fn.kind.actions[e.fallback].value if e.fallback else 0
        return self.helper_form(e, key=e.key, fallback=self.spell_int(fallback, U64))

    def stmt_tail_call(self, e: ir.TailCall, dest, dest_type) -> None:
        self.emit(self.helper_form(e, index=e.index))
        if self.fn.reload and parses_after(self.fn.body, e):
            # A tail-call that falls through leaves no packet pointer valid on
            # some kernels (6.12's verifier): read the packet bounds and
            # locate L3 again for the parses that follow (the checker refuses
            # headers bound before it).
            located = any(scope is self.fn.l3_scope for scope in self.fn.scopes)
            self.emit(self.lines_reload_packet(self.l3_locator(self.access()) if located else None))

    def value_adjust_head(self, e: ir.AdjustHead) -> str:
        return self.helper_form(e, delta=e.delta)

    value_adjust_tail = value_adjust_head

    def value_get_stackid(self, e: ir.GetStackId) -> str:
        flags = e.flags if e.flags is not None else self.spell_int(0, U64)
        return self.helper_form(e, flags=flags)

    def set_map_field(self, e: ir.SetField) -> None:
        """`(set-field! v :f X)` on a map value (ref:struct): a store through
        the pointer."""
        ref = self.value(e.value)
        self.emit(self.line_set_member(ref, snake(checked_name(e.field, e.span)), self.operand(e.new)))

    def stmt_field_add(self, e: ir.FieldAdd, dest, dest_type) -> None:
        """`(field-add! v :f D)`: an atomic add for 32/64-bit fields (BPF has
        none narrower: a plain add there)."""
        ref = self.value(e.value)
        spec = self.layouts[e.value.type.target.name].field(e.field)
        self.emit(self.line_field_add(ref, snake(checked_name(e.field, e.span)), self.operand(e.delta), of(spec.type)))

    def stmt_return_value(self, e: ir.ReturnValue, dest, dest_type) -> None:
        value = self.value(e.value)
        self.emit(self.line_return(value) if self.fn.func else self.line_return_value(value))

    def stmt_printk(self, e: ir.Printk, dest, dest_type) -> None:
        conversions = printk_conversions(e.format)
        assert isinstance(conversions, list) and len(conversions) == len(e.args), "the checker matches the format"
        assert all(" " <= ch <= "~" for ch in e.format), "the frontend holds formats to printable ASCII"
        args = [(a, e.args[i].type, conv) for i, (a, conv) in enumerate(zip(self.arguments(e.args), conversions))]
        self.emit(self.line_printk(e.format, args))

    def stmt_func_call(self, e: ir.FuncCall, dest, dest_type) -> None:
        if e.type == UNIT:  # a function without :returns: a plain call statement
            self.emit(f"{self.value_func_call(e)};")
        else:
            self.deliver(self.value_func_call(e), dest, e)

    def value_func_call(self, e: ir.FuncCall) -> str:
        return f"{snake(checked_name(e.name, e.span))}({', '.join(unparen(a) for a in self.arguments(e.args))})"

    def line_return_value(self, value: str) -> str:
        return self.line_return(value)

    def stmt_return(self, e: ir.Return, dest, dest_type) -> None:
        self.emit(self.line_return_action(e))

    # --- values -----------------------------------------------------------

    def value(self, e: ir.Expr) -> str:
        """Spell a value; forms that need statements go through a temp."""
        with self.lowering(e):
            return self.lower_value(e)

    def lower_value(self, e: ir.Expr) -> str:
        method = getattr(self, "value_" + e.form.replace("-", "_").rstrip("!"), None)
        if method is not None:
            return method(e)
        if e.type in (None, UNIT, NEVER):
            raise SourceError(f"`{e.form}` has no value here", e.span)
        tmp = self.temp()
        self.emit(self.line_let(tmp, e.type, self.spell_default(e.type), True))
        self.stmt(e, tmp, e.type)
        return tmp

    def operand(self, e: ir.Expr) -> str:
        """A value used inside a larger expression (dialects may name long
        ones to keep lines short)."""
        return self.value(e)

    def arguments(self, exprs: list[ir.Expr]) -> list[str]:
        """The arguments of a call, in order."""
        return [self.operand(e) for e in exprs]

    def value_int(self, e: ir.Int) -> str:
        return self.spell_int(e.value, e.type or I64)

    def value_bool(self, e: ir.Bool) -> str:
        return self.spell_bool(e.value)

    def value_var(self, e: ir.Var) -> str:
        name = self.lookup(e.name, e.span)
        if name in self.fn.refs and type(e.type) is Struct:
            return self.spell_ref_deref(name)  # a copy of the map value
        return name

    def value_make(self, e: ir.Make) -> str:
        """`(make s :f v …)`: a zeroed temporary (padding too: struct keys
        hash the same on both backends), then each named field."""
        layout = self.layouts[e.struct]
        values = [(layout.field(f), self.array_fill(v) or self.operand(v)) for f, v in zip(e.fields, e.values)]
        tmp = self.temp()
        self.emit(self.line_zeroed(tmp, e.type))
        for spec, value in values:
            member = snake(checked_name(spec.name, e.span))
            if isinstance(value, Fill):  # (current-comm): the helper writes the field
                self.emit(self.line_fill(value, self.array_ptr(f"{tmp}.{member}"), of(spec.type)))
            elif type(of(spec.type)) is Array:
                self.emit(self.line_copy_array(tmp, member, value))
            else:
                self.emit(self.line_assign(f"{tmp}.{member}", value))
        return tmp

    def value_compare(self, e: ir.Compare) -> str:
        return f"({self.operand(e.left)} {COMPARE[e.op]} {self.operand(e.right)})"

    def value_not(self, e: ir.Not) -> str:
        return f"!{self.operand(e.arg)}"

    def value_and(self, e: ir.And) -> str:
        return self.short_circuit(e.args, "&&", True)

    def value_or(self, e: ir.Or) -> str:
        return self.short_circuit(e.args, "||", False)

    def short_circuit(self, args: list[ir.Expr], op: str, is_and: bool) -> str:
        """`a && b`, unless an operand needs statements: then evaluate the
        rest only when needed, keeping the short-circuit order."""
        if all(is_pure_value(a) for a in args):
            return "(" + f" {op} ".join(self.operand(a) for a in args) + ")"
        tmp = self.temp()
        self.emit(self.line_let(tmp, BOOL, self.value(args[0]), True))
        for arg in args[1:]:
            self.open(self.open_if(tmp if is_and else f"!{tmp}"))
            self.emit(self.line_assign(tmp, self.value(arg)))
            self.close(self.close_scope())
        return tmp

    def value_binary(self, e: ir.Binary) -> str:
        t = e.type or e.left.type
        if e.op in ("div", "rem"):
            left, right = self.arguments([e.left, e.right])
            self.int_helpers.add((e.op, t))  # sorted by spelling (int_helper_keys)
            return f"{self.helper_name(e.op, t.spell())}({unparen(left)}, {unparen(right)})"
        left, right = self.operand(e.left), self.operand(e.right)
        return self.spell_binary(e.op, left, right, t)

    def value_cast(self, e: ir.Cast) -> str:
        return self.spell_cast(self.operand(e.value), e.value.type, of(e.to))

    def value_call(self, e: ir.Call) -> str:
        helper = tables.HELPERS.get(e.helper)
        if helper is None:
            raise SourceError(f"unknown helper `{e.helper}`", e.span)
        return self.spell_call(helper, self.arguments(e.args))

    def value_ctx_field(self, e: ir.CtxField) -> str:
        spec = self.fn.kind.ctx_fields.get(e.field)
        if spec is None:
            raise SourceError(f"unknown context field `:{e.field}`", e.span)
        return self.spell_ctx_field(spec, self.CTX_FIELDS[self.fn.kind.name][spec.name])

    def value_map_get(self, e: ir.MapGet) -> str:
        decl = self.map_decl(e.map, e.span, "map-get")
        self.map_helpers.add(("get", decl.name))
        key = self.arguments([self.key_expr(decl, e.key)])[0]
        return f"{self.helper_name('get', snake(decl.name))}({unparen(key)})"

    def key_expr(self, decl: ir.MapDecl, key: ir.Expr) -> ir.Expr:
        """The key as the map stores it: an lpm-trie's plain key becomes the
        full-length prefix `(lpm-key BITS key)`."""
        if not mapdata.is_lpm(decl) or isinstance(key, ir.LpmKey):
            return key
        bits = 8 * mapdata.lpm_data_bytes(decl)
        prefix = ir.trusted.Int(span=key.span, value=bits, type=U32)
        return ir.trusted.LpmKey(span=key.span, prefix=prefix, address=[key], type=LpmKey(bits // 8))

    @property
    def lpm_key_types(self) -> dict[int, str | None]:
        """Address width -> the integer key type lpm-trie maps of that width
        declare (None: 16 bytes, u64 halves). Widths name one type each: the
        checker holds lpm keys to unsigned types, one per width."""
        return {mapdata.lpm_data_bytes(d): d.key for d in self.module.maps if mapdata.is_lpm(d)}

    def lpm_address_types(self, width: int) -> list[str]:
        return lpm_address_types(width, self.lpm_key_types.get(width))

    def value_lpm_key(self, e: ir.LpmKey) -> str:
        """`__lpm_key4(prefix, addr)`: one key builder per address width
        (network byte order is the builder's job)."""
        width = e.type.nbytes
        self.lpm_widths.add(width)
        args = self.arguments([e.prefix, *e.address])
        return f"{self.helper_name('lpm_key', str(width))}({', '.join(unparen(a) for a in args)})"

    # --- probe arguments and kernel types ---------------------------------------

    def value_arg(self, e: ir.Arg) -> str:
        access = self.fn.kind.args
        if access is None:
            raise SourceError(f"{self.fn.kind.name} programs have no arguments", e.span)
        offset = access.offsets[e.index] if access.offsets is not None else 8 * e.index
        return self.spell_ctx_u64(offset)

    def kernel_layouts(self, e: ir.Node, resolve) -> dict[str, tuple[kernelbtf.Hop, ...]]:
        """`resolve(types)` on each kernel the program targets (the checker
        has resolved the same on the same kernels)."""
        from ..errors import ToolchainError

        out = {}
        for line in target_kernels(self.program):
            try:
                out[line] = resolve(kernelbtf.kernel_types(line))
            except kernelbtf.KernelDataError as err:
                raise ToolchainError(str(err)) from None
            except kernelbtf.PathError as err:
                raise SourceError(str(err), e.span) from None
        return out

    def value_core_read(self, e: ir.CoreRead) -> str:
        pointer = self.operand(e.value)
        layouts = self.kernel_layouts(e, lambda types: kernelbtf.resolve_path(types, e.struct, e.fields))
        return self.spell_core_read(layouts, pointer, e)

    def value_tp_field(self, e: ir.TpField) -> str:
        """A field of the record; a `__data_loc` string by its own name
        (`:filename` for `__data_loc_filename`): its address in the record."""
        target = self.program.attach.target if self.program.attach else ""

        def resolve(types):
            record = kernelbtf.tracepoint_record(types, target)
            fields = kernelbtf.tracepoint_fields(record, target) if record else {}
            name = kernelbtf.tracepoint_member(fields, e.field)
            if name is None:
                raise kernelbtf.PathError(f"tracepoint `{target}` has no field `{e.field}` on kernel {types.release}", 0)
            member = fields[name]
            return (kernelbtf.Hop(record.key, (kernelbtf.Step(record.key, record.kind, name, member.offset_bits,
                                                               member.type),)),)

        layouts = self.kernel_layouts(e, resolve)
        if next(iter(layouts.values()))[0].steps[0].member != e.field:
            return self.spell_tp_string(layouts, e)
        return self.spell_tp_field(layouts, e)

    def fixed_layout(self, layouts: dict[str, tuple[kernelbtf.Hop, ...]], e: ir.Node, what: str) -> tuple[kernelbtf.Hop, ...]:
        """For a dialect without CO-RE relocations: the one layout every
        target kernel shares (offsets compiled in), or an error naming them."""
        (first, hops), *rest = layouts.items()
        for line, other in rest:
            if [(h.offset, h.bit) for h in other] != [(h.offset, h.bit) for h in hops]:
                shown = lambda hs: "+".join(str(h.offset) for h in hs)  # noqa: E731
                raise SourceError(Diagnostic(
                    f"{what} is at byte offset {shown(hops)} on kernel {first} but {shown(other)} on kernel {line}: "
                    f"the {self.name} backend compiles offsets in (no CO-RE relocations, aya-rs/aya#349), so one "
                    "object cannot serve both", e.span,
                    ["promise one kernel (:kernel \"6.1\"), or build with --backend c (CO-RE: one object for all)"]))
        self.layout_kernels.update(layouts)
        return hops

    def value_field(self, e: ir.HeaderField) -> str:
        t = e.value.type
        if type(t) is Ref:
            return self.spell_ref_member(self.value(e.value), snake(checked_name(e.field, e.span)))
        if type(t) is Struct:
            return self.spell_member(self.value(e.value), snake(checked_name(e.field, e.span)))
        spec = tables.HEADERS.get(t.name) if type(t) is Header else None
        if spec is None or e.field not in spec.fields:
            raise SourceError(f"unknown field `:{e.field}`", e.span)
        return self.spell_field(self.value(e.value), spec.fields[e.field])

    def spell_field(self, ptr: str, spec: tables.HeaderFieldSpec) -> str:
        """A header field's value: its bytes in host order (`field_bytes`),
        shifted and masked down to the field, as the field's type."""
        value = self.field_bytes(ptr, spec)
        if spec.shift:
            value = f"({value} >> {spec.shift})"
        if spec.mask is not None:
            value = f"({value} & {hex(spec.mask)})"
        if spec.type == "bool":
            return f"({value} != 0)"
        return self.field_as(value, spec)

    def read_load(self, size: int, at: str) -> str:
        """`size` packet bytes at offset `at`, through the helper read's load function."""
        self.note_load(size)
        return f"{self.helper_name(f'load{size * 8}', self.read.name)}({self.pkt_arg()}, {at})"

    def license(self) -> str:
        (text,) = {p.license for p in self.module.programs} or {"GPL"}  # check.check_license: one, plain
        assert LICENSE_TEXT.fullmatch(text), "the checker validates the license text"
        return text

    # --- packet access ------------------------------------------------------

    def header_value(self, e: ir.Header) -> str:
        if self.fn.kind.packet is None:
            raise SourceError(f"{self.fn.kind.name} programs have no packet to parse", e.span)
        self.headers_needed.setdefault(self.access(), set()).add(e.header)
        args = self.l3_args() if above_l2(e.header) else self.l2_args()
        return f"{self.parser_name(e.header, self.access())}({args})"

    def stmt_set_field(self, e: ir.SetField, dest, dest_type) -> None:
        """A header field write: one support function per (access, header,
        field), `__set_<h>_<f>(packet, [l3,] header, value)`, spelled by the
        dialect from `field_write` (region, checksums to fix). On a map's
        struct value (ref:struct): a store through the pointer."""
        if type(e.value.type) is Ref:
            self.set_map_field(e)
            return
        assert type(e.value.type) is Header, "the checker only lets header writes through"
        header = e.value.type.name
        plan = field_write(header, e.field)
        access = self.access()
        ptr, new = self.arguments([e.value, e.new])
        self.writes.add((access, header, e.field))
        if plan.pseudo:  # the L4 checksums over this address are found by their parsers
            self.headers_needed.setdefault(access, set()).update(c.header for c in plan.pseudo)
        args = self.l3_args() if plan.pseudo else self.pkt_arg()
        self.emit(f"{self.write_name(header, e.field, access)}({args}, {ptr}, {unparen(new)});")

    def stmt_set_ctx_field(self, e: ir.SetCtxField, dest, dest_type) -> None:
        spec = self.fn.kind.ctx_fields.get(e.field)
        if spec is None or not spec.writable:
            raise SourceError(f"context field `:{e.field}` is not writable", e.span)
        self.emit(self.line_set_ctx_field(snake(spec.name), unparen(self.value(e.value))))

    def load_name(self, header: str, size: int, access: str) -> str:
        return f"__load_{header}_{size * 8}" + ("" if access == "l2" else f"_{access}")

    def end_offset(self, header: str, ptr: str) -> str:
        """Where the header ends, from `ptr`: its length field scaled (IPv4
        IHL, TCP data offset), else its fixed size."""
        spec = tables.HEADERS[header]
        if not spec.length:
            return str(spec.min_len)
        field, scale = spec.length
        return f"{self.spell_field(ptr, spec.fields[field])} * {scale}"

    def load_helpers(self, access: str) -> list[str]:
        out = []
        for a, header, size in sorted(self.payload_loads):
            if a == access:
                out += self.load_helper(header, size, access) + [""]
        return out

    def write_name(self, header: str, field: str, access: str) -> str:
        return f"__set_{header}_{snake(field)}" + ("" if access == "l2" else f"_{access}")

    def write_helpers(self, access: str) -> list[str]:
        """The write functions this access needs, spelled by the dialect."""
        out = []
        for a, header, field in sorted(self.writes):
            if a == access:
                out += self.write_helper(field_write(header, field), access) + [""]
        return out

    def write_body(self, w: FieldWrite, merged: str) -> list[str]:
        """A field write's statements: the changed 16-bit words before
        (`__old`) and after (`__new`) when a checksum covers them (not the
        IPv6 hop limit, a VLAN tag), the field's bytes (`__c`) when other
        bits of them are kept, and between them the store of `merged`."""
        f, (roff, rsize) = w.field, w.region
        if self.read:  # both load sizes, used or not: the support code is what it has been
            self.note_load(rsize)
            self.note_load(f.size)
        read = self.read_load if self.read else self.raw_load
        summed = bool(w.own or w.pseudo)
        words = lambda name: [self.line_word(name, rsize, read(rsize, f"__h + {roff}"))] if summed else []  # noqa: E731
        keep = [self.line_word("__c", f.size, read(f.size, f"__h + {f.offset}"))] if f.mask is not None else []
        return [*words("__old"), *keep, *self.line_write_field(f, merged), *words("__new")]

    def csum_lines(self, w: FieldWrite, access: str) -> list[str]:
        """Fix each checksum over the changed words: the header's own, then
        each L4 checksum whose pseudo-header holds the field (`pseudo_csum_fix`)."""
        out = self.csum_fix(w.own, "__h", w.region[1]) if w.own else []
        for c in w.pseudo:
            out += self.pseudo_csum_fix(c, access, w.region[1])
        return out

    def packet_read_helpers(self) -> list[str]:
        """The helper read's support functions: `__loadN_<read>` per size
        loaded, `__has_<read>` per read that parses (step_need's probe)."""
        out = []
        for name, size in sorted(self.loads):
            out += self.read_load_helper(name, size) + [""]
        for name in sorted({a.partition("_")[2] for a in self.headers_needed} - {""}):
            out += self.read_has_helper(name) + [""]
        return out

    def packet_support(self) -> list[str]:
        """Per access the programs used: its parsers, field writes and loads
        (these note the helper loads packet_read_helpers then spells)."""
        out = []
        for access in self.support_accesses():
            for name, steps in self.parser_plans(access):
                out += self.parser(name, access, steps) + [""]
            out += self.write_helpers(access) + self.load_helpers(access)
        return out

    def access(self) -> str:
        """How the current program reaches its packet: its start ("l2",
        "l3"), and the helper read's name when it does not use pointers
        ("l3_skb"). Support functions are generated once per access."""
        return self.fn.kind.packet + (f"_{self.read.name}" if self.read else "")

    def support_accesses(self):
        """Each access the programs used, in order, with self.read set for
        rendering its support functions."""
        for access in sorted(self.headers_needed):
            _, _, read = access.partition("_")
            self.read = tables.PACKET_READS[read] if read else None
            yield access

    def packet_args(self) -> PacketArgs:
        return self.READ_ARGS if self.read else self.DIRECT_ARGS

    def l2_args(self) -> str:
        return self.packet_args().l2

    def l3_args(self) -> str:
        return self.packet_args().l3

    def pkt_arg(self) -> str:
        return self.packet_args().pkt

    def note_load(self, size: int) -> None:
        assert self.read is not None
        self.loads.add((self.read.name, size))

    @staticmethod
    def l3_locator(access: str) -> str:
        return "__l3" + ("" if access == "l2" else f"_{access}")

    @staticmethod
    def parser_name(header: str, access: str) -> str:
        return f"__parse_{header}" + ("" if access == "l2" else f"_{access}")

    def helper_name(self, op: str, what: str) -> str:
        return f"__{op}_{what}"

    def int_helper_keys(self) -> list[tuple[str, Type]]:
        """The (op, type) integer helpers used, in the order of their names."""
        return sorted(self.int_helpers, key=lambda k: (k[0], k[1].spell()))


    # --- maps ---------------------------------------------------------------

    def map_decl(self, name: str, span, op: str | None = None) -> ir.MapDecl:
        decl = self.maps.get(name)
        if decl is None:
            raise SourceError(f"unknown map `{name}`", span)
        if op is not None and op not in tables.MAP_KINDS[decl.kind].ops:
            raise SourceError(f"{decl.kind} maps do not support {op}", span)
        return decl

    # --- parser bodies: one small inline function per header used -------------

    def parser_plans(self, access: str) -> list[tuple[str, tuple[parsers.Step, ...]]]:
        return parsers.plans(self.headers_needed.get(access, set()), access.partition("_")[0])

    def spell_steps(self, steps, depth: int = 1) -> list[str]:
        """Each step spelled by the dialect's `step_<key>` method, indented."""
        return [INDENT * depth + line for step in steps for line in getattr(self, f"step_{step.key}")(step)]

    # Steps every brace dialect spells alike; `guard(cond)` fails the parse when cond holds.

    def step_need(self, step: parsers.Need) -> list[str]:
        if self.read and step.direct_only:
            return []
        if self.read:  # helper reads: probe the last byte (the helper fails past the packet)
            return self.guard(f"!{self.helper_name('has', self.read.name)}({self.pkt_arg()}, {step.ptr} + {step.size})")
        return self.guard(f"{step.ptr} + {step.size} > __data_end")

    def step_fail_unless(self, step: parsers.FailUnless) -> list[str]:
        return self.guard(f"{step.var} {NEGATE[step.cmp]} {step.value}")

    def step_if_eq(self, step: parsers.IfEq) -> list[str]:
        cond = " || ".join(f"{step.var} == {hex(v)}" for v in step.values)
        return [self.open_if(cond), *self.spell_steps(step.body), self.close_scope()]

    def step_fail(self, step: parsers.Fail) -> list[str]:
        return [self.line_fail()]


def blocks(parts) -> list[str]:
    """The lines of each part (a function, a declaration), each followed by a blank line."""
    return [line for part in parts for line in (*part, "")]


def layout_kernels(module: ir.Module | None, backend: str) -> list[str] | None:
    """The kernels whose struct layouts an object of this backend compiles
    in (None: it has none, or the loader relocates them): the object is
    only valid on these (the manifest says so)."""
    if module is None:
        return None
    relocates = DIALECTS[backend].relocates
    programs = {p.name: p for p in module.programs}
    lines: set[str] = set()
    for fn in module.functions:
        program = programs.get(fn.name)
        reads = any(isinstance(n, (ir.CoreRead, ir.TpField)) for n in ir.walk(fn.body))
        if program is not None and reads and (not relocates or _records_differ(program)):
            lines.update(target_kernels(program))
    return sorted(lines, key=tables.version_tuple) or None


def _records_differ(program: ir.ProgramDecl) -> bool:
    """Is the program's tracepoint record another struct on some promised
    kernel? Then even CO-RE compiles its offsets in (libbpf.shared_offset)."""
    target = program.attach.target if program.attach else None
    if program.kind != "tracepoint" or not target:
        return False
    records = set()
    for line in target_kernels(program):
        record = kernelbtf.tracepoint_record(kernelbtf.kernel_types(line), target)
        records.add(record.key if record else None)
    return len(records) > 1


@dataclass(frozen=True)
class Csum:
    """A checksum a header field write must fix."""

    header: str  # the header holding it (found by its parser when it is not the one written)
    offset: int  # of the checksum field from that header's start
    l4: bool  # an L4 checksum (tc: bpf_l4_csum_replace; l3: bpf_l3_csum_replace)
    pseudo: bool  # the written bytes are in its pseudo-header (an IP address)
    zero_none: bool  # 0 means "no checksum" (UDP over IPv4): leave it; a computed 0 is sent as 0xFFFF


@dataclass(frozen=True)
class FieldWrite:
    header: str
    field: tables.HeaderFieldSpec
    region: tuple[int, int]  # (offset, bytes): the 16-bit words the write changes
    own: Csum | None  # the header's own checksum
    pseudo: tuple[Csum, ...]  # L4 checksums whose pseudo-header holds this field


def field_write(header: str, name: str) -> FieldWrite:
    """What writing `name` of `header` touches, from tables.HEADERS."""
    spec = tables.HEADERS[header]
    field = spec.fields[name]
    start, end = field.offset & ~1, (field.offset + field.size + 1) & ~1
    own = None
    if spec.checksum and spec.checksum != name:
        own = Csum(header, spec.fields[spec.checksum].offset, spec.role == "l4", False, spec.zero_checksum)
    pseudo = ()
    if field.pseudo:
        pseudo = tuple(Csum(l4, tables.HEADERS[l4].fields[tables.HEADERS[l4].checksum].offset, True, True,
                            tables.HEADERS[l4].zero_checksum) for l4 in tables.pseudo_checked(header))
    return FieldWrite(header, field, (start, end - start), own, pseudo)


def packet_read(kind: tables.ProgramKind, body: list[ir.Expr]) -> tables.PacketRead | None:
    """How a program reads its packet: the kind's helper read, or, for a
    kind whose writes go through helpers, WRITE_READ when it writes."""
    if kind.packet_read or kind.packet_write != "helpers":
        return kind.packet_read
    writes = any(isinstance(n, ir.SetField) and type(n.value.type) is Header for n in ir.walk(body))
    return tables.WRITE_READ if writes else None


COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">="}


def max_header_bytes(name: str) -> int:
    """The most bytes a header can span: a length field's largest value
    (IPv4 with options: ihl 15 * 4 = 60), else its fixed size."""
    spec = tables.HEADERS[name]
    if spec.length:
        field, scale = spec.length
        return spec.fields[field].mask * scale
    return spec.min_len


def pull_bytes(headers: set[str], *, past_end: bool = False) -> int:
    """Bytes from the packet start that parsing `headers` may read: the L2
    header and its tags, the longest L3 header (L4 starts after IPv4
    options, or after IPv6 extension headers: up to MAX_IPV6_EXTENSION_END),
    and the L4 headers' fixed part, or their longest form when a `load`
    reads past their end (`past_end`: TCP options then count)."""
    l2 = sum(tables.HEADERS[h].min_len for h in tables.headers_with("l2"))
    tags = sum(tables.MAX_VLAN_TAGS * tables.HEADERS[t].min_len for t in tables.headers_with("tag"))
    if not any(above_l2(h) for h in headers):
        return l2 + (tags if set(headers) & set(tables.headers_with("tag")) else 0)
    l4s = [h for h in headers if h in tables.headers_with("l4")]
    walked = any(tables.HEADERS[outer].extensions for h in l4s for outer, _ in tables.HEADERS[h].via)
    l3 = max(max_header_bytes(h) for h in tables.headers_with("l3"))
    l3 = max(l3, tables.MAX_IPV6_EXTENSION_END) if walked else l3
    l4_bytes = max_header_bytes if past_end else (lambda h: tables.HEADERS[h].min_len)
    l4 = max((l4_bytes(h) for h in l4s), default=0)
    return l2 + tags + l3 + l4


def called_funcs(module: ir.Module) -> set[str]:
    """The defbpf-funcs some program calls, directly or through other functions."""
    bodies = {f.name: f.body for f in module.funcs}
    todo = [n.name for fn in module.functions for n in ir.walk(fn.body) if isinstance(n, ir.FuncCall)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen and name in bodies:
            seen.add(name)
            todo += [n.name for n in ir.walk(bodies[name]) if isinstance(n, ir.FuncCall)]
    return seen


def parses_after(body: list[ir.Expr], tail_call: ir.TailCall) -> bool:
    """A `(header …)` may run after this tail-call (it then needs fresh packet pointers)."""
    return any(isinstance(n, ir.Header) for n in ir.walk(runs_after(body, tail_call) or []))


def runs_after(body: list[ir.Expr], target: ir.Node) -> list[ir.Node] | None:
    """The nodes that may run after `target` in `body` (None: not in it):
    what follows it in each enclosing sequence, a loop's whole body again,
    never the other branch of an `if`."""
    for i, e in enumerate(body):
        inner = _runs_after_in(e, target)
        if inner is not None:
            return inner + list(body[i + 1:])
    return None


def _runs_after_in(e: ir.Node, target: ir.Node) -> list[ir.Node] | None:
    if e is target:
        return []
    parts = children(e)
    for i, part in enumerate(parts):
        inner = _runs_after_in(part, target)
        if inner is None:
            continue
        if isinstance(e, ir.Loop):
            return inner + e.body  # the next iteration
        if isinstance(e, (ir.If, ir.IfLet)) and part is not getattr(e, "cond", getattr(e, "value", None)):
            return inner  # a branch: the other one does not run
        return inner + parts[i + 1:]
    return None


def l3_anchor(body: list[ir.Expr]) -> ir.Expr | None:
    """Where a program locates L3, once: before the first statement of the
    innermost straight-line block that holds every parse above L2. Packet
    reads have no effects, so this gives each parser the answer it would
    find itself, and the verifier walks the VLAN/ethertype branches once
    instead of once per `header` form (and not across earlier code)."""

    def parses(e: ir.Node) -> bool:
        return any(isinstance(n, ir.Header) and above_l2(n.header) for n in ir.walk([e]))

    while True:
        holders = [e for e in body if parses(e)]
        if not holders:
            return None
        first = holders[0]
        if len(holders) == 1 and isinstance(first, ir.Begin):
            body = first.body
        elif len(holders) == 1 and isinstance(first, ir.Let) and not parses(first.value):
            body = first.body
        else:
            return first


def lpm_address_types(width: int, key: str | None) -> list[str]:
    """The IR types of an lpm key's address parts: the map's key type, or
    two u64 halves for 16-byte (IPv6) keys."""
    return [key] if key else ["u64"] * (width // 8)


def is_empty(e: ir.Expr) -> bool:
    return isinstance(e, ir.Begin) and not e.body


PURE_FORMS = {"int", "bool", "var", "compare", "not", "and", "or", "binary", "cast", "field", "ctx-field", "arg",
              "tp-field", "core-read"}


def is_pure_value(e: ir.Expr) -> bool:
    """Spelled inline without statements (so safe inside `&&`)."""
    return e.form in PURE_FORMS and all(is_pure_value(c) for c in children(e))


EFFECT_FORMS = {"call", "map-get", "func-call", "printk", *tables.HELPER_FORMS}


def has_effect(e: ir.Expr) -> bool:
    return any(n.form in EFFECT_FORMS for n in ir.walk([e]))


def children(e: ir.Node) -> list[ir.Node]:
    out = []
    for name in type(e).model_fields:
        child = getattr(e, name)
        if isinstance(child, ir.Node):
            out.append(child)
        elif isinstance(child, list):
            out.extend(c for c in child if isinstance(c, ir.Node))
    return out


def format_target(template: str, decl: ir.ProgramDecl) -> str:
    """Fill `{target}` (and `{category}`/`{name}` of "category/name") with
    the validated attach target."""
    if "{" not in template:
        return template
    target = (decl.attach.target if decl.attach else None) or tables.PROGRAM_KINDS[decl.kind].default_target
    assert target is not None and section_target_ok(target), "the checker validates attach targets"
    category, _, name = target.partition("/")
    return template.format(target=target, category=category, name=name)


def unparen(text: str) -> str:
    return text[1:-1] if balanced(text) else text


def balanced(cond: str) -> bool:
    """`(a == b)` is one parenthesised expression (not `(a) && (b)`)."""
    if not (cond.startswith("(") and cond.endswith(")")):
        return False
    depth = 0
    for i, ch in enumerate(cond):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(cond) - 1:
            return False
    return True


BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "rem": "%", "bit-and": "&", "bit-or": "|",
          "bit-xor": "^", "shl": "<<", "shr": ">>"}
NEGATE = {"==": "!=", ">=": "<", "!=": "==", "<": ">="}


@dataclass(frozen=True)
class Fill:
    """A helper that writes an array where it is stored (line_fill), with
    its arguments spelled: (current-comm) has none, a string read the
    address it copies from."""

    helper: tables.Helper
    args: list[str]

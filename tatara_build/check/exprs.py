"""Type checking of one `bpf-fn` body against its program's kind.

Every expression gets `type` filled in. Integer literals take the type the
context expects (a let value, a map key, the other operand of a comparison,
a cast); a literal with no context at all is an error asking for a cast, e.g.
`(u32 5)` — widths are always explicit. Both operands of a comparison or
arithmetic op must have the same type; there are no implicit conversions.
Errors are collected; an expression that failed gets the type `?`, which
unifies with anything so one mistake is reported once.
"""

from __future__ import annotations

import re
from ..records import dataclass
from typing import Callable, get_args

from .. import ir, mapdata, structs, tables
from ..errors import Diagnostic, Span, suggestion
from .kernels import target_kernels
from ..types import I32, I64, U32, U64
from .types import (BOOL, ERROR, NEVER, UNIT, Array, Header, Int, LpmKey, Option, Ref, Struct, Type, is_int, is_scalar,
                    parse, show, size_of, slot_bytes)

MAX_NESTING = 200  # keeps the recursive walk far from Python's stack limit


@dataclass(frozen=True)
class Binding:
    type: Type
    how: str  # "let", "loop", "if-let", "param"
    epoch: int = 0  # packet adjusts seen before the binding (headers: stale after one more)


@dataclass
class FuncInfo:
    """What a checked defbpf-func brings to each call site: its stack (own
    frame and its callees'), and the maps and helpers it uses, directly or
    through the functions it calls (the caller's :uses-maps and kind must
    allow them)."""

    decl: ir.FuncDecl
    index: int  # declaration order: a function may call only lower indexes
    stack: int = 0
    maps: dict[str, Span | None] = None  # name -> first use
    helpers: dict[str, Span | None] = None

    def __post_init__(self):
        self.maps = {} if self.maps is None else self.maps
        self.helpers = {} if self.helpers is None else self.helpers


class Problem(Exception):
    """Internal: abort checking one expression; recorded as a diagnostic."""

    def __init__(self, message: str, span: Span | None, *notes: str):
        self.diagnostic = Diagnostic(message, span, list(notes))


def set_type(e: ir.Node, t: Type) -> None:
    e.type = t


def needs_context(e: ir.Node) -> bool:
    """True for expressions whose type only the context can tell (literals)."""
    if isinstance(e, ir.Int):
        return True
    if isinstance(e, ir.Binary):
        return needs_context(e.left) and needs_context(e.right)
    return False


class FunctionChecker:
    """Checks a program body (`bpf-fn`, `program` its declaration) or, with
    `func`, a defbpf-func (`program` None: no context, no kind; the maps and
    helpers it uses are recorded in `func` and checked at each call)."""

    def __init__(self, fn: ir.BpfFn | ir.FuncDecl, program: ir.ProgramDecl | None, maps: dict[str, ir.MapDecl],
                 globals_: set[str], consts: dict[str, ir.ConstDecl] | None = None,
                 funcs: dict[str, FuncInfo] | None = None, func: FuncInfo | None = None,
                 calls: dict[str, list[str]] | None = None, license_: str | None = None,
                 layouts: dict[str, structs.Layout] | None = None):
        self.fn = fn
        self.layouts = layouts or {}  # defbpf-struct name -> layout (check_structs)
        self.program = program
        self.kind = tables.PROGRAM_KINDS[program.kind] if program is not None else None
        self.ctx = fn.ctx if isinstance(fn, ir.BpfFn) else None
        self.func = func
        self.maps = maps
        self.globals = globals_  # map/program/const/function/struct names: locals may not shadow them
        self.consts = consts or {}
        self.funcs = funcs or {}
        self.calls = calls or {}  # function -> functions its body calls (to name cycles)
        self.license = license_
        self.errors: list[Diagnostic] = []
        self.loops = 0
        self.depth = 0
        self.too_deep = False  # reported once: every operand past the limit is the same mistake
        self.stack = 0
        self.max_stack = 0
        self.stack_reported = False
        # The value being stored in place (an event record, a struct field):
        # the only place an array-valued helper such as (current-comm) may be.
        self.stored: ir.Node | None = None
        # id(node) -> why the context expects its type (said after a mismatch)
        self.expect_reason: dict[int, str] = {}
        # (adjust-head/-tail) seen so far in walk order: packet pointers
        # taken before one are invalid after it (the verifier forgets them).
        self.epoch = 0
        self.adjusted_at: Span | None = None
        # what ended each epoch (an adjust, or a tail-call that fell through)
        self.invalidated_by: list[tuple[str, Span | None]] = []

    # --- entry -----------------------------------------------------------------

    def run_func(self) -> list[Diagnostic]:
        """A defbpf-func: parameters are variables; the body's last
        expression is its result (or every path ends in (return VALUE))."""
        decl, env = self.fn, {}
        known = all([self.known_struct(p.param_type, f"parameter `{p.name}`", p.span) for p in decl.params]
                    + [self.known_struct(decl.returns, ":returns", decl.span)])
        if not known:
            return self.errors  # the body would only repeat it
        for p in decl.params:
            try:
                env = self.bind(env, p.name, Binding(parse(p.param_type), "param"), p.span)
            except Problem as problem:
                self.errors.append(problem.diagnostic)
                env = {**env, p.name: Binding(parse(p.param_type), "param")}  # one error, not one per use
            # a struct is passed by value: a copy in the function's frame
            self.push_stack(slot_bytes(parse(p.param_type), self.layouts), p.span)
        if decl.returns and decl.body:
            self.explain_result(decl)
        self.sequence(decl.body, env, decl_type(decl.returns))
        self.func.stack = self.max_stack
        return self.errors

    def explain_result(self, decl: ir.FuncDecl) -> None:
        """An `if` without ELSE last in a function gives no value on one path:
        the mismatch says that the last expression is the function's result."""
        reason = (f": the last expression is the result of defbpf-func `{decl.name}` (:returns {decl.returns}); "
                  "give every path a value (an ELSE branch) or end each with (return VALUE)")
        e = decl.body[-1]
        self.expect_reason[id(e)] = reason
        while isinstance(e, ir.If):
            e = e.otherwise
            self.expect_reason[id(e)] = reason

    def run(self) -> list[Diagnostic]:
        if self.fn.ctx in self.globals:
            self.error(f"context parameter `{self.fn.ctx}` has the name of a map or program; choose another name", self.fn.span)
        result = self.sequence(self.fn.body, {}, None)
        if result not in (NEVER, ERROR):
            last = self.fn.body[-1]
            self.error(
                f"`{self.fn.name}` can reach its end without returning: every path of a program body must end in "
                f"(return :action); the last expression has {show(result)}",
                last.span,
                "actions for " + self.kind.name + ": " + " ".join(f":{a}" for a in self.kind.actions),
            )
        return self.errors

    def invalidate(self, what: str, span: Span | None) -> None:
        """Packet pointers taken so far are dead from here on (headers bound before may not be read)."""
        self.epoch += 1
        self.invalidated_by.append((what, span))

    def pointers_die_in_tail_calls(self) -> bool:
        """A tail-call that falls through leaves no packet pointer valid on
        some kernels (the pinned 6.12's verifier clears them after
        bpf_tail_call; 5.10, 6.1 and 7.2 keep them); only kinds that read the
        packet through pointers care."""
        return self.kind is not None and self.kind.packet is not None and self.kind.packet_read is None

    def known_struct(self, spelling: str | None, what: str, span: Span | None) -> bool:
        """A parameter's or result's type names a struct declared in the file (else an error)."""
        t = decl_type(spelling)
        if type(t) is not Struct or t.name in self.layouts:
            return True
        name = t.name
        self.error(f"unknown type `{name}` for {what} of defbpf-func `{self.fn.name}`: an integer type, bool "
                   "or a defbpf-struct", span, *suggestion(name, self.layouts))
        return False

    def error(self, message: str, span: Span | None, *notes: str) -> None:
        self.errors.append(Diagnostic(message, span, list(notes)))

    # --- core walk ---------------------------------------------------------------

    def check(self, e: ir.Node, env: dict[str, Binding], expected: Type | str | None) -> Type:
        """Type of `e` (filled into e.type); `expected` is what the context needs
        (a spelling from a table or an IR declaration is read here)."""
        if type(expected) is str:
            expected = parse(expected)
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                if self.too_deep:
                    set_type(e, ERROR)
                    return ERROR
                self.too_deep = True
                raise Problem(f"expression nested more than {MAX_NESTING} deep", e.span)
            if self.kind is None and type(e) not in FUNC_FORMS:
                raise Problem(f"({e.form} …) needs a program (its context or kind); defbpf-func `{self.fn.name}` "
                              "has none: do it in the program and pass the values as arguments", e.span)
            t = RULES[type(e)](self, e, env, expected)
            if t != expected and isinstance(e, ir.Var) and type(t) is Ref and expected == t.target:
                t = expected  # a map value where a struct value is needed: a copy of it
            if isinstance(e, ir.HeaderField) and type(t) is Array and t != expected:
                raise Problem(f"{show(t)} can only be copied whole into a struct field of the same type, "
                              f"e.g. (make STRUCT :field (field v :{getattr(e, 'field', 'name')}))", e.span)
            if expected is not None and t not in (expected, NEVER, ERROR):
                raise Problem(f"type mismatch: expected {show(expected)}, found {show(t)}{self.expect_reason.get(id(e), '')}",
                              e.span, *cast_hint(t, expected))
        except Problem as p:
            self.errors.append(p.diagnostic)
            t = ERROR
        finally:
            self.depth -= 1
        set_type(e, t)
        return t

    def sequence(self, body: list[ir.Node], env: dict[str, Binding], expected: Type | None) -> Type:
        """Statements then a final value; code after return/break is an error."""
        t = UNIT
        for i, e in enumerate(body):
            if t == NEVER:
                self.error("unreachable expression: it follows a (return …) or (break)", e.span)
                return ERROR
            t = self.check(e, env, expected if i == len(body) - 1 else None)
        return t

    def pair(self, a: ir.Node, b: ir.Node, env: dict[str, Binding], expected: Type | None) -> tuple[Type, Type]:
        """Check two operands that must share a type; a literal takes the other's."""
        if expected is None and needs_context(a) and not needs_context(b):
            tb = self.check(b, env, None)
            ta = self.settled(a, tb) or self.check(a, env, tb if is_scalar(tb) else None)
        else:
            ta = self.check(a, env, expected)
            tb = self.settled(b, ta) or self.check(b, env, ta if is_scalar(ta) else expected)
        return ta, tb

    def settled(self, literal: ir.Node, other: Type) -> Type | None:
        """A literal next to a failed operand: don't report it a second time."""
        if other == ERROR and needs_context(literal):
            set_type(literal, ERROR)
            return ERROR
        return None

    def join(self, a: Type, b: Type, span: Span | None, what: str) -> Type:
        if a in (NEVER, ERROR):
            return b if a == NEVER else ERROR
        if b in (NEVER, ERROR) or a == b:
            return a if b != ERROR else ERROR
        raise Problem(f"{what} have different types: {show(a)} and {show(b)}", span)

    def push_stack(self, nbytes: int, span: Span | None) -> None:
        self.stack += nbytes
        if self.stack > self.max_stack:
            self.max_stack = self.stack
        if self.max_stack > tables.STACK_LIMIT and not self.stack_reported:
            self.stack_reported = True
            self.error(
                f"estimated stack use of `{self.fn.name}` reaches {self.max_stack} bytes here, over the "
                f"BPF limit of {tables.STACK_LIMIT}",
                span,
                "each variable and map key/value temporary counts as an 8-byte slot (struct values: their size, "
                "rounded up to 8)",
            )

    def bind(self, env: dict[str, Binding], name: str, binding: Binding, span: Span | None) -> dict[str, Binding]:
        if name == self.ctx:
            raise Problem(f"`{name}` is the program context; choose another variable name", span)
        if name in self.consts:
            raise Problem(f"variable `{name}` has the name of defbpf-const `{name}`; choose another name", span)
        if name in self.globals:
            raise Problem(f"variable `{name}` has the name of a map, program, function or struct; choose another name", span)
        return {**env, name: binding}

    # --- map access --------------------------------------------------------------

    def map_for(self, e: ir.Node, op: str) -> ir.MapDecl:
        m = self.maps.get(e.map)
        if m is None:
            raise Problem(f"unknown map `{e.map}`", e.span, *suggestion(e.map, self.maps))
        if self.program is None:  # a function: its caller's :uses-maps must list it
            self.func.maps.setdefault(e.map, e.span)
        elif e.map not in self.program.uses_maps:
            raise Problem(
                f"map `{e.map}` is not listed in :uses-maps of program `{self.program.name}`", e.span,
                f"add it: :uses-maps ({' '.join([*self.program.uses_maps, e.map])})",
            )
        missing = [t.name for t in map(decl_type, (m.key, m.value)) if type(t) is Struct and t.name not in self.layouts]
        if missing:  # reported at the map (check_map_structs)
            raise Problem(f"map `{m.name}` cannot be used: struct `{missing[0]}` has no valid declaration", e.span)
        ops = tables.MAP_KINDS[m.kind].ops
        if op not in ops:
            allowed = ", ".join(sorted(ops)) or "none (it is read from user space)"
            raise Problem(f"`{op}` is not supported on {m.kind} map `{m.name}`; allowed: {allowed}", e.span)
        return m

    def check_key(self, m: ir.MapDecl, key: ir.Node, env: dict[str, Binding]) -> None:
        """The key of a map operation: the map's key type; lpm-trie maps also
        take (lpm-key PREFIX ADDR) (a plain key is the full-length prefix)."""
        if isinstance(key, ir.LpmKey):
            if not mapdata.is_lpm(m):
                raise Problem(f"(lpm-key …) is a key of lpm-trie maps; `{m.name}` is a {m.kind} map keyed by {m.key}",
                              key.span, "write the key itself")
            bits = 8 * mapdata.lpm_data_bytes(m)
            self.check(key.prefix, env, U32)
            if isinstance(key.prefix, ir.Int) and isinstance(key.prefix.value, int) and key.prefix.value > bits:
                raise Problem(f"prefix of {key.prefix.value} bits is longer than the {bits}-bit addresses of `{m.name}`",
                              key.prefix.span)
            halves = m.key is None
            wanted = [U64, U64] if halves else [parse(m.key)]
            if len(key.address) != len(wanted):
                shape = "(lpm-key PREFIX HI LO), the address's two u64 halves" if halves else f"(lpm-key PREFIX ADDR), ADDR a {m.key}"
                raise Problem(f"lpm-trie `{m.name}` has {bits}-bit addresses: write {shape}", key.span)
            for part, t in zip(key.address, wanted):
                self.check(part, env, t)
            set_type(key, key_type(m))
            return
        if m.key is None:
            raise Problem(f"lpm-trie `{m.name}` has 16-byte (IPv6) keys: write (lpm-key PREFIX HI LO) with the "
                          "address's two u64 halves, e.g. (field ip6 :src-hi) and (field ip6 :src-lo)", key.span)
        self.check(key, env, parse(m.key))

    def map_temps(self, span: Span | None, *types: Type | None) -> None:
        """Key/value temporaries live on the stack only while the op runs."""
        nbytes = sum(slot_bytes(t, self.layouts) for t in types if t)
        self.push_stack(nbytes, span)
        self.stack -= nbytes


    def struct_field(self, name: str, field: str, span: Span | None) -> structs.FieldLayout:
        layout = self.layouts[name]  # struct types only come from known structs
        spec = layout.field(field)
        if spec is None:
            known = [f.name for f in layout.fields]
            raise Problem(f"struct `{name}` has no field `:{field}`", span, *suggestion(field, known),
                          "fields: " + " ".join(f":{f}" for f in known))
        return spec

    def map_value(self, e: ir.Node, env: dict[str, Binding], what: str) -> Type:
        """The struct behind `e` of set-field!/field-add!: a map value bound
        by if-let on map-lookup (`ref:struct:<n>`)."""
        t = self.check(e, env, None)
        if t == ERROR:
            return t
        if type(t) is not Ref:
            hint = ("a struct value is a copy: build the new value with (make …) and write it with map-set"
                    if type(t) is Struct else "bind one with (if-let (v (map-lookup MAP KEY)) …)")
            raise Problem(f"{what} writes to a map value bound by (if-let (v (map-lookup MAP KEY)) …); "
                          f"found {show(t)} (set on a non-map value)", e.span, hint)
        return t


def decl_type(spelling: str | None) -> Type | None:
    """The type an IR declaration (map key/value, parameter, cast) spells."""
    return None if spelling is None else parse(spelling)


def key_type(m: ir.MapDecl) -> Type | None:
    """The type of a map's key temporary: lpm-trie keys are the kernel's
    prefix-length + address struct (LpmKey of the address bytes)."""
    return LpmKey(mapdata.lpm_data_bytes(m)) if mapdata.is_lpm(m) else decl_type(m.key)


def cast_hint(found: Type, expected: Type) -> list[str]:
    if is_scalar(found) and is_int(expected):
        return [f"convert explicitly: ({expected.spell()} …)"]
    return []


# --- rules, one per IR node ---------------------------------------------------------

Rule = Callable[[FunctionChecker, ir.Node, dict, "Type | None"], "Type | str"]
RULES: dict[type, Rule] = {}


def rule(cls: type) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        RULES[cls] = fn
        return fn

    return register


@rule(ir.Int)
def _int(c: FunctionChecker, e: ir.Int, env, expected):
    if expected is None:
        raise Problem(f"cannot infer the integer type of {e.value}; write it with a width, e.g. (u32 {e.value})", e.span)
    if not is_int(expected):
        raise Problem(f"type mismatch: expected {show(expected)}, found integer literal {e.value}", e.span)
    if not expected.fits(e.value):
        raise Problem(f"integer {e.value} does not fit in {expected.spell()} ({expected.min} to {expected.max})", e.span)
    return expected


@rule(ir.Bool)
def _bool(c, e, env, expected):
    return BOOL


@rule(ir.Var)
def _var(c: FunctionChecker, e: ir.Var, env, expected):
    if e.name == c.ctx:
        raise Problem(
            f"the context `{e.name}` is not a value; use (header {e.name} :tcp) or (ctx-field {e.name} :len)", e.span
        )
    b = env.get(e.name)
    if b is None:
        const = c.consts.get(e.name)
        if const is not None:
            return parse(const.const_type)
        if e.name in c.funcs:
            raise Problem(f"`{e.name}` is a function; call it: ({e.name} …)", e.span)
        raise Problem(f"unknown variable `{e.name}`", e.span, *suggestion(e.name, [*env, *c.consts]))
    if b.epoch < c.epoch and type(b.type) is Header:
        what, at = c.invalidated_by[b.epoch]
        if what == "tail-call":
            raise Problem(f"header `{e.name}` was parsed before the tail-call at {at}; its pointer is invalid after a "
                          "tail-call that falls through (the verifier refuses it)", e.span,
                          "read the fields you need before the tail-call, or parse the header again after it")
        raise Problem(f"header `{e.name}` was parsed before the packet was adjusted (at {c.adjusted_at}); its "
                      "pointer is invalid after adjust-head/adjust-tail (the verifier refuses it)", e.span,
                      "read the fields you need before the adjust, e.g. (let ((ttl (field ip :ttl))) (adjust-head …) …)")
    return b.type


@rule(ir.Return)
def _return(c: FunctionChecker, e: ir.Return, env, expected):
    if c.kind is None:
        raise Problem(f"(return :{e.action}) ends a program; defbpf-func `{c.fn.name}` returns a value: "
                      "(return VALUE), or give the value as its last expression", e.span)
    if e.action not in c.kind.actions:
        known = list(c.kind.actions)
        raise Problem(
            f"unknown return action `:{e.action}` for {c.kind.name} programs", e.span,
            *suggestion(e.action, known), "known: " + " ".join(f":{a}" for a in known),
        )
    return NEVER


@rule(ir.ReturnValue)
def _return_value(c: FunctionChecker, e: ir.ReturnValue, env, expected):
    if c.kind is None:
        if c.fn.returns is None:
            raise Problem(f"defbpf-func `{c.fn.name}` has no :returns type, so it returns no value", e.span,
                          f"declare one: (defbpf-func {c.fn.name} (…) :returns u32 …)")
        c.check(e.value, env, parse(c.fn.returns))
        return NEVER
    c.check(e.value, env, parse(c.kind.return_type))
    if c.kind.return_range is not None:
        # The verifier checks the exit value's range for these kinds; the
        # checker can only vouch for a literal, so only a literal may be returned.
        lo, hi = c.kind.return_range
        value = e.value.value if isinstance(e.value, ir.Cast) else e.value
        if not (isinstance(value, ir.Int) and lo <= value.value <= hi):
            actions = " ".join(f":{a}" for a in c.kind.actions)
            raise Problem(f"{c.kind.name} programs may only return values in [{lo}, {hi}] (the verifier rejects "
                          f"any other exit value); return an action ({actions}) or a literal in that range",
                          e.span, "branch on the condition: (if COND (return :allow) (return :deny))")
    return NEVER


@rule(ir.Call)
def _call(c: FunctionChecker, e: ir.Call, env, expected):
    h = tables.HELPERS.get(e.helper)
    if h is None and e.helper in tables.HELPER_FORMS:
        raise Problem(f"`{e.helper}` is a form of its own: write {tables.HELPER_FORMS[e.helper].usage}", e.span)
    if h is None:
        raise Problem(f"unknown helper `{e.helper}`", e.span, *suggestion(e.helper, tables.HELPERS), "known: " + ", ".join(tables.HELPERS))
    if c.kind is None:
        c.func.helpers.setdefault(e.helper, e.span)
    elif e.helper not in c.kind.helpers:
        kinds = [k.name for k in tables.PROGRAM_KINDS.values() if e.helper in k.helpers]
        raise Problem(
            f"helper `{e.helper}` is not available to {c.kind.name} programs", e.span,
            "available: " + ", ".join(c.kind.helpers), f"`{e.helper}` is available to {', '.join(kinds)} programs"
        )
    returns = _string_destination(c, e, expected) if h.returns == tables.STR_READ else parse(h.returns)
    if type(returns) is Array and c.stored is not e:
        raise Problem(f"({e.helper}) gives an array ({h.returns}), written straight where it is stored: use it as the "
                      "value of (event-output MAP …) or as a struct field in (make …)", e.span)
    if len(e.args) != len(h.params):
        raise Problem(f"helper `{e.helper}` takes {len(h.params)} argument(s), got {len(e.args)}", e.span)
    for arg, t in zip(e.args, h.params):
        c.check(arg, env, parse(t))
    return returns


def _string_destination(c: FunctionChecker, e: ir.Call, expected: Type | None) -> Type:
    """A string read's type is the `(array u8 N)` field it fills: the helper
    is given that field's address and size, so nothing else can hold it."""
    usage = f"(make STRUCT … :field ({e.helper} PTR)) with :field an (array u8 N)"
    if c.stored is not e:
        where = f"here {show(expected)} is needed" if expected else "here its size is unknown"
        raise Problem(f"({e.helper} PTR) copies a string into the (array u8 N) struct field it is the value of; "
                      f"{where}", e.span, f"write {usage}")
    if type(expected) is not Array:
        raise Problem(f"({e.helper} PTR) takes its size from the (array u8 N) struct field it fills; an event "
                      "record of its own has no size", e.span, f"send a struct: {usage}")
    if expected.elem.bits != 8:
        raise Problem(f"({e.helper} PTR) fills a byte array, (array u8 N); this field is {show(expected)}", e.span)
    return expected


@rule(ir.Let)
def _let(c: FunctionChecker, e: ir.Let, env, expected):
    t = c.check(e.value, env, None)
    if type(t) is Ref and isinstance(e.value, ir.Var):
        t = t.target  # a copy of the map value
        set_type(e.value, t)
    if t != ERROR and not is_scalar(t) and type(t) is not Struct:
        raise Problem(f"`{e.name}` cannot be bound to {show(t)}; let binds integers, booleans and struct values",
                      e.value.span)
    inner = c.bind(env, e.name, Binding(t, "let", c.epoch), e.span)
    c.push_stack(slot_bytes(t, c.layouts), e.span)
    try:
        return c.sequence(e.body, inner, expected)
    finally:
        c.stack -= slot_bytes(t, c.layouts)


@rule(ir.If)
def _if(c: FunctionChecker, e: ir.If, env, expected):
    c.check(e.cond, env, BOOL)
    if expected is None and needs_context(e.then) and not needs_context(e.otherwise):
        to = c.check(e.otherwise, env, None)
        tt = c.check(e.then, env, to if is_scalar(to) else None)
    else:
        tt = c.check(e.then, env, expected)
        to = c.check(e.otherwise, env, expected if expected is not None or not is_scalar(tt) else tt)
    return c.join(tt, to, e.span, "the branches of this if")


@rule(ir.Compare)
def _compare(c: FunctionChecker, e: ir.Compare, env, expected):
    ta, tb = c.pair(e.left, e.right, env, None)
    if ERROR in (ta, tb):
        return BOOL
    if any(type(t) in (Struct, Ref) for t in (ta, tb)):
        raise Problem(f"cannot compare {show(ta)} with {show(tb)}: comparisons take integers (or booleans); "
                      "compare struct fields one by one, e.g. (= (field a :port) (field b :port))", e.span)
    if ta != tb:
        raise Problem(f"cannot compare {show(ta)} with {show(tb)}; convert one side, e.g. ({ta.spell()} …)", e.span)
    if not is_int(ta) and not (ta == BOOL and e.op in ("eq", "ne")):
        raise Problem(f"cannot order-compare {show(ta)} values", e.span)
    return BOOL


@rule(ir.Binary)
def _binary(c: FunctionChecker, e: ir.Binary, env, expected):
    ta, tb = c.pair(e.left, e.right, env, expected if expected is not None and is_int(expected) else None)
    if ERROR in (ta, tb):
        return ERROR
    if not is_int(ta) or not is_int(tb):
        raise Problem(f"`{e.op}` needs integer operands, found {show(ta)} and {show(tb)}", e.span)
    if ta != tb:
        raise Problem(f"`{e.op}` operands have different types {ta.spell()} and {tb.spell()}; convert one side, "
                      f"e.g. ({ta.spell()} …)", e.span)
    if e.op in ("shl", "shr") and isinstance(e.right, ir.Int) and not 0 <= e.right.value < ta.bits:
        raise Problem(f"shift amount {e.right.value} is out of range for {ta.spell()}", e.right.span)
    return ta


@rule(ir.And)
@rule(ir.Or)
def _and_or(c: FunctionChecker, e, env, expected):
    for arg in e.args:
        c.check(arg, env, BOOL)
    return BOOL


@rule(ir.Not)
def _not(c, e: ir.Not, env, expected):
    c.check(e.arg, env, BOOL)
    return BOOL


@rule(ir.Begin)
def _begin(c: FunctionChecker, e: ir.Begin, env, expected):
    return c.sequence(e.body, env, expected)


@rule(ir.Cast)
def _cast(c: FunctionChecker, e: ir.Cast, env, expected):
    target = parse(e.to)
    if needs_context(e.value):
        if target == BOOL:
            raise Problem("an integer literal cannot be cast to bool; write #t or #f", e.span)
        c.check(e.value, env, target)
        return target
    source = c.check(e.value, env, None)
    if source == ERROR:
        return target
    if not is_scalar(source):
        raise Problem(f"cannot cast {show(source)} to {e.to}", e.span)
    if target == BOOL and source != BOOL:
        raise Problem(f"cannot cast {source.spell()} to bool; compare instead, e.g. (!= x ({source.spell()} 0))", e.span)
    return target


@rule(ir.SetVar)
def _set(c: FunctionChecker, e: ir.SetVar, env, expected):
    b = env.get(e.name)
    if b is None and e.name in c.consts:
        raise Problem(f"`{e.name}` is a defbpf-const: it is read-only (the loader sets it before load)", e.span)
    if b is None:
        raise Problem(f"unknown variable `{e.name}`", e.span, *suggestion(e.name, env))
    if b.how not in ("let", "param"):
        raise Problem(f"`{e.name}` is a {b.how} variable; only let-bound variables can be changed with set!", e.span)
    c.check(e.value, env, b.type)
    return UNIT


@rule(ir.Loop)
def _loop(c: FunctionChecker, e: ir.Loop, env, expected):
    u32 = U32
    if not (0 <= e.start <= u32.max and 0 <= e.end <= u32.max):
        raise Problem("loop bounds must be u32 values (0 to 4294967295)", e.span)
    if e.end < e.start:
        raise Problem(f"loop end {e.end} is below its start {e.start}", e.span)
    if e.end - e.start > tables.MAX_LOOP_ITERATIONS:
        raise Problem(f"loop runs {e.end - e.start} times, over the limit of {tables.MAX_LOOP_ITERATIONS}", e.span)
    inner = c.bind(env, e.var, Binding(U32, "loop", c.epoch), e.span)
    c.push_stack(slot_bytes(U32), e.span)
    if any(isinstance(n, (ir.AdjustHead, ir.AdjustTail)) for n in ir.walk(e.body)):
        c.invalidate("adjust", e.span)  # the next iteration runs after this one's adjust
        c.adjusted_at = c.adjusted_at or e.span
    elif c.pointers_die_in_tail_calls() and any(isinstance(n, ir.TailCall) for n in ir.walk(e.body)):
        c.invalidate("tail-call", e.span)
    c.loops += 1
    try:
        c.sequence(e.body, inner, None)
    finally:
        c.loops -= 1
        c.stack -= slot_bytes(U32)
    return UNIT


@rule(ir.Break)
def _break(c: FunctionChecker, e, env, expected):
    if c.loops == 0:
        raise Problem("(break) outside of a loop", e.span)
    return NEVER


def _optional(c: FunctionChecker, e: ir.Node, env) -> Type:
    """Type of the value inside a (header …) or (map-lookup …)."""
    if isinstance(e, ir.Header):
        if c.kind is None:
            raise Problem(f"defbpf-func `{c.fn.name}` has no program context: parse headers in the program "
                          "and pass the fields it needs as arguments", e.span)
        if e.ctx != c.ctx:
            raise Problem(f"`{e.ctx}` is not the program context (`{c.ctx}`)", e.span)
        if c.kind.packet is None:
            raise Problem(f"packet access (header) is not available to {c.kind.name} programs", e.span)
        if c.kind.packet == "l3" and e.header in tables.L2_HEADERS:
            raise Problem(f"{c.kind.name} programs see packets from the IP header on; `:{e.header}` is not reachable", e.span)
        if c.adjusted_at is not None:
            raise Problem(f"(header …) after the packet was adjusted (at {c.adjusted_at}): a program parses its "
                          "packet before adjust-head/adjust-tail only", e.span,
                          "parse before the adjust, or tail-call a program that parses the new packet")
        inner = Header(e.header)
    elif isinstance(e, ir.Load):
        t = c.check(e.value, env, None)
        if t != ERROR and type(t) is not Header:
            raise Problem(f"(load …) reads past a parsed header bound by if-let, found {show(t)}", e.value.span)
        c.check(e.offset, env, U32)
        if isinstance(e.offset, ir.Int) and e.offset.value > tables.MAX_LOAD_OFFSET:
            raise Problem(f"load offset {e.offset.value} is past the limit of {tables.MAX_LOAD_OFFSET} bytes after the "
                          "header (the verifier needs a bound)", e.offset.span)
        inner = parse(e.to)
        c.map_temps(e.span, inner)
    elif isinstance(e, ir.MapLookup):
        m = c.map_for(e, "map-lookup")
        c.check_key(m, e.key, env)
        c.map_temps(e.span, key_type(m))
        inner = decl_type(m.value) or ERROR
        if type(inner) is Struct:
            inner = Ref(inner)  # a pointer into the map: field, set-field!, field-add!
    else:
        raise Problem("if-let needs (header ctx :name), (load header offset type) or (map-lookup map key) as its value",
                      e.span)
    set_type(e, Option(inner))
    return inner


@rule(ir.Header)
@rule(ir.MapLookup)
@rule(ir.Load)
def _needs_if_let(c, e, env, expected):
    what = {ir.Header: "(header …) can fail", ir.Load: "(load …) can be past the packet's end"}.get(
        type(e), "(map-lookup …) can find nothing")
    hint = ", or use map-get" if isinstance(e, ir.MapLookup) else ""
    raise Problem(f"{what}; use it through (if-let (name …) then else){hint}", e.span)


@rule(ir.IfLet)
def _if_let(c: FunctionChecker, e: ir.IfLet, env, expected):
    try:
        inner = _optional(c, e.value, env)
    except Problem as p:
        c.errors.append(p.diagnostic)
        set_type(e.value, ERROR)
        inner = ERROR
    then_env = c.bind(env, e.name, Binding(inner, "if-let", c.epoch), e.span)
    tt = c.check(e.then, then_env, expected)
    to = c.check(e.otherwise, env, expected if expected is not None or not is_scalar(tt) else tt)
    return c.join(tt, to, e.span, "the branches of this if-let")


@rule(ir.HeaderField)
def _field(c: FunctionChecker, e: ir.HeaderField, env, expected):
    t = c.check(e.value, env, None)
    if t == ERROR:
        return ERROR
    if type(t) in (Struct, Ref):
        return parse(c.struct_field(struct_of(t).name, e.field, e.span).type)
    return parse(header_field(e, header_of(t, e, "field")).type)


def struct_of(t: Type) -> Struct:
    """The struct of a struct value or of a map value pointing at one."""
    return t.target if type(t) is Ref else t


def header_of(t: Type, e: ir.Node, form: str) -> str:
    """The header a `field`/`set-field!` operand's type names."""
    if type(t) is not Header:
        raise Problem(f"({form} …) needs a parsed header bound by if-let, a struct value or a map value bound by "
                      f"if-let on map-lookup, found {show(t)}", e.value.span)
    return t.name


def header_field(e: ir.Node, name: str) -> tables.HeaderFieldSpec:
    fields = tables.HEADERS[name].fields
    spec = fields.get(e.field)
    if spec is None:
        raise Problem(
            f"unknown {name} field `:{e.field}`", e.span, *suggestion(e.field, fields), "known: " + " ".join(f":{f}" for f in fields)
        )
    return spec


@rule(ir.CtxField)
def _ctx_field(c: FunctionChecker, e: ir.CtxField, env, expected):
    if c.kind is None:
        raise Problem(f"defbpf-func `{c.fn.name}` has no program context: read (ctx-field …) in the program "
                      "and pass the value as an argument", e.span)
    if e.ctx != c.ctx:
        raise Problem(f"`{e.ctx}` is not the program context (`{c.ctx}`)", e.span)
    fields = c.kind.ctx_fields
    spec = fields.get(e.field)
    if spec is None:
        known = " ".join(f":{f}" for f in fields) or "none"
        raise Problem(f"{c.kind.name} programs have no context field `:{e.field}`", e.span, *suggestion(e.field, fields), "known: " + known)
    return parse(spec.type)


@rule(ir.SetField)
def _set_field(c: FunctionChecker, e: ir.SetField, env, expected):
    t = c.check(e.value, env, None)
    if t == ERROR:
        return UNIT
    if type(t) in (Struct, Ref):
        return _set_map_field(c, e, t, env)
    name = header_of(t, e, "set-field!")
    if c.kind.packet_write is None:
        raise Problem(f"{c.kind.name} programs cannot write packet data (the kernel gives them read-only packet "
                      "access); packet writes are for "
                      + ", ".join(k.name for k in tables.PROGRAM_KINDS.values() if k.packet_write), e.span)
    spec = header_field(e, name)
    fields = tables.HEADERS[name].fields
    writable = [f for f, s in fields.items() if s.writable]
    if not spec.writable:
        raise Problem(f"{name} field `:{e.field}` is read-only: parsing, framing or checksums depend on it",
                      e.span, "writable " + name + " fields: " + (" ".join(f":{f}" for f in writable) or "none"))
    ft = parse(spec.type)
    c.check(e.new, env, ft)
    bits = tables.field_bits(spec)
    if isinstance(e.new, ir.Int) and ft != BOOL and bits < ft.bits and not 0 <= e.new.value < 1 << bits:
        raise Problem(f"{e.new.value} does not fit the {bits}-bit field {name} `:{e.field}` (0 to {(1 << bits) - 1})",
                      e.new.span, "a computed value keeps its low bits only")
    c.map_temps(e.span, ft)
    return UNIT


@rule(ir.SetCtxField)
def _set_ctx_field(c: FunctionChecker, e: ir.SetCtxField, env, expected):
    if e.ctx != c.fn.ctx:
        raise Problem(f"`{e.ctx}` is not the program context (`{c.fn.ctx}`)", e.span)
    fields = c.kind.ctx_fields
    writable = [f for f, s in fields.items() if s.writable]
    spec = fields.get(e.field)
    if spec is None:
        known = " ".join(f":{f}" for f in fields) or "none"
        raise Problem(f"{c.kind.name} programs have no context field `:{e.field}`", e.span,
                      *suggestion(e.field, writable or fields), "writable: " + (" ".join(f":{f}" for f in writable) or "none"),
                      "readable: " + known)
    if not spec.writable:
        raise Problem(f"context field `:{e.field}` of {c.kind.name} programs is read-only (the verifier refuses the write)",
                      e.span, "writable: " + (" ".join(f":{f}" for f in writable) or "none"))
    c.check(e.value, env, parse(spec.type))
    return UNIT


@rule(ir.MapGet)
def _map_get(c: FunctionChecker, e: ir.MapGet, env, expected):
    m = c.map_for(e, "map-get")
    c.check_key(m, e.key, env)
    c.map_temps(e.span, key_type(m))
    return decl_type(m.value) or ERROR


@rule(ir.MapSet)
@rule(ir.MapAdd)
def _map_set(c: FunctionChecker, e, env, expected):
    m = c.map_for(e, e.form)
    value = decl_type(m.value)
    if isinstance(e, ir.MapAdd) and type(value) is Struct:
        raise Problem(f"map-add adds to an integer value; map `{m.name}` holds struct `{value.name}`",
                      e.span, f"add to a field: (if-let (v (map-lookup {m.name} KEY)) (field-add! v :FIELD DELTA))")
    c.check_key(m, e.key, env)
    c.check(e.value, env, value)
    c.map_temps(e.span, key_type(m), value)
    return UNIT


@rule(ir.MapDelete)
def _map_delete(c: FunctionChecker, e: ir.MapDelete, env, expected):
    m = c.map_for(e, "map-delete")
    c.check_key(m, e.key, env)
    c.map_temps(e.span, key_type(m))
    return UNIT


@rule(ir.LpmKey)
def _lpm_key(c, e, env, expected):
    raise Problem("(lpm-key …) is only the key of an lpm-trie map operation, "
                  "e.g. (map-get blocklist (lpm-key 24 addr))", e.span)


@rule(ir.EventOutput)
def _event_output(c: FunctionChecker, e: ir.EventOutput, env, expected):
    m = c.map_for(e, "event-output")
    if c.kind is None and m.kind == "perf-event-array":
        raise Problem(f"a perf-event-array output needs the program context, which defbpf-func `{c.fn.name}` "
                      "does not have: output from the program", e.span)
    c.stored = e.value
    if m.value is not None:
        c.expect_reason[id(e.value)] = (f": event map `{m.name}` declares :value {show(decl_type(m.value))} ({m.span}), "
                                        "the type of every record sent to it")
    try:
        t = c.check(e.value, env, decl_type(m.value))
    finally:
        c.stored = None
    if t == ERROR:
        return UNIT
    size = c.layouts[t.name].size if type(t) is Struct and t.name in c.layouts else size_of(t)
    if size is None or t == BOOL:
        raise Problem(f"event-output sends an integer, a struct or (current-comm); found {show(t)}", e.value.span)
    if tables.MAP_KINDS[m.kind].events == "reserve":
        record = (size + tables.RINGBUF_HEADER + 7) // 8 * 8
        if record > m.max_entries:
            raise Problem(f"a {size}-byte event does not fit in ring-buf `{m.name}` of {m.max_entries} bytes "
                          f"(each record also takes an {tables.RINGBUF_HEADER}-byte header)", e.value.span,
                          "raise the map's :max-entries (a power of two)")
        # The record is written in place in the ring buffer; only a scalar
        # is computed first (a register or one stack slot).
        c.map_temps(e.span, t if is_scalar(t) else None)
    else:
        c.map_temps(e.span, t)  # built on the stack, copied by the helper
    return UNIT


@rule(ir.Make)
def _make(c: FunctionChecker, e: ir.Make, env, expected):
    layout = c.layouts.get(e.struct)
    if layout is None:
        raise Problem(f"unknown struct `{e.struct}`", e.span, *suggestion(e.struct, c.layouts))
    specs = [c.struct_field(e.struct, f, e.span) for f in e.fields]
    in_place = c.stored is e  # written straight into a ring buffer record
    for spec, value in zip(specs, e.values):
        ft = parse(spec.type)
        # an array field may be filled in place by (current-comm)
        c.stored = value if type(ft) is Array else None
        try:
            c.check(value, env, ft)
        finally:
            c.stored = None
    t = Struct(e.struct)
    if not in_place:
        c.map_temps(e.span, t)  # the value is built on the stack
    return t


def _set_map_field(c: FunctionChecker, e: ir.SetField, t: Type, env) -> Type:
    """set-field! on a struct: only a map value (Ref) is written through."""
    if type(t) is not Ref:
        raise Problem(f"set-field! writes to a map value bound by (if-let (v (map-lookup MAP KEY)) …); "
                      f"found {show(t)} (set on a non-map value)", e.value.span,
                      "a struct value is a copy: build the new value with (make …) and write it with map-set")
    ft = parse(c.struct_field(t.target.name, e.field, e.span).type)
    if type(ft) is Array:
        raise Problem(f"set-field! cannot write array field `:{e.field}`; write the whole value with map-set "
                      "(make STRUCT … :field …)", e.span)
    c.check(e.new, env, ft)
    return UNIT


@rule(ir.FieldAdd)
def _field_add(c: FunctionChecker, e: ir.FieldAdd, env, expected):
    t = c.map_value(e.value, env, "field-add!")
    if t == ERROR:
        return UNIT
    ft = parse(c.struct_field(t.target.name, e.field, e.span).type)
    if not is_int(ft):
        raise Problem(f"field-add! adds to an integer field; `:{e.field}` is {show(ft)}", e.span)
    c.check(e.delta, env, ft)
    return UNIT


# --- kernel arguments and types (tables.ProgramKind.args, kernelbtf) ----------------------


def kernel_types(line: str):
    from .. import kernelbtf
    from ..errors import ToolchainError

    try:
        return kernelbtf.kernel_types(line)
    except kernelbtf.KernelDataError as e:
        raise ToolchainError(str(e)) from None


def _target(c: FunctionChecker) -> str:
    return (c.program.attach.target if c.program.attach else None) or ""


@rule(ir.Arg)
def _arg(c: FunctionChecker, e: ir.Arg, env, expected):
    if e.ctx != c.fn.ctx:
        raise Problem(f"`{e.ctx}` is not the program context (`{c.fn.ctx}`)", e.span)
    access = c.kind.args
    if access is None:
        with_args = [k.name for k in tables.PROGRAM_KINDS.values() if k.args]
        raise Problem(f"{c.kind.name} programs have no arguments to read with (arg …)", e.span,
                      "arguments exist for: " + ", ".join(with_args))
    target = _target(c)
    if access.targets and not any(re.fullmatch(t, target) for t in access.targets):
        notes = ["read the fields of this tracepoint by name: (tp-field ctx :field)"] if c.kind.tp_fields else []
        raise Problem(f"(arg ctx N) reads {access.what}; `{target}` is not a syscall-entry tracepoint "
                      "(syscalls/sys_enter_*)", e.span, *notes)
    if access.offsets is not None:
        if not 0 <= e.index < len(access.offsets):
            raise Problem(f"argument {e.index} is out of range: {c.kind.name} programs read {access.what}, "
                          f"numbered 0 to {len(access.offsets) - 1}", e.span)
        return U64
    for line in target_kernels(c.program):
        arity = kernel_types(line).lsm_hooks.get(target)
        if arity is None:
            raise Problem(f"kernel {line} has no LSM hook `{target}` (no bpf_lsm_{target} in its BTF)", e.span)
        if not 0 <= e.index < arity:
            raise Problem(f"argument {e.index} is out of range: LSM hook `{target}` takes {arity} argument(s) on "
                          f"kernel {line}, numbered 0 to {arity - 1}", e.span)
    return U64


@rule(ir.TpField)
def _tp_field(c: FunctionChecker, e: ir.TpField, env, expected):
    from .. import kernelbtf

    if e.ctx != c.fn.ctx:
        raise Problem(f"`{e.ctx}` is not the program context (`{c.fn.ctx}`)", e.span)
    if not c.kind.tp_fields:
        raise Problem(f"(tp-field …) reads tracepoint records; {c.kind.name} programs have none", e.span,
                      *(["read arguments with (arg ctx N)"] if c.kind.args else []))
    target = _target(c)
    access = c.kind.args
    if access is not None and any(re.fullmatch(t, target) for t in access.targets):
        raise Problem(f"`{target}` is a syscall-entry tracepoint: read its arguments with (arg ctx N), "
                      "N the syscall argument's position (e.g. openat's flags: (arg ctx 2))", e.span)
    found: str | None = None
    for line in target_kernels(c.program):
        types = kernel_types(line)
        record = kernelbtf.tracepoint_record(types, target)
        struct = kernelbtf.TP_RECORD.format(target.partition("/")[2])
        if record is None:
            known = sorted(types.tp_records)
            raise Problem(f"kernel {line} has no tracepoint `{target}` whose record tp-field can place (no "
                          f"`struct {struct}` in its BTF, and no event class of that name in its image)", e.span,
                          *suggestion(target, known),
                          "tp-field reads the kernel's built-in tracepoints; a module's are not in the image")
        fields = kernelbtf.tracepoint_fields(record, target)
        name = kernelbtf.tracepoint_member(fields, e.field)
        if name is None:
            raise Problem(f"tracepoint `{target}` has no field `{e.field}` on kernel {line}", e.span,
                          *suggestion(e.field, fields), "fields: " + " ".join(f":{f}" for f in fields))
        member = fields[name]
        # a __data_loc string by its own name: its address, for (probe-read-kernel-str …)
        t = "u64" if name != e.field else kernelbtf.value_type(member.type)
        if t is None or member.bitfield:
            raise Problem(f"field `{e.field}` of tracepoint `{target}` is {kernelbtf.describe_type(member.type)} on "
                          f"kernel {line}: tp-field reads integers, enums and pointers", e.span)
        if found is not None and t != found:
            raise Problem(f"field `{e.field}` of `{target}` is {found} on one promised kernel and {t} on kernel {line}",
                          e.span, "promise kernels that agree, or read it per kernel in separate programs")
        found = t
    return decl_type(found)  # kernelbtf.value_type spells integer types


def path_suggestion(word: str, choices: list[str]) -> list[str]:
    """The closest field, or the closest path one embedded struct down
    (`sk_prot` -> `:__sk_common :skc_prot`), whichever is closer."""
    import difflib

    spelled = {c.rsplit(":", 1)[-1]: c for c in reversed(choices)}  # field name -> how to write it
    close = difflib.get_close_matches(word, list(spelled), n=1)
    return [f"did you mean `:{spelled[close[0]]}`?" if " " in spelled[close[0]] else f"did you mean `{close[0]}`?"] \
        if close else []


@rule(ir.CoreRead)
def _core_read(c: FunctionChecker, e: ir.CoreRead, env, expected):
    from .. import kernelbtf

    if not c.kind.kernel_reads:
        readers = [k.name for k in tables.PROGRAM_KINDS.values() if k.kernel_reads]
        raise Problem(f"{c.kind.name} programs cannot read kernel memory: core-read is for tracing kinds "
                      f"({', '.join(readers)})", e.span)
    c.check(e.value, env, U64)
    found: str | None = None
    for line in target_kernels(c.program):
        types = kernel_types(line)
        try:
            hops = kernelbtf.resolve_path(types, e.struct, e.fields)
        except kernelbtf.PathError as p:
            word = e.struct if p.index < 0 else str(e.fields[min(p.index, len(e.fields) - 1)])
            raise Problem(str(p) + (f" (promised by program `{c.program.name}`)" if c.program.kernels or c.program.kernel else ""),
                          e.span, *path_suggestion(word, p.choices)) from None
        t = kernelbtf.value_type(hops[-1].type)
        if found is not None and t != found:
            raise Problem(f"`{e.struct}.{'.'.join(map(str, e.fields))}` is {found} on one promised kernel and {t} on kernel "
                          f"{line}", e.span, "promise kernels that agree on the field's type")
        found = t
    c.map_temps(e.span, U64)  # the read's destination lives on the stack
    return decl_type(found)


# --- helper forms (tables.HELPER_FORMS) ---------------------------------------------


def helper_form(c: FunctionChecker, e: ir.Node) -> tables.HelperForm:
    """The form's table entry, after checking that this kind may use it and
    that its context argument (if any) is the program's."""
    f = tables.HELPER_FORMS[e.form]
    if e.form not in c.kind.forms:
        kinds = [k.name for k in tables.PROGRAM_KINDS.values() if e.form in k.forms]
        raise Problem(f"({e.form} …) ({f.kernel_fn}) is not available to {c.kind.name} programs "
                      f"(only to {', '.join(kinds)})", e.span)
    ctx = getattr(e, "ctx", None)
    if ctx is not None and ctx != c.fn.ctx:
        raise Problem(f"`{ctx}` is not the program context (`{c.fn.ctx}`)", e.span, f"write {f.usage}")
    return f


def form_map(c: FunctionChecker, e: ir.Node) -> ir.MapDecl:
    """The map of a helper form: declared, in :uses-maps, of a kind the form takes."""
    m = c.maps.get(e.map)
    if m is not None and e.form not in tables.MAP_KINDS[m.kind].ops:
        kinds = [k.name for k in tables.MAP_KINDS.values() if e.form in k.ops]
        raise Problem(f"({e.form} …) needs a {' or '.join(kinds)} map; `{m.name}` is a {m.kind} map", e.span)
    return c.map_for(e, e.form)


@rule(ir.Redirect)
def _redirect(c: FunctionChecker, e: ir.Redirect, env, expected):
    helper_form(c, e)
    if e.ingress and c.kind.name not in tables.REDIRECT_INGRESS_KINDS:
        raise Problem(f":ingress (BPF_F_INGRESS) is for {', '.join(tables.REDIRECT_INGRESS_KINDS)} programs; "
                      f"{c.kind.name} redirects transmit only", e.span)
    c.check(e.ifindex, env, U32)
    return parse(c.kind.return_type)


@rule(ir.RedirectMap)
def _redirect_map(c: FunctionChecker, e: ir.RedirectMap, env, expected):
    helper_form(c, e)
    m = form_map(c, e)
    c.check(e.key, env, decl_type(m.key) or U32)
    if e.fallback is not None:
        action = c.kind.actions.get(e.fallback)
        fits_flags = [a for a in c.kind.actions.values() if 0 <= a.value < 4]
        if action is None or action not in fits_flags:
            raise Problem(f"the fallback of redirect-map is the action returned when the slot is empty, one of "
                          + " ".join(f":{a.name}" for a in fits_flags) + f"; got :{e.fallback}", e.span)
    return parse(c.kind.return_type)


@rule(ir.TailCall)
def _tail_call(c: FunctionChecker, e: ir.TailCall, env, expected):
    helper_form(c, e)
    m = form_map(c, e)
    c.check(e.index, env, U32)
    if isinstance(e.index, ir.Int) and e.index.value >= m.max_entries:
        raise Problem(f"slot {e.index.value} is beyond :max-entries {m.max_entries} of `{m.name}`: the tail call "
                      "would always fall through", e.index.span)
    if c.pointers_die_in_tail_calls():
        c.invalidate("tail-call", e.span)
    return UNIT


@rule(ir.AdjustHead)
@rule(ir.AdjustTail)
def _adjust(c: FunctionChecker, e, env, expected):
    helper_form(c, e)
    c.check(e.delta, env, I32)
    c.invalidate("adjust", e.span)
    c.adjusted_at = c.adjusted_at or e.span
    return I64


@rule(ir.GetStackId)
def _get_stackid(c: FunctionChecker, e: ir.GetStackId, env, expected):
    helper_form(c, e)
    form_map(c, e)
    if e.flags is not None:
        c.check(e.flags, env, U64)
        if isinstance(e.flags, ir.Int) and e.flags.value & ~tables.STACKID_FLAGS:
            raise Problem(f"get-stackid flags {e.flags.value:#x} has bits the kernel refuses (-EINVAL at run time); "
                          f"allowed: {tables.STACKID_FLAGS:#x} (frames to skip 0-255, 256 user stack, "
                          "512 fast compare, 1024 reuse the id)", e.flags.span)
    return I64
@rule(ir.FuncCall)
def _func_call(c: FunctionChecker, e: ir.FuncCall, env, expected):
    callee = c.funcs.get(e.name)
    if c.func is not None and (callee is None or callee.index >= c.func.index) and e.name in c.calls:
        me = c.fn.name
        if e.name == me:
            raise Problem(f"recursion: `{me}` calls itself; BPF has no recursion (the verifier refuses it)", e.span)
        cycle = call_path(c.calls, e.name, me)
        if cycle:
            raise Problem(f"recursion: {' -> '.join([me, *cycle])}; functions cannot call themselves, "
                          "directly or through others", e.span)
        raise Problem(f"`{e.name}` is declared after `{me}`: a function may call only functions declared "
                      "before it", e.span, f"move (defbpf-func {e.name} …) above (defbpf-func {me} …)")
    if callee is None:
        raise Problem(f"unknown function `{e.name}`", e.span, *suggestion(e.name, c.calls))
    decl = callee.decl
    if len(e.args) != len(decl.params):
        raise Problem(f"function `{e.name}` takes {len(decl.params)} argument(s), got {len(e.args)}", e.span)
    for arg, p in zip(e.args, decl.params):
        pt = parse(p.param_type)
        unknown = type(pt) is Struct and pt.name not in c.layouts  # reported at the function
        c.expect_reason[id(arg)] = f" for parameter `{p.name}` of `{e.name}`"
        c.check(arg, env, None if unknown else pt)
    if c.func is not None:
        for name, span in callee.maps.items():
            c.func.maps.setdefault(name, span)
        for name, span in callee.helpers.items():
            c.func.helpers.setdefault(name, span)
    else:
        missing = [m for m in callee.maps if m not in c.program.uses_maps]
        if missing:
            raise Problem(f"function `{e.name}` uses map(s) {', '.join(missing)}, not listed in :uses-maps of "
                          f"program `{c.program.name}`", e.span,
                          f"add them: :uses-maps ({' '.join([*c.program.uses_maps, *missing])})")
        refused = [h for h in callee.helpers if h not in c.kind.helpers]
        if refused:
            raise Problem(f"function `{e.name}` calls helper(s) {', '.join(refused)}, not available to "
                          f"{c.kind.name} programs", e.span, "available: " + ", ".join(c.kind.helpers))
    # Inlined: the callee's frame sits on the caller's stack while it runs.
    c.push_stack(callee.stack, e.span)
    c.stack -= callee.stack
    return decl_type(decl.returns) or UNIT


def call_path(calls: dict[str, list[str]], start: str, goal: str) -> list[str] | None:
    """The functions from `start` to `goal` along calls, e.g. [g, h, f]; None when none."""
    seen, stack = set(), [(start, [start])]
    while stack:
        name, path = stack.pop()
        if name == goal:
            return path
        if name in seen:
            continue
        seen.add(name)
        stack += [(n, [*path, n]) for n in reversed(calls.get(name, []))]
    return None


@rule(ir.Printk)
def _printk(c: FunctionChecker, e: ir.Printk, env, expected):
    if c.license is not None and c.license not in tables.GPL_COMPATIBLE:
        raise Problem(f"printk (bpf_trace_printk) is GPL-only: the file's programs have license {c.license!r}",
                      e.span, "GPL-compatible: " + ", ".join(tables.GPL_COMPATIBLE))
    conversions = printk_conversions(e.format)
    if isinstance(conversions, str):
        raise Problem(conversions, e.span)
    if len(e.args) > tables.PRINTK_MAX_ARGS:
        raise Problem(f"printk takes at most {tables.PRINTK_MAX_ARGS} arguments (bpf_trace_printk), "
                      f"got {len(e.args)}", e.span)
    if len(conversions) != len(e.args):
        raise Problem(f"printk format has {len(conversions)} conversion(s) but {len(e.args)} argument(s) follow",
                      e.span)
    for i, (conv, arg) in enumerate(zip(conversions, e.args), start=1):
        allowed = tables.PRINTK_CONVERSIONS[conv]
        widest = [t for t in allowed if t != "bool"][-1]  # what a bare literal is printed as
        t = c.check(arg, env, parse(widest) if needs_context(arg) else None)
        if t in (ERROR, NEVER):
            continue
        if t.spell() not in allowed:  # the table names the types each conversion formats
            fits_ = [k for k, ts in tables.PRINTK_CONVERSIONS.items() if t.spell() in ts]
            raise Problem(f"printk argument {i} is {show(t)} but `%{conv}` formats {' or '.join(allowed)}",
                          arg.span, *([f"for {t.spell()} write %{' or %'.join(fits_[:2])}"] if fits_ else []))
    return UNIT


def printk_conversions(fmt: str) -> list[str] | str:
    """The conversions of a printk format, in order (`%%` is none), or why
    the format is refused."""
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] != "%":
            i += 1
            continue
        if fmt.startswith("%%", i):
            i += 2
            continue
        conv = next((k for k in sorted(tables.PRINTK_CONVERSIONS, key=len, reverse=True) if fmt.startswith(k, i + 1)),
                    None)
        if conv is None:
            bad = fmt[i:i + 4]
            return (f"printk format: unsupported conversion {bad!r} at character {i + 1}; allowed: "
                    + " ".join(f"%{k}" for k in tables.PRINTK_CONVERSIONS) + " %% (no flags or widths)")
        out.append(conv)
        i += 1 + len(conv)
    return out


# What a defbpf-func body may hold (the rest needs a program's context or kind).
# Header, ctx-field and (return :action) have rules of their own that say why not.
FUNC_FORMS = {ir.Int, ir.Bool, ir.Var, ir.Begin, ir.Let, ir.If, ir.Compare, ir.And, ir.Or, ir.Not, ir.Binary,
              ir.Cast, ir.SetVar, ir.Loop, ir.Break, ir.Call, ir.MapGet, ir.MapSet, ir.MapAdd, ir.MapDelete,
              ir.MapLookup, ir.IfLet, ir.HeaderField, ir.Return, ir.ReturnValue, ir.EventOutput, ir.LpmKey,
              ir.FuncCall, ir.Printk, ir.Header, ir.CtxField, ir.Make, ir.SetField, ir.FieldAdd}

_missing = [cls for cls in get_args(get_args(ir.Expr)[0]) if cls not in RULES]
assert not _missing, f"checker has no rule for {_missing}"

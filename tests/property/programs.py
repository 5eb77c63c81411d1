"""Well-typed random tatara-lisp programs, drawn from the checker's own
tables (program kinds, their actions, helpers and context fields, map kinds
and the operations each allows, header fields, integer types), for the
property "checker-accepted means verifier-accepted".

`program(rng, name)` returns one source file (maps + one program) built by
a type-directed walk: every expression is generated for the type its
context needs, so the checker should accept it; a rejection is itself a
finding (the generator or the checker is wrong). Literals always carry
their width, e.g. `(u32 5)`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tatara_build import mapdata, tables

INTS = list(tables.INT_TYPES)
MAP_FORMS = frozenset({"map-get", "map-lookup", "map-set", "map-delete", "map-add", "event-output"})
ARITH = ["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"]
COMPARE = ["=", "!=", "<", ">", "<=", ">="]
# Kinds the generator covers: every kind; the ones with packets get headers.
KINDS = list(tables.PROGRAM_KINDS)
HEADERS = list(tables.HEADERS)
MAX_DEPTH = 3
ARRAYS = ("array", "per-cpu-array")
EVENTS = ("ring-buf", "perf-event-array")
TARGETS = {"kprobe": "do_sys_openat2", "tracepoint": "syscalls/sys_enter_openat", "lsm": "file_open",
           "xdp": "eth0", "tc": "eth0", "cgroup-skb": "ingress"}


@dataclass
class Map:
    name: str
    kind: str
    key: str | None
    value: str | None
    key_size: int | None = None

    @property
    def ops(self) -> frozenset[str]:
        # the map forms this generator writes (helper forms such as redirect-map are not generated)
        return tables.MAP_KINDS[self.kind].ops & MAP_FORMS


@dataclass
class Scope:
    kind: tables.ProgramKind
    maps: list[Map]
    vars: dict[str, str] = field(default_factory=dict)  # name -> type (let: settable)
    settable: set[str] = field(default_factory=set)
    headers: dict[str, str] = field(default_factory=dict)  # var -> header name
    loops: int = 0
    counter: int = 0
    stack: int = 0  # 8-byte slots in use along this path

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"


def literal(rng: random.Random, t: str) -> str:
    info = tables.INT_TYPES[t]
    value = rng.choice([0, 1, 2, 7, info.max, info.min, rng.randint(info.min, info.max)])
    return f"({t} {value})"


def int_expr(rng: random.Random, s: Scope, t: str, depth: int) -> str:
    """An expression of integer type t."""
    choices = ["lit", "lit"]
    if any(vt == t for vt in s.vars.values()):
        choices += ["var"] * 3
    if depth < MAX_DEPTH:
        choices += ["arith", "arith", "cast", "if"]
        if [h for h in s.kind.helpers if tables.HELPERS[h].returns == t]:
            choices.append("helper")
        if [f for f in s.kind.ctx_fields.values() if f.type == t]:
            choices.append("ctx")
        if [m for m in s.maps if m.value == t and "map-get" in m.ops]:
            choices.append("map-get")
        if header_fields(s, t):
            choices += ["field", "field"]
    how = rng.choice(choices)
    if how == "var":
        return rng.choice([v for v, vt in s.vars.items() if vt == t])
    if how == "arith":
        op = rng.choice(ARITH)
        right = int_expr(rng, s, t, depth + 1)
        if op in ("<<", ">>") and rng.random() < 0.5:
            right = f"({t} {rng.randrange(tables.INT_TYPES[t].bits)})"
        return f"({op} {int_expr(rng, s, t, depth + 1)} {right})"
    if how == "cast":
        return f"({t} {int_expr(rng, s, rng.choice(INTS), depth + 1)})"
    if how == "if":
        return f"(if {bool_expr(rng, s, depth + 1)} {int_expr(rng, s, t, depth + 1)} {int_expr(rng, s, t, depth + 1)})"
    if how == "helper":
        h = tables.HELPERS[rng.choice([h for h in s.kind.helpers if tables.HELPERS[h].returns == t])]
        args = "".join(f" {int_expr(rng, s, p, depth + 1)}" for p in h.params)
        return f"(call {h.name}{args})"
    if how == "ctx":
        name = rng.choice([f.name for f in s.kind.ctx_fields.values() if f.type == t])
        return f"(ctx-field ctx :{name})"
    if how == "map-get":
        m = rng.choice([m for m in s.maps if m.value == t and "map-get" in m.ops])
        return f"(map-get {m.name} {key_expr(rng, s, m, depth + 1)})"
    if how == "field":
        var, name = rng.choice(header_fields(s, t))
        return f"(field {var} :{name})"
    return literal(rng, t)


def header_fields(s: Scope, t: str) -> list[tuple[str, str]]:
    return [(var, f.name) for var, h in s.headers.items() for f in tables.HEADERS[h].fields.values() if f.type == t]


def bool_expr(rng: random.Random, s: Scope, depth: int) -> str:
    choices = ["cmp", "cmp", "lit"]
    if depth < MAX_DEPTH:
        choices += ["and", "not"]
    if header_fields(s, "bool"):
        choices.append("field")
    how = rng.choice(choices)
    if how == "cmp":
        t = rng.choice(INTS)
        return f"({rng.choice(COMPARE)} {int_expr(rng, s, t, depth + 1)} {int_expr(rng, s, t, depth + 1)})"
    if how == "and":
        return f"({rng.choice(['and', 'or'])} {bool_expr(rng, s, depth + 1)} {bool_expr(rng, s, depth + 1)})"
    if how == "not":
        return f"(not {bool_expr(rng, s, depth + 1)})"
    if how == "field":
        var, name = rng.choice(header_fields(s, "bool"))
        return f"(field {var} :{name})"
    return rng.choice(["#t", "#f"])


def key_expr(rng: random.Random, s: Scope, m: Map, depth: int) -> str:
    if m.kind == "lpm-trie":
        bits = 8 * (m.key_size or tables.INT_TYPES[m.key].bits // 8)
        prefix = f"(u32 {rng.randint(0, bits)})" if rng.random() < 0.7 else int_expr(rng, s, "u32", depth + 1)
        if m.key is None:
            return f"(lpm-key {prefix} {int_expr(rng, s, 'u64', depth + 1)} {int_expr(rng, s, 'u64', depth + 1)})"
        if rng.random() < 0.5:
            return int_expr(rng, s, m.key, depth + 1)
        return f"(lpm-key {prefix} {int_expr(rng, s, m.key, depth + 1)})"
    if m.kind in ARRAYS:
        return f"(u32 {rng.randrange(4)})" if rng.random() < 0.7 else int_expr(rng, s, "u32", depth + 1)
    return int_expr(rng, s, m.key, depth + 1)


def sequence(rng: random.Random, s: Scope, depth: int, n: int, tail: bool) -> str:
    """n statements; only the last may leave (return/break), else the rest
    would be unreachable code, which the checker rightly refuses."""
    return " ".join(statement(rng, s, depth, tail=tail and i == n - 1) for i in range(n))


def statement(rng: random.Random, s: Scope, depth: int, tail: bool = True) -> str:
    """A unit-typed expression; in tail position it may also leave (never)."""
    choices = ["map"] * 3 if s.maps else []
    if depth < MAX_DEPTH:
        choices += ["let", "let", "if", "loop"]
        if s.kind.packet:
            choices += ["header", "header"]
        if [m for m in s.maps if "map-lookup" in m.ops]:
            choices.append("lookup")
    if s.settable:
        choices.append("set")
    if s.loops and tail:
        choices.append("break")
    if tail:
        choices.append("return")
    if not choices:
        choices.append("let")
    how = rng.choice(choices)
    if how == "let" and s.stack < 40:
        t = rng.choice(INTS + ["bool"])
        value = bool_expr(rng, s, depth + 1) if t == "bool" else int_expr(rng, s, t, depth + 1)
        var = s.fresh("v")
        s.vars[var], s.stack = t, s.stack + 1
        s.settable.add(var)
        try:
            body = sequence(rng, s, depth + 1, rng.randint(1, 3), tail)
        finally:
            del s.vars[var]
            s.settable.discard(var)
            s.stack -= 1
        return f"(let (({var} {value})) {body})"
    if how == "set":
        var = rng.choice(sorted(s.settable))
        t = s.vars[var]
        return f"(set! {var} {bool_expr(rng, s, depth + 1) if t == 'bool' else int_expr(rng, s, t, depth + 1)})"
    if how == "if":
        cond = bool_expr(rng, s, depth + 1)
        if rng.random() < 0.5:  # no else: the then branch may leave even here
            return f"(if {cond} {statement(rng, s, depth + 1)})"
        return f"(if {cond} {statement(rng, s, depth + 1, tail)} {statement(rng, s, depth + 1, tail)})"
    if how == "loop" and s.stack < 40:
        var = s.fresh("n")
        s.vars[var], s.stack = "u32", s.stack + 1
        s.loops += 1
        try:
            body = sequence(rng, s, depth + 1, rng.randint(1, 2), True)  # a loop's value is unit anyway
        finally:
            del s.vars[var]
            s.loops -= 1
            s.stack -= 1
        return f"(loop ({var} 0 {rng.choice([1, 2, 4, 8])}) {body})"
    if how == "header" and s.stack < 40:
        reachable = [h for h in HEADERS if not (s.kind.packet == "l3" and h in tables.L2_HEADERS)]
        h = rng.choice(reachable)
        var = s.fresh("h")
        s.headers[var], s.stack = h, s.stack + 1
        try:
            then = statement(rng, s, depth + 1)
        finally:
            del s.headers[var]
            s.stack -= 1
        if rng.random() < 0.5:
            return f"(if-let ({var} (header ctx :{h})) {then})"
        return f"(if-let ({var} (header ctx :{h})) {then} {statement(rng, s, depth + 1, tail)})"
    if how == "lookup" and s.stack < 40:  # then only: it may leave
        m = rng.choice([m for m in s.maps if "map-lookup" in m.ops])
        var = s.fresh("x")
        key = key_expr(rng, s, m, depth + 1)
        s.vars[var], s.stack = m.value, s.stack + 1
        try:
            then = statement(rng, s, depth + 1)
        finally:
            del s.vars[var]
            s.stack -= 1
        return f"(if-let ({var} (map-lookup {m.name} {key})) {then})"
    if how == "map":
        m = rng.choice(s.maps)
        ops = sorted(m.ops - {"map-get", "map-lookup"})
        if not ops:
            return f"(let (({s.fresh('g')} (map-get {m.name} {key_expr(rng, s, m, depth + 1)}))) (begin))" \
                if "map-get" in m.ops else "(begin)"
        op = rng.choice(ops)
        if op == "event-output":
            # one record type per event map (the checker holds every send to it)
            record = INTS[sum(map(ord, m.name)) % len(INTS)]
            return f"(event-output {m.name} {int_expr(rng, s, record, depth + 1)})"
        key = key_expr(rng, s, m, depth + 1)
        if op == "map-delete":
            return f"(map-delete {m.name} {key})"
        return f"({op} {m.name} {key} {int_expr(rng, s, m.value, depth + 1)})"
    if how == "break":
        return "(break)"
    return ret(rng, s, depth) if tail else "(begin)"


def ret(rng: random.Random, s: Scope, depth: int) -> str:
    if s.kind.return_range:  # only literals in range pass the checker there
        lo, hi = s.kind.return_range
        if rng.random() < 0.2:
            return f"(return ({s.kind.return_type} {rng.choice([lo, hi])}))"
    elif rng.random() < 0.2:
        return f"(return {int_expr(rng, s, s.kind.return_type, depth + 1)})"
    return f"(return :{rng.choice(list(s.kind.actions))})"


def maps(rng: random.Random) -> list[Map]:
    out = []
    for i, kind in enumerate(rng.sample(list(tables.MAP_KINDS), rng.randint(0, 4))):
        spec = tables.MAP_KINDS[kind]
        name = f"m{i}"
        if not spec.has_value:
            out.append(Map(name, kind, None, None))
        elif kind == "lpm-trie":
            if rng.random() < 0.3:
                out.append(Map(name, kind, None, rng.choice(INTS), key_size=16))
            else:
                out.append(Map(name, kind, rng.choice(["u8", "u16", "u32", "u64"]), rng.choice(INTS)))
        elif spec.value_required:  # key and value fixed by the kernel
            out.append(Map(name, kind, "u32", spec.value_required))
        else:
            out.append(Map(name, kind, spec.key_required or rng.choice(INTS), rng.choice(INTS)))
    return out


def map_decl(m: Map) -> str:
    size = {"ring-buf": 4096}.get(m.kind, 16)
    key = f" :key-size {m.key_size}" if m.key_size else f" :key {m.key}" if m.key else ""
    value = f" :value {m.value}" if m.value else ""
    return f"(defbpf-map {m.name} :kind :{m.kind}{key}{value} :max-entries {size})"


def program(rng: random.Random, name: str, kind: str | None = None) -> str:
    """One source file: a few maps and one program of `kind` (random when None)."""
    kind = kind or rng.choice(KINDS)
    spec = tables.PROGRAM_KINDS[kind]
    ms = maps(rng)
    scope = Scope(spec, ms)
    body = " ".join([statement(rng, scope, 0, tail=False) for _ in range(rng.randint(1, 3))] + [ret(rng, scope, 0)])
    target = TARGETS.get(kind)
    attach = f' :attach (:target "{target}")' if target else ""
    uses = f" :uses-maps ({' '.join(m.name for m in ms)})" if ms else ""
    return "\n".join([*map(map_decl, ms),
                      f'(defbpf-program {name} :kind :{kind}{attach} :license "GPL"{uses})',
                      f"(bpf-fn {name} (ctx) {body})", ""])


assert all(m in tables.MAP_KINDS for m in ARRAYS + EVENTS) and mapdata.LPM_KINDS

"""Checker stage: declarations, policies, packet tests and typed bodies.

`check(module)` fills `type` on every expression of every `bpf-fn` (in
place) and returns the module, or raises one SourceError listing every
problem found. Decisions (see also exprs.py):
- a program body must end in `(return …)` on every path;
- integer literals need a typed context; `(u32 5)` gives one;
- maps and programs share one namespace (both are globals in C), and no
  local variable may reuse one of their names;
- a program that uses maps needs a GPL-compatible license (upstream rule).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter

from .. import ir, mapdata, structs, tables
from ..frontend.reserved_c import C_STRUCT_TAGS
from ..errors import Diagnostic, SourceError, suggestion
from .cost import check_cost
from .events import check_events
from .exprs import FuncInfo, FunctionChecker
from .kernels import check_kernels
from .packets import check_tests

__all__ = ["check"]


# User text that lands inside the object: the license section, and the ELF
# section / program macro argument built from an attach target. The checker
# is the one place these rules live (targets: tables.ATTACH_TARGET_SYNTAX
# per kind, every one inside SECTION_TARGET); the backends only assert them.
LICENSE_TEXT = re.compile(r"[A-Za-z0-9 ./+-]{1,64}")
SECTION_TARGET = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+-]{0,127}")


def section_target_ok(target: str) -> bool:
    return SECTION_TARGET.fullmatch(target) is not None and ".." not in target


def check(module: ir.Module) -> ir.Module:
    errors: list[Diagnostic] = []
    errors += duplicates(module)
    errors += check_license(module.programs)
    maps = {m.name: m for m in module.maps}
    programs = {p.name: p for p in module.programs}
    layouts, found = check_structs(module.structs)
    errors += found
    for m in module.maps:
        errors += check_map(m) + check_map_structs(m, layouts, {s.name for s in module.structs})
    for p in module.programs:
        errors += check_program(p, maps)
    errors += check_pairing(module, programs)
    errors += check_slots(module, programs)
    errors += check_policies(module, programs, maps)
    consts = {c.name: c for c in module.consts}
    for c in module.consts:
        errors += check_const(c)
    global_names = set(maps) | set(programs) | set(consts) | {f.name for f in module.funcs} | {s.name for s in module.structs}
    license_ = module.programs[0].license if module.programs else None
    calls = {f.name: list(dict.fromkeys(n.name for n in ir.walk(f.body) if isinstance(n, ir.FuncCall)))
             for f in module.funcs}
    funcs: dict[str, FuncInfo] = {}
    for index, f in enumerate(module.funcs):
        if f.name in funcs:
            continue  # a duplicate: reported by duplicates()
        info = funcs[f.name] = FuncInfo(f, index)
        errors += FunctionChecker(f, None, maps, global_names, consts, funcs, info, calls, license_,
                                  layouts).run_func()
    for fn in module.functions:
        program = programs.get(fn.name)
        if program is not None:
            found = FunctionChecker(fn, program, maps, global_names, consts, funcs, license_=program.license,
                                    layouts=layouts).run()
            # costs need a well-typed body (and well-typed functions: they are checked first)
            errors += found or check_cost(fn, program, maps, {f.name: f for f in module.funcs})
    errors += check_tests(module, programs, maps, layouts)
    errors += check_events(module)
    errors += check_test_consts(module, consts)
    errors += check_kernels(module, programs, maps)
    if errors:
        errors.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
        raise SourceError(errors)
    return module


def duplicates(module: ir.Module) -> list[Diagnostic]:
    out = []
    groups = {
        "map, program, const, function or struct": [*module.structs, *module.maps, *module.programs, *module.consts,
                                                    *module.funcs],
        "bpf-fn": module.functions,
        "policy": module.policies,
        "test": module.tests,
    }
    for what, decls in groups.items():
        seen: dict[str, ir.Node] = {}
        for d in decls:
            if d.name in seen:
                out.append(Diagnostic(f"duplicate {what} name `{d.name}` (first defined at {seen[d.name].span})", d.span))
            else:
                seen[d.name] = d
    return out


def check_const(c: ir.ConstDecl) -> list[Diagnostic]:
    problem = const_value_problem(c, c.default)
    return [Diagnostic(f"default of defbpf-const `{c.name}`: {problem}", c.span)] if problem else []


def const_value_problem(c: ir.ConstDecl, value: int) -> str | None:
    if c.const_type == "bool":
        return None if value in (0, 1) else f"expected #t or #f for a bool, got {value}"
    info = tables.INT_TYPES[c.const_type]
    if not info.min <= value <= info.max:
        return f"{value} does not fit in {c.const_type} ({info.min} to {info.max})"
    return None


def check_test_consts(module: ir.Module, consts: dict[str, ir.ConstDecl]) -> list[Diagnostic]:
    """`:consts ((name value) …)`: declared consts, each once, values in range."""
    out = []
    for test in module.tests:
        seen: set[str] = set()
        for item in test.consts:
            decl = consts.get(item.name)
            if decl is None:
                out.append(Diagnostic(f"test `{test.name}` sets unknown const `{item.name}`", item.span,
                                      [*suggestion(item.name, consts), "declare it: (defbpf-const NAME TYPE DEFAULT)"]))
                continue
            if item.name in seen:
                out.append(Diagnostic(f"test `{test.name}` sets const `{item.name}` twice", item.span))
            seen.add(item.name)
            problem = const_value_problem(decl, item.value)
            if problem:
                out.append(Diagnostic(f"value of const `{item.name}`: {problem}", item.span))
    return out


def repeated(names: list[str]) -> list[str]:
    return [n for n, count in Counter(names).items() if count > 1]


def check_map(m: ir.MapDecl) -> list[Diagnostic]:
    kind = tables.MAP_KINDS[m.kind]
    out = []
    if kind.value_required:  # key and value fixed by the kernel (the frontend fills them in when left out)
        for which, want in (("key", "u32"), ("value", kind.value_required)):
            got = getattr(m, which)
            if got != want:
                out.append(Diagnostic(f"{m.kind} map `{m.name}` has the kernel's {which} type {want}, not {got}; "
                                      f"leave :{which} out", m.span))
    if m.programs and "tail-call" not in kind.ops:
        out.append(Diagnostic(f":programs is for prog-array maps; `{m.name}` is a {m.kind} map", m.programs[0].span))
    if m.key_size is not None and not mapdata.is_lpm(m):
        out.append(Diagnostic(f":key-size {m.key_size} is only for lpm-trie maps (IPv6 prefixes); "
                              f"{m.kind} map `{m.name}` takes 1, 2, 4 or 8", m.span))
    if kind.has_value:
        for which in ("key", "value"):
            if getattr(m, which) is None and not (which == "key" and m.key_size is not None):
                out.append(Diagnostic(f"{m.kind} map `{m.name}` needs :{which} (e.g. :{which} u32)", m.span))
        if kind.key_required and m.key not in (None, kind.key_required):
            out.append(Diagnostic(f"{m.kind} map `{m.name}` is indexed by {kind.key_required}; write :key {kind.key_required}", m.span))
    elif kind.events and m.key is not None:
        out.append(Diagnostic(f"{m.kind} map `{m.name}` takes no :key; :value (optional) is the type of its records",
                              m.span))
    elif not kind.events and (m.key is not None or m.value is not None):
        out.append(Diagnostic(f"{m.kind} map `{m.name}` takes no :key or :value", m.span))
    if m.pin_path is not None:  # IR from JSON: the frontend refuses :pin-path with its own span
        out.append(Diagnostic(f"map `{m.name}`: pin_path is not supported (the object cannot carry a pin path "
                              "in either backend); pin the map from its loader", m.span))
    if mapdata.is_lpm(m) and m.key in tables.INT_TYPES and tables.INT_TYPES[m.key].signed:
        out.append(Diagnostic(f"lpm-trie `{m.name}` is keyed by an address: use an unsigned :key "
                              "(u32 for IPv4) or :key-size 16 (IPv6)", m.span))
    size_problem = kind.bytes.problem(m.max_entries) if kind.bytes else None
    if size_problem:
        out.append(Diagnostic(f"{m.kind} `{m.name}`: :max-entries is its size in bytes, {size_problem}", m.span))
    return out


def check_slots(module: ir.Module, programs: dict[str, ir.ProgramDecl]) -> list[Diagnostic]:
    """prog-array `:programs`: each slot once, below :max-entries, naming a
    program of this file; the kernel ties a prog-array to one program type,
    so its slot programs and the programs that tail-call through it (its
    :uses-maps) share one kind."""
    out = []
    for m in module.maps:
        seen: set[int] = set()
        kinds: dict[str, str] = {}  # kind -> the first program of that kind
        for slot in m.programs or []:
            if slot.index in seen:
                out.append(Diagnostic(f"slot {slot.index} of `{m.name}` is filled twice", slot.span))
            seen.add(slot.index)
            if slot.index >= m.max_entries:
                out.append(Diagnostic(f"slot {slot.index} is beyond :max-entries {m.max_entries} of `{m.name}`", slot.span))
            p = programs.get(slot.program)
            if p is None:
                out.append(Diagnostic(f"slot {slot.index} of `{m.name}` names unknown program `{slot.program}`",
                                      slot.span, suggestion(slot.program, programs)))
                continue
            kinds.setdefault(p.kind, p.name)
        if not m.programs:
            continue
        for p in module.programs:
            if m.name in p.uses_maps:
                kinds.setdefault(p.kind, p.name)
        if len(kinds) > 1:
            shown = ", ".join(f"`{name}` is {kind}" for kind, name in kinds.items())
            out.append(Diagnostic(f"prog-array `{m.name}` mixes program kinds ({shown}): the kernel holds a "
                                  "prog-array to one program type, its slots and its callers alike", m.span))
    return out


def check_structs(decls: list[ir.StructDecl]) -> tuple[dict[str, structs.Layout], list[Diagnostic]]:
    """Field types known (integers, bounded arrays of integers, structs
    declared earlier), field names once each, size within the stack."""
    out: list[Diagnostic] = []
    layouts: dict[str, structs.Layout] = {}
    later = {d.name for d in decls}
    for decl in decls:
        seen: dict[str, ir.StructField] = {}
        ok = True
        if decl.name in C_STRUCT_TAGS:
            out.append(Diagnostic(f"struct name `{decl.name}` is reserved: the headers the generated C includes "
                                  f"define `struct {decl.name.replace('-', '_')}`; choose another name", decl.span))
        if decl.name in RUST_PATH_ROOTS:
            out.append(Diagnostic(f"struct name `{decl.name}` is reserved: the generated Rust names the crate "
                                  f"`{decl.name.replace('-', '_')}` in paths; choose another name", decl.span))
        for f in decl.fields:
            if f.name in seen:
                out.append(Diagnostic(f"struct `{decl.name}` has field `{f.name}` twice", f.span))
                ok = False
            seen[f.name] = f
            problem = field_type_problem(decl.name, f.type, layouts, later)
            if problem:
                out.append(Diagnostic(problem, f.span, struct_suggestion(f.type, layouts)))
                ok = False
        if not ok or decl.name in layouts:
            continue
        layout = structs.layout_of(decl, layouts)
        if layout.size > structs.MAX_STRUCT_BYTES:
            out.append(Diagnostic(f"struct `{decl.name}` is {layout.size} bytes, over the {structs.MAX_STRUCT_BYTES}-byte "
                                  "BPF stack its values are built on", decl.span))
            continue
        layouts[decl.name] = layout
    return layouts, out


# Crates the generated Rust names in paths (`core::mem::zeroed`): a struct
# (a type) of that name would shadow them.
RUST_PATH_ROOTS = ("core", "std", "alloc", "aya-ebpf")


def field_type_problem(owner: str, t: str, layouts: dict[str, structs.Layout], declared: set[str]) -> str | None:
    parts = structs.array_parts(t)
    if parts is not None:
        elem, n = parts
        if elem not in tables.INT_TYPES or not 1 <= n <= structs.MAX_ARRAY_LEN:
            return f"array fields hold 1 to {structs.MAX_ARRAY_LEN} integers, got {elem} × {n}"
        return None
    name = structs.struct_name(t)
    if name is None or name in layouts:
        return None
    if name == owner:
        return f"struct `{owner}` cannot contain itself"
    if name in declared:
        return f"struct `{name}` must be declared before struct `{owner}` uses it"
    return f"unknown type `{name}`: a field is an integer type ({', '.join(tables.INT_TYPES)}), (array u8 16) or a defbpf-struct"


def struct_suggestion(t: str, layouts: dict[str, structs.Layout]) -> list[str]:
    name = structs.struct_name(t)
    if name is None:
        return []
    return suggestion(name, [*layouts, *tables.INT_TYPES])


# Map kinds whose keys may be structs (the hash-like ones) and whose values
# may be structs (those plus the arrays).
STRUCT_KEY_KINDS = ("hash", "lru-hash", "per-cpu-hash")
STRUCT_VALUE_KINDS = ("hash", "lru-hash", "per-cpu-hash", "array", "per-cpu-array")


def check_map_structs(m: ir.MapDecl, layouts: dict[str, structs.Layout], declared: set[str]) -> list[Diagnostic]:
    """A struct `declared` but without a layout was refused at its own
    declaration: that error is the one to fix, so the map adds none."""
    out = []
    for which, kinds in (("key", STRUCT_KEY_KINDS), ("value", STRUCT_VALUE_KINDS)):
        name = structs.struct_name(getattr(m, which))
        if name is None or (name not in layouts and name in declared):
            continue
        if name not in layouts:
            out.append(Diagnostic(f"map `{m.name}`: unknown :{which} type `{name}` (an integer type or a defbpf-struct)",
                                  m.span, struct_suggestion(getattr(m, which), layouts)))
        elif m.kind not in kinds and tables.MAP_KINDS[m.kind].has_value and not tables.MAP_KINDS[m.kind].key_required:
            out.append(Diagnostic(f"{m.kind} map `{m.name}` cannot have a struct :{which}; struct {which}s work with "
                                  + ", ".join(kinds), m.span))
    return out


def check_license(programs: list[ir.ProgramDecl]) -> list[Diagnostic]:
    """One object, one license section: every program's, in plain text."""
    if not programs:
        return []
    text = programs[0].license
    other = next((p for p in programs if p.license != text), None)
    if other is not None:  # point at the program that differs from the first
        return [Diagnostic(f"all programs of one file share one object and so one license: `{other.name}` has "
                           f"{other.license!r}, `{programs[0].name}` has {text!r}", other.span)]
    if not LICENSE_TEXT.fullmatch(text):
        return [Diagnostic(f"license `{text}` must be 1 to 64 characters among letters, digits, space and . / + -",
                           programs[0].span)]
    return []


def check_program(p: ir.ProgramDecl, maps: dict[str, ir.MapDecl]) -> list[Diagnostic]:
    kind = tables.PROGRAM_KINDS[p.kind]
    out = []
    target = p.attach.target if p.attach else None
    if target is None and (kind.needs_attach_target or kind.target_in_object):
        out.append(Diagnostic(f'{p.kind} program `{p.name}` needs :attach (:target "…"): the {kind.attach_help}', p.span))
    if target is not None and kind.attach_targets and target not in kind.attach_targets:
        choices = " or ".join(f'"{t}"' for t in kind.attach_targets)
        close = difflib.get_close_matches(target, kind.attach_targets, n=1)
        out.append(Diagnostic(f"{p.kind} attach target must be {choices}, got {target!r}", p.attach.span,
                              [f'did you mean "{close[0]}"?'] if close else []))
    syntax = tables.ATTACH_TARGET_SYNTAX.get(p.kind)
    if target is not None and syntax and not re.fullmatch(syntax[0], target):
        out.append(Diagnostic(f"{p.kind} attach target {target!r} is not {syntax[1]}", p.attach.span))
    if p.attach is not None and p.attach.direction is not None and p.kind != "tc":
        out.append(Diagnostic(f":direction is for tc programs; a {p.kind} program has none"
                              + (' (cgroup-skb: :target "ingress" or "egress")' if p.kind == "cgroup-skb" else ""),
                              p.attach.span))
    for name in repeated(p.uses_maps):
        out.append(Diagnostic(f"map `{name}` is listed twice in :uses-maps", p.span))
    for name in p.uses_maps:
        if name not in maps:
            out.append(Diagnostic(f"program `{p.name}` uses undeclared map `{name}`", p.span))
    if p.uses_maps and p.license not in tables.GPL_COMPATIBLE:
        out.append(
            Diagnostic(
                f"program `{p.name}` uses maps, which needs a GPL-compatible :license, got {p.license!r}",
                p.span, ["GPL-compatible: " + ", ".join(tables.GPL_COMPATIBLE)],
            )
        )
    return out


def check_pairing(module: ir.Module, programs: dict[str, ir.ProgramDecl]) -> list[Diagnostic]:
    out = []
    functions = {f.name for f in module.functions}
    for fn in module.functions:
        if fn.name not in programs:
            out.append(Diagnostic(f"bpf-fn `{fn.name}` has no (defbpf-program {fn.name} :kind …) declaring its kind", fn.span))
    for p in module.programs:
        if p.name not in functions:
            out.append(Diagnostic(f"program `{p.name}` has no body: add (bpf-fn {p.name} (ctx) …)", p.span))
    return out


def check_policies(module: ir.Module, programs: dict[str, ir.ProgramDecl], maps: dict[str, ir.MapDecl]) -> list[Diagnostic]:
    out = []
    for pol in module.policies:
        for name in repeated(pol.programs) + repeated(pol.maps):
            out.append(Diagnostic(f"policy `{pol.name}` lists `{name}` twice", pol.span))
        for name in pol.programs:
            if name not in programs:
                out.append(Diagnostic(f"policy `{pol.name}` lists unknown program `{name}`", pol.span))
        for name in pol.maps:
            if name not in maps:
                out.append(Diagnostic(f"policy `{pol.name}` lists unknown map `{name}`", pol.span))
        for name in pol.programs:
            extra = [m for m in programs[name].uses_maps if m not in pol.maps] if name in programs else []
            if extra:
                out.append(
                    Diagnostic(
                        f"program `{name}` uses map(s) {', '.join(extra)} not allowed by policy `{pol.name}`",
                        pol.span, [f"add them to the policy's :maps, or drop them from {name}'s :uses-maps"],
                    )
                )
    return out

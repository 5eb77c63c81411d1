"""The kernels a program promises (`:kernel`, `:kernels`): each must name a
pinned kernel line (tables.KERNEL_LINES; "6.12.5" names 6.12), and nothing
the program uses may be newer than the oldest of them. A feature a promised
kernel lacks (a ring buffer on 4.19, `ktime-tai-ns` on 5.10) is an error at
the form that uses it, naming kernel and feature, instead of a verifier
message from the VM."""

from __future__ import annotations

import re

from .. import ir, tables
from ..errors import Diagnostic, Span

_VERSION = re.compile(r"^([0-9]{1,2})\.([0-9]{1,3})(?:\.[0-9]{1,4})?$")


def line_of(version: str) -> str | None:
    m = _VERSION.match(version)
    return f"{int(m[1])}.{int(m[2])}" if m else None


def promised(p: ir.ProgramDecl) -> list[str]:
    """The program's promised kernel lines, in order, without repeats."""
    lines = [line_of(v) for v in [*p.kernels, *([p.kernel] if p.kernel else [])]]
    return list(dict.fromkeys(line for line in lines if line))


def target_kernels(program: ir.ProgramDecl) -> list[str]:
    """The pinned kernel lines whose types (BTF) a program is checked
    against and laid out by: its promises, or the default kernel."""
    lines = [line for line in promised(program) if line in tables.KERNEL_LINES]
    return lines or [tables.DEFAULT_KERNEL_LINE]


def check_kernels(module: ir.Module, programs: dict[str, ir.ProgramDecl],
                  maps: dict[str, ir.MapDecl]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    bodies = {f.name: f for f in module.functions}
    funcs = {f.name: f for f in module.funcs}
    for p in module.programs:
        out += _pinned(p)
        lines = [line for line in promised(p) if line in tables.KERNEL_LINES]
        if not lines:
            continue
        for since, what_span in _features(p, bodies.get(p.name), maps, funcs):
            lacking = [line for line in lines if tables.version_tuple(line) < tables.version_tuple(since.version)]
            if lacking:
                out.append(Diagnostic(
                    f"kernel {', '.join(lacking)} (promised by program `{p.name}`) lacks {since.what}: "
                    f"it needs Linux {since.version} or newer",
                    what_span or p.span,
                    [f"drop {', '.join(lacking)} from the program's :kernels, or do without {since.what}"],
                ))
    return out


def _pinned(p: ir.ProgramDecl) -> list[Diagnostic]:
    out = []
    for option, values in ((":kernel", [p.kernel] if p.kernel else []), (":kernels", p.kernels)):
        for version in values:
            if line_of(version) not in tables.KERNEL_LINES:
                out.append(Diagnostic(
                    f"{option} {version!r} of program `{p.name}`: no pinned kernel of line {line_of(version)}",
                    p.span, [f"pinned kernel lines: {', '.join(tables.KERNEL_LINES)} (a version such as "
                             f"\"6.12.5\" selects its line's pinned kernel)"],
                ))
    for line in _repeated([line_of(v) for v in p.kernels]):
        out.append(Diagnostic(f"kernel line {line} is listed twice in :kernels of `{p.name}`", p.span))
    return out


def _repeated(items: list[str | None]) -> list[str]:
    seen, out = set(), []
    for item in items:
        if item in seen and item not in out:
            out.append(item)
        seen.add(item)
    return out


def _reachable(body: list[ir.Expr], funcs: dict[str, ir.FuncDecl]):
    """Every node of a body and of the functions it calls (each once)."""
    seen: set[str] = set()
    pending = [body]
    while pending:
        for node in ir.walk(pending.pop()):
            yield node
            if isinstance(node, ir.FuncCall) and node.name in funcs and node.name not in seen:
                seen.add(node.name)
                pending.append(funcs[node.name].body)


def _features(p: ir.ProgramDecl, fn: ir.BpfFn | None, maps: dict[str, ir.MapDecl],
              funcs: dict[str, ir.FuncDecl] | None = None) -> list[tuple[tables.Since, Span | None]]:
    """Every feature the program uses (in its body and the functions it
    calls), once, with the span of its first use."""
    found: list[tuple[tables.Since, Span | None]] = [(tables.PROGRAM_KIND_SINCE[p.kind], p.span)]
    if fn is not None:
        for node in _reachable(fn.body, funcs or {}):
            if isinstance(node, ir.Call) and node.helper in tables.HELPER_SINCE:
                found.append((tables.HELPER_SINCE[node.helper], node.span))
            form = getattr(node, "form", None)
            if isinstance(form, str) and form in tables.FORM_SINCE:
                found.append((tables.FORM_SINCE[form], node.span))
            map_name = getattr(node, "map", None)
            if isinstance(map_name, str) and map_name in maps:
                found.append((tables.MAP_KIND_SINCE[maps[map_name].kind], node.span))
    for name in p.uses_maps:  # listed maps are created at load even when unused: their declaration
        if name in maps:
            found.append((tables.MAP_KIND_SINCE[maps[name].kind], maps[name].span))
    first: dict[tables.Since, Span | None] = {}
    for since, span in found:
        first.setdefault(since, span)
    return list(first.items())

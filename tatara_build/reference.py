"""docs/reference.md, generated from tables.py: per program kind its
actions, context fields, helpers, helper forms and packet headers; every
map kind; every header's fields; the first kernel of each. Written by
`scripts/gen-reference.py`; a test fails when the committed file is not
what `render()` gives (edit tables.py, then rerun the script)."""

from __future__ import annotations

from . import tables

TITLE = "# tatara-lisp reference (generated)"
HEADER = f"""{TITLE}

Generated from `tatara_build/tables.py` by `scripts/gen-reference.py`; do not
edit (CI fails when it is stale). The language itself is described in
[language.md](language.md). "Since" is the first mainline kernel with the
feature (`tables.*_SINCE`); `check` refuses a feature newer than a kernel a
program promises (`:kernel`, `:kernels`). Pinned kernel lines:
{", ".join(tables.KERNEL_LINES)}.
"""


def _since(table: dict[str, tables.Since], name: str) -> str:
    since = table.get(name)
    return since.version if since else "-"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out + [""]


def _code(text: str) -> str:
    return f"`{text}`"


def _reachable(kind: tables.ProgramKind) -> list[str]:
    if kind.packet is None:
        return []
    return [h for h in tables.HEADERS if not (kind.packet == "l3" and h in tables.L2_HEADERS)]


def program_kind(kind: tables.ProgramKind) -> list[str]:
    out = [f"### {kind.name}", ""]
    facts = [f"since Linux {_since(tables.PROGRAM_KIND_SINCE, kind.name)}",
             f"`(return EXPR)` type {_code(kind.return_type)}"]
    if kind.packet_write:
        facts.append(f"packet writes, `set-field!`: {kind.packet_write}")
    if kind.return_range:
        facts.append(f"exit values {kind.return_range[0]}..{kind.return_range[1]} only")
    facts.append(f":attach :target: {kind.attach_help}" + (" (required)" if kind.needs_attach_target else ""))
    facts.append("packet tests: yes" if kind.test_run else "packet tests: no (verify only)")
    out += [f"- {fact}" for fact in facts] + [""]
    out += ["Actions:", ""]
    out += _table(["action", "value", "kernel constant"],
                  [[_code(f":{a.name}"), str(a.value), a.uapi or "-"] for a in kind.actions.values()])
    out += ["Context fields, `(ctx-field CTX :name)`; writable ones also `(set-ctx-field! CTX :name X)`:", ""]
    out += _table(["field", "type", "writable"], [[_code(f":{f.name}"), f.type, "yes" if f.writable else "-"]
                                                 for f in kind.ctx_fields.values()])
    out += ["Helpers, `(call NAME)` (array-valued ones, `(NAME)` or `(NAME PTR)`, only where the value is stored; "
            "`array:u8:N` has the size of the field it fills):", ""]
    out += _table(["helper", "returns", "kernel helper", "since"],
                  [[_code(h), tables.HELPERS[h].returns, tables.HELPERS[h].kernel_fn, _since(tables.HELPER_SINCE, h)]
                   for h in kind.helpers])
    out += ["Helper forms:", ""]
    out += _table(["form", "value", "kernel helper", "since"],
                  [[_code(tables.HELPER_FORMS[f].usage), _form_type(tables.HELPER_FORMS[f], kind),
                    tables.HELPER_FORMS[f].kernel_fn, _since(tables.FORM_SINCE, f)] for f in kind.forms])
    reads = []
    if kind.args is not None:
        reads.append(f"`(arg CTX N)`: {kind.args.what}")
    if kind.tp_fields:
        reads.append("`(tp-field CTX :field)`: its tracepoint record's fields, from the target kernel's BTF")
    if kind.kernel_reads:
        reads.append("`(core-read PTR STRUCT :field …)`: kernel memory through BTF-typed pointers")
    out += (["Kernel data:", ""] + [f"- {r}" for r in reads] + [""]) if reads else []
    headers = _reachable(kind)
    if headers:
        how = "direct packet access" if kind.packet_read is None else "read through a helper"
        out += [f"Packet headers, `(header CTX :name)` (from {kind.packet.upper()}, {how}): "
                + " ".join(_code(f":{h}") for h in headers), ""]
    else:
        out += ["Packet headers: none (no packet).", ""]
    return out


def _form_type(form: tables.HelperForm, kind: tables.ProgramKind) -> str:
    return kind.return_type if form.returns == "action" else form.returns


def map_kinds() -> list[str]:
    rows = []
    for m in tables.MAP_KINDS.values():
        if not m.has_value:
            kv = "none"
        elif m.value_required:
            kv = f"u32 -> {m.value_required} (fixed)"
        else:
            kv = f"{m.key_required or 'any'} -> any"
        ops = ", ".join(sorted(m.ops)) or "none (user space reads it)"
        rows.append([_code(f":{m.name}"), m.uapi, kv, ops, _since(tables.MAP_KIND_SINCE, m.name), m.summary or "-"])
    return ["## Map kinds", ""] + _table(["kind", "kernel type", "key -> value", "forms", "since", "notes"], rows)


def headers() -> list[str]:
    out = ["## Packet headers", "", "Fields are read in host byte order; bools are single bits. Writable fields "
           "take `(set-field! H :name X)` (checksums kept right).", ""]
    for h in tables.HEADERS.values():
        via = ", ".join(f"{outer} {hex(sel)}" for outer, sel in h.via) or "the packet start"
        out += [f"### :{h.name}", "", f"{h.role} header, at least {h.min_len} bytes, reached via {via}.", ""]
        rows = []
        for f in h.fields.values():
            bits = f"mask {hex(f.mask)}" + (f" >> {f.shift}" if f.shift else "") if f.mask is not None else "-"
            rows.append([_code(f":{f.name}"), f.type, str(f.offset), str(f.size), bits, "yes" if f.writable else "-"])
        out += _table(["field", "type", "offset", "bytes", "bits", "writable"], rows)
    return out


def forms() -> list[str]:
    rows = [[_code(f.usage), f.summary, ", ".join(k.name for k in tables.PROGRAM_KINDS.values() if f.name in k.forms)]
            for f in tables.HELPER_FORMS.values()]
    return ["## Helper forms", ""] + _table(["form", "what it does", "kinds"], rows)


def render() -> str:
    out = [HEADER, "## Program kinds", ""]
    for kind in tables.PROGRAM_KINDS.values():
        out += program_kind(kind)
    out += forms() + map_kinds() + headers()
    return "\n".join(out).rstrip("\n") + "\n"

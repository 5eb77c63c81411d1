"""s-expressions -> IR: the declaration forms (`defbpf-map`, `defbpf-program`,
`defbpf-policy`, `bpf-fn`, `defbpf-test`); bodies are converted by body.py.

This stage checks shape only (arity, which keywords, identifier syntax,
strings that backends paste into sections/attributes); meaning (types, kinds,
tables) is the checker's job. Errors are collected per top-level form.
"""

from __future__ import annotations

import re
from typing import Callable

from .. import ir, structs, tables
from ..ir import trusted as new  # unvalidated constructors: values are checked here
from ..errors import Diagnostic, SourceError
from .body import HANDLERS, declared_funcs, expr
from .names import ident_problem
from .reader import Boolean, Datum, Integer, Keyword, SList, String, Symbol
from .sugar import resolve_tests
from .shapes import FormError, arity, describe, integer, keyword, name, name_list, options, string, suggest

# Strings that end up inside generated code (SEC("…"), #[lsm(hook = "…")],
# license section) are restricted to these shapes.
ATTACH_TARGET = re.compile(r"[A-Za-z0-9_./:-]{1,128}")
DIRECTIONS = ("ingress", "egress")
PRINTABLE_TEXT = re.compile(r"[ !#-\[\]-~]{0,256}")  # printable ASCII minus `"` and `\`
KERNEL_VERSION = re.compile(r"[0-9]{1,2}\.[0-9]{1,3}(?:\.[0-9]{1,4})?")


def pin_path_unsupported(span) -> tuple:
    """Why `:pin-path` is refused (upstream accepts it): neither backend can
    put a pin path in the object. libbpf's BTF map definitions only say
    "pin by name" (under the loader's pin_root_path, one per object), and
    aya-ebpf 0.2.1's #[btf_map] cannot say even that; a path accepted and
    ignored would be a lie, so the loader pins."""
    return ("`:pin-path` is not supported: the object cannot carry a pin path in either backend, "
            "so maps are pinned by the program that loads them", span,
            "after loading: `bpftool map pin id ID /sys/fs/bpf/NAME`, libbpf bpf_map__pin(map, path) "
            "(or bpf_object_open_opts.pin_root_path), aya `map.pin(path)`")
LPM_KEY_TEXT = re.compile(r"[0-9A-Fa-f.:]{1,45}(?:/[0-9]{1,3})?")
HEX_TEXT = re.compile(r"(?:[0-9a-fA-F]{2})*")
BYTES_TO_TYPE = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}
WIDE_KEY_BYTES = 16  # `:key-size 16`: an lpm-trie key with an IPv6 address


def to_module(data: list[Datum], file: str, source_sha256: str) -> ir.Module:
    module = new.Module(file=file, source_sha256=source_sha256)
    errors: list[Diagnostic] = []
    # Calls are written (name args…): a body knows a function by its name,
    # wherever in the file it is declared (the checker orders the calls).
    funcs = {d.items[1].name for d in data if isinstance(d, SList) and d.head == "defbpf-func"
             and len(d.items) > 1 and isinstance(d.items[1], Symbol)}
    with declared_funcs(funcs):
        for d in data:
            try:
                declaration(d, module)
            except FormError as err:
                errors.append(err.diagnostic)
    if errors:
        raise SourceError(errors)
    resolve_tests(module)
    return module


def declaration(d: Datum, module: ir.Module) -> None:
    if not isinstance(d, SList) or d.head is None:
        raise FormError(f"expected a declaration such as (defbpf-map …), got {describe(d)}", d.span)
    handler = DECLARATIONS.get(d.head)
    if handler is None:
        raise FormError(
            f"unknown top-level form `{d.head}`", d.items[0].span,
            *suggest(d.head, list(DECLARATIONS)), "known: " + ", ".join(DECLARATIONS),
        )
    if len(d.items) < 2:
        raise FormError(f"`{d.head}` needs a name", d.span)
    handler(d, module)


def defbpf_map(form: SList, module: ir.Module) -> None:
    opts = options(form, form.items[2:], ("kind", "key", "value", "key-size", "value-size", "max-entries", "pin-path",
                                          "programs"), ("kind", "max-entries"))
    decl = new.MapDecl(
        span=form.span,
        name=name(form.items[1], "map"),
        kind=keyword(opts["kind"], "map kind", list(tables.MAP_KINDS)),
        key=map_type(opts, "key"),
        value=map_type(opts, "value"),
        max_entries=integer(opts["max-entries"], ":max-entries", 1, (1 << 32) - 1),
    )
    if "key-size" in opts and isinstance(opts["key-size"], Integer) and opts["key-size"].value == WIDE_KEY_BYTES:
        decl.key_size = WIDE_KEY_BYTES  # lpm-trie IPv6 keys (the checker holds it to lpm-trie)
    if "pin-path" in opts:
        raise FormError(*pin_path_unsupported(opts["pin-path"].span))
    if "programs" in opts:
        decl.programs = program_slots(opts["programs"])
    fixed = tables.MAP_KINDS[decl.kind].value_required
    if fixed:  # the kernel fixes key and value (the checker holds given ones to them)
        decl.key, decl.value = decl.key or "u32", decl.value or fixed
    module.maps.append(decl)


def program_slots(d: Datum) -> list[ir.ProgramSlot]:
    """`:programs ((0 parse-v4) (1 parse-v6))`: a prog-array's slots."""
    usage = "expected :programs ((index program) …), e.g. :programs ((0 parse-v4) (1 parse-v6))"
    if not isinstance(d, SList) or not d.items:
        raise FormError(usage, d.span)
    out = []
    for slot in d.items:
        if not isinstance(slot, SList) or len(slot.items) != 2:
            raise FormError(usage, slot.span)
        out.append(new.ProgramSlot(span=slot.span, index=integer(slot.items[0], "the slot index", 0, (1 << 32) - 1),
                                   program=name(slot.items[1], "program")))
    return out


def map_type(opts: dict[str, Datum], which: str) -> str | None:
    """`:key u32`, or upstream's `:key-size 4` (bytes)."""
    if which in opts and f"{which}-size" in opts:
        raise FormError(f"give either :{which} or :{which}-size, not both", opts[f"{which}-size"].span)
    if which in opts:
        d = opts[which]
        if isinstance(d, Symbol) and d.name in tables.INT_TYPES:
            return d.name
        if isinstance(d, Symbol) and not ident_problem(d.name):
            return structs.struct_type(d.name)  # a defbpf-struct (the checker knows which exist)
        raise FormError(f"expected an integer type ({', '.join(tables.INT_TYPES)}) or a defbpf-struct name "
                        f"for :{which}, got {describe(d)}", d.span)
    if f"{which}-size" in opts:
        d = opts[f"{which}-size"]
        wide = which == "key" and isinstance(d, Integer) and d.value == WIDE_KEY_BYTES
        size = integer(d, f":{which}-size", 1, WIDE_KEY_BYTES if which == "key" else 8)
        if wide:
            return None  # no integer type: MapDecl.key_size
        if size not in BYTES_TO_TYPE:
            extra = " (16: lpm-trie IPv6 keys)" if which == "key" else ""
            raise FormError(f":{which}-size must be 1, 2, 4 or 8 bytes{extra}, got {size}", d.span)
        return BYTES_TO_TYPE[size]
    return None


def defbpf_struct(form: SList, module: ir.Module) -> None:
    """`(defbpf-struct flow (packets u64) (bytes u64) (comm (array u8 16)))`."""
    if len(form.items) < 3:
        raise FormError("expected (defbpf-struct name (field type) …) with at least one field", form.span)
    decl = new.StructDecl(span=form.span, name=name(form.items[1], "struct"), fields=[])
    for d in form.items[2:]:
        if not isinstance(d, SList) or len(d.items) != 2:
            raise FormError(f"expected a field (name type), e.g. (packets u64), got {describe(d)}", d.span)
        decl.fields.append(new.StructField(span=d.span, name=name(d.items[0], "field"), type=field_type(d.items[1])))
    module.structs.append(decl)


def field_type(d: Datum) -> str:
    """`u32`, `(array u8 16)` or an earlier defbpf-struct's name."""
    if isinstance(d, Symbol) and d.name in tables.INT_TYPES:
        return d.name
    if isinstance(d, SList) and d.head == "array":
        if len(d.items) != 3:
            raise FormError("expected (array TYPE LENGTH), e.g. (array u8 16)", d.span)
        elem = d.items[1]
        if not isinstance(elem, Symbol) or elem.name not in tables.INT_TYPES:
            raise FormError(f"array elements are integers ({', '.join(tables.INT_TYPES)}), got {describe(elem)}", elem.span)
        n = integer(d.items[2], "the array length", 1, structs.MAX_ARRAY_LEN)
        return structs.array_type(elem.name, n)
    if isinstance(d, Symbol):
        return structs.struct_type(name(d, "struct"))
    raise FormError(f"expected a field type: an integer type ({', '.join(tables.INT_TYPES)}), (array u8 16) "
                    f"or a defbpf-struct name, got {describe(d)}", d.span)


def defbpf_program(form: SList, module: ir.Module) -> None:
    opts = options(form, form.items[2:], ("kind", "attach", "license", "uses-maps", "kernel", "kernels", "max-insns"), ("kind",))
    decl = new.ProgramDecl(
        span=form.span,
        name=name(form.items[1], "program"),
        kind=keyword(opts["kind"], "program kind", list(tables.PROGRAM_KINDS)),
    )
    if "attach" in opts:
        decl.attach = attach(opts["attach"])
    if "license" in opts:
        decl.license = string(opts["license"], ":license", PRINTABLE_TEXT, "printable ASCII without quotes or backslashes")
    if "uses-maps" in opts:
        decl.uses_maps = name_list(opts["uses-maps"], "map")
    if "kernel" in opts:
        decl.kernel = string(opts["kernel"], ":kernel", KERNEL_VERSION, 'a kernel version such as "6.1" or "6.12.5"')
    if "kernels" in opts:
        decl.kernels = kernel_list(opts["kernels"])
    if "max-insns" in opts:
        decl.max_insns = integer(opts["max-insns"], ":max-insns", 1, tables.DEFAULT_MAX_INSNS)
    module.programs.append(decl)


def kernel_list(d: Datum) -> list[str]:
    """`:kernels ("5.10" "6.1")`: the kernels a program promises to run on."""
    if not isinstance(d, SList) or not d.items:
        raise FormError(f'expected a list of kernel versions, e.g. :kernels ("5.10" "6.1"), got {describe(d)}', d.span)
    return [string(x, ":kernels", KERNEL_VERSION, 'a kernel version such as "5.10" or "6.12"') for x in d.items]


def attach(d: Datum) -> ir.Attach:
    if not isinstance(d, SList):
        raise FormError(f'expected :attach (:target "…"), got {describe(d)}', d.span)
    opts = options(SList(d.pos, (Symbol(d.pos, ":attach"), *d.items)), d.items, ("target", "direction"))
    out = new.Attach(span=d.span)
    if "target" in opts:
        out.target = string(opts["target"], "attach target", ATTACH_TARGET, "use only [A-Za-z0-9_./:-] (at most 128)")
    if "direction" in opts:
        direction = opts["direction"]
        value = direction.name if isinstance(direction, Keyword) else direction.value if isinstance(direction, String) else None
        if value not in DIRECTIONS:
            raise FormError('attach direction must be "ingress" or "egress"', direction.span)
        out.direction = value
    return out


def defbpf_policy(form: SList, module: ir.Module) -> None:
    opts = options(form, form.items[2:], ("description", "programs", "maps"))
    decl = new.PolicyDecl(span=form.span, name=name(form.items[1], "policy", local=True))
    if "description" in opts:
        decl.description = string(opts["description"], ":description", PRINTABLE_TEXT, "printable ASCII without quotes or backslashes")
    if "programs" in opts:
        decl.programs = name_list(opts["programs"], "program")
    if "maps" in opts:
        decl.maps = name_list(opts["maps"], "map")
    module.policies.append(decl)


def bpf_fn(form: SList, module: ir.Module) -> None:
    if len(form.items) < 4:
        raise FormError("expected (bpf-fn name (ctx) body…)", form.span)
    params = form.items[2]
    if not isinstance(params, SList) or len(params.items) != 1:
        raise FormError("a bpf-fn takes exactly one parameter, the context: (bpf-fn name (ctx) body…)", params.span)
    module.functions.append(
        new.BpfFn(
            span=form.span,
            name=name(form.items[1], "function"),
            ctx=name(params.items[0], "context parameter", local=True),
            body=[expr(x) for x in form.items[3:]],
        )
    )


def scalar_type(d: Datum, what: str) -> str:
    if not isinstance(d, Symbol) or d.name not in tables.SCALAR_TYPES:
        raise FormError(f"expected the type of {what} ({', '.join(tables.SCALAR_TYPES)}), got {describe(d)}", d.span)
    return d.name


def value_type(d: Datum, what: str) -> str:
    """A scalar type, or a defbpf-struct's name (the checker knows which exist)."""
    if isinstance(d, Symbol) and d.name not in tables.SCALAR_TYPES and not ident_problem(d.name):
        return structs.struct_type(d.name)
    if not isinstance(d, Symbol) or d.name not in tables.SCALAR_TYPES:
        raise FormError(f"expected the type of {what} ({', '.join(tables.SCALAR_TYPES)} or a defbpf-struct), "
                        f"got {describe(d)}", d.span)
    return d.name


def scalar_literal(d: Datum, what: str) -> int:
    """An integer literal, or #t / #f (stored as 1 / 0); its range is the checker's."""
    if isinstance(d, Boolean):
        return int(d.value)
    return integer(d, what, -(1 << 63))


def global_name(d: Datum, what: str) -> str:
    """A const or function name: bodies write it where a form name could
    stand, so it may not be one."""
    text = name(d, what)
    if text in HANDLERS:
        raise FormError(f"`{text}` is a body form; a {what} cannot take its name", d.span)
    return text


def defbpf_const(form: SList, module: ir.Module) -> None:
    if len(form.items) != 4:
        raise FormError("expected (defbpf-const name type default), e.g. (defbpf-const limit u64 100)", form.span)
    module.consts.append(new.ConstDecl(
        span=form.span, name=global_name(form.items[1], "const"), const_type=scalar_type(form.items[2], "the const"),
        default=scalar_literal(form.items[3], "the default")))


def defbpf_func(form: SList, module: ir.Module) -> None:
    usage = "expected (defbpf-func name ((param type) …) [:returns type] body…)"
    if len(form.items) < 4 or not isinstance(form.items[2], SList):
        raise FormError(usage, form.span)
    params: list[ir.Param] = []
    for p in form.items[2].items:
        if not isinstance(p, SList) or len(p.items) != 2:
            raise FormError(f"each parameter is (name type), got {describe(p)}", p.span)
        pname = name(p.items[0], "parameter", local=True)
        if any(q.name == pname for q in params):
            raise FormError(f"parameter `{pname}` is declared twice", p.items[0].span)
        params.append(new.Param(span=p.span, name=pname, param_type=value_type(p.items[1], f"parameter `{pname}`")))
    rest = list(form.items[3:])
    returns = None
    if rest and isinstance(rest[0], Keyword):
        if rest[0].name != "returns":
            raise FormError(f"unknown option `:{rest[0].name}` for defbpf-func (only :returns TYPE)", rest[0].span)
        if len(rest) < 2:
            raise FormError("`:returns` needs a type", rest[0].span)
        returns = value_type(rest[1], ":returns")
        rest = rest[2:]
    if not rest:
        raise FormError(f"defbpf-func `{form.items[1].name}` needs a body" if isinstance(form.items[1], Symbol) else usage,
                        form.span)
    module.funcs.append(new.FuncDecl(span=form.span, name=global_name(form.items[1], "function"), params=params,
                                     returns=returns, body=[expr(x) for x in rest]))


def const_sets(d: Datum) -> list[ir.ConstSet]:
    if not isinstance(d, SList):
        raise FormError("expected :consts ((name value) …)", d.span)
    out = []
    for item in d.items:
        if not isinstance(item, SList) or len(item.items) != 2:
            raise FormError("expected (name value) in :consts", item.span)
        out.append(new.ConstSet(span=item.span, name=name(item.items[0], "const"),
                                value=scalar_literal(item.items[1], "the const's value")))
    return out


def defbpf_test(form: SList, module: ir.Module) -> None:
    opts = options(form, form.items[2:], ("program", "maps-before", "consts", "cases", "trigger", "expect-maps",
                                          "expect-events"), ("program",))
    if ("cases" in opts) == ("trigger" in opts):
        raise FormError("defbpf-test needs one of :cases (packets the program is run on) or :trigger (actions "
                        "that fire a tracing program in the VM)", form.span)
    decl = new.TestDecl(span=form.span, name=name(form.items[1], "test", local=True), program=name(opts["program"], "program"))
    if "cases" in opts:
        cases = opts["cases"]
        if not isinstance(cases, SList) or not cases.items:
            raise FormError("expected :cases ((name :packet (…) :expect :action) …)", cases.span)
        decl.cases = [test_case(c) for c in cases.items]
    else:
        decl.trigger = triggers(opts["trigger"])
    if "expect-maps" in opts:
        expects = opts["expect-maps"]
        if not isinstance(expects, SList):
            raise FormError("expected :expect-maps ((map key value) …)", expects.span)
        decl.expect_maps = [map_expect(e) for e in expects.items]
    if "maps-before" in opts:
        seeds = opts["maps-before"]
        if not isinstance(seeds, SList):
            raise FormError("expected :maps-before ((map key value) …)", seeds.span)
        decl.maps_before = [map_expect(e) for e in seeds.items]
    if "expect-events" in opts:
        events = opts["expect-events"]
        if not isinstance(events, SList):
            raise FormError("expected :expect-events ((map value) …), e.g. :expect-events ((events 60))", events.span)
        decl.expect_events = [event for e in events.items for event in event_expects(e)]
    if "consts" in opts:
        decl.consts = const_sets(opts["consts"])
    module.tests.append(decl)


TRIGGER_USAGE = '(open "PATH" [FLAGS]) or (connect PORT)'


def triggers(d: Datum) -> list[ir.Trigger]:
    """`:trigger ((open "/tmp/x") (connect 80) …)`: what the VM does while
    the program is attached."""
    if not isinstance(d, SList) or not d.items:
        raise FormError(f"expected :trigger (ACTION …), each {TRIGGER_USAGE}", d.span)
    out = []
    for item in d.items:
        if not isinstance(item, SList) or item.head not in ("open", "connect"):
            raise FormError(f"expected a trigger action, {TRIGGER_USAGE}; got {describe(item)}", item.span)
        if item.head == "open":
            args = arity(item, 1, 2, '(open "PATH" [FLAGS])')
            path = string(args[0], "path to open", tables.TRIGGER_PATH,
                          "an absolute path of letters, digits and _ . + - /, at most 200 characters")
            flags = integer(args[1], "open flags", 0, 0x7FFFFFFF) if len(args) > 1 else 0
            out.append(new.Trigger(span=item.span, action="open", path=path, flags=flags))
        else:
            (port,) = arity(item, 1, 1, "(connect PORT)")
            out.append(new.Trigger(span=item.span, action="connect", port=integer(port, "port", 1, 65535)))
    return out


def test_case(d: Datum) -> ir.TestCase:
    if not isinstance(d, SList) or len(d.items) < 1:
        raise FormError(f"expected a test case (name :packet (…) :expect :action), got {describe(d)}", d.span)
    form = SList(d.pos, (Symbol(d.pos, "test case"), *d.items[1:]))
    opts = options(form, d.items[1:], ("packet", "packet-hex", "truncate", "expect", "repeat", "expect-packet",
                                       "expect-packet-hex"), ("expect",))
    if ("packet" in opts) == ("packet-hex" in opts):
        raise FormError("a test case needs exactly one of :packet or :packet-hex", d.span)
    expect = opts["expect"]
    case = new.TestCase(span=d.span, name=name(d.items[0], "test case", local=True), expect_span=expect.span,
                        expect=integer(expect, ":expect", -(1 << 31), (1 << 32) - 1) if isinstance(expect, Integer)
                        else keyword(expect, ":expect"))
    if "packet" in opts:
        layers = opts["packet"]
        if not isinstance(layers, SList) or not layers.items:
            raise FormError("expected :packet ((eth) (ipv4) …)", layers.span)
        case.layers = [layer(x) for x in layers.items]
    else:
        case.packet_hex = string(opts["packet-hex"], ":packet-hex", HEX_TEXT, "an even number of hex digits")
    if "expect-packet" in opts and "expect-packet-hex" in opts:
        raise FormError("a test case has at most one of :expect-packet or :expect-packet-hex", d.span)
    if "expect-packet" in opts:
        layers = opts["expect-packet"]
        if not isinstance(layers, SList) or not layers.items:
            raise FormError("expected :expect-packet ((eth) (ipv4) …)", layers.span)
        case.expect_layers = [layer(x) for x in layers.items]
    if "expect-packet-hex" in opts:
        case.expect_packet_hex = string(opts["expect-packet-hex"], ":expect-packet-hex", HEX_TEXT,
                                        "an even number of hex digits")
    if "truncate" in opts:
        case.truncate = integer(opts["truncate"], ":truncate", 0, 65535)
    if "repeat" in opts:
        case.repeat = integer(opts["repeat"], ":repeat", 1, 1_000_000)
    return case


def layer(d: Datum) -> ir.Layer:
    if not isinstance(d, SList) or d.head is None:
        raise FormError(f"expected a packet layer such as (tcp :dport 80), got {describe(d)}", d.span)
    kinds = list(tables.PACKET_LAYERS)
    if d.head not in kinds:
        raise FormError(f"unknown packet layer `{d.head}`", d.items[0].span, *suggest(d.head, kinds), "known: " + ", ".join(kinds))
    spec = tables.PACKET_LAYERS[d.head]
    opts = options(d, d.items[1:], [*spec.fields, *spec.aliases])
    fields: dict[str, int | str | list[str]] = {}
    given: dict[str, str] = {}
    for key, value in opts.items():
        canonical = spec.aliases.get(key, key)
        if canonical in given:
            raise FormError(f"`:{given[canonical]}` and `:{key}` name the same {d.head} field", value.span)
        given[canonical] = key
        fields[canonical] = layer_value(value)
    return new.Layer(span=d.span, kind=d.head, fields=fields)


def layer_value(d: Datum) -> int | str | list[str]:
    if isinstance(d, Integer):
        return d.value
    if isinstance(d, String):
        return d.value
    if isinstance(d, SList) and all(isinstance(x, Symbol) for x in d.items):
        return [name(x, "flag") for x in d.items]
    raise FormError(f"expected an integer, a string or a list of flags, got {describe(d)}", d.span)


def map_expect(d: Datum) -> ir.MapExpect:
    if not isinstance(d, SList) or len(d.items) != 3:
        raise FormError("expected (map key value)", d.span)
    value = d.items[2]
    return new.MapExpect(
        span=d.span,
        map=name(d.items[0], "map"),
        key=map_key(d.items[1]),
        value=struct_literal(value) if is_make(value) else integer(value, "the value", -(1 << 63)),
    )


def event_expects(d: Datum) -> list[ir.EventExpect]:
    """`(map value)`, or `(map value value …)` for several records of one map, in order."""
    if not isinstance(d, SList) or len(d.items) < 2:
        raise FormError(f"expected events as (map value …), e.g. (events 60 61), got {describe(d)}", d.span)
    map_name = name(d.items[0], "map")
    return [new.EventExpect(span=v.span if len(d.items) > 2 else d.span, map=map_name,
                            value=struct_literal(v) if is_make(v) else integer(v, "the event", -(1 << 63)))
            for v in d.items[1:]]

def is_make(d: Datum) -> bool:
    return isinstance(d, SList) and d.head == "make"


def struct_literal(d: SList) -> ir.StructLit:
    """`(make flow :packets 4 :inner (make inner :x 1) :comm "sh" :ids (1 2))`
    in test data; the checker holds it to the struct (structs.encode)."""
    if len(d.items) < 2:
        raise FormError("expected (make STRUCT :field value …)", d.span)
    struct = name(d.items[1], "struct")
    fields = {}
    items = d.items[2:]
    for i in range(0, len(items), 2):
        key = items[i]
        if not isinstance(key, Keyword):
            raise FormError(f"expected a :field name, got {describe(key)}", key.span)
        if i + 1 >= len(items):
            raise FormError(f"field `:{key.name}` needs a value", key.span)
        if key.name in fields:
            raise FormError(f"field `:{key.name}` given twice", key.span)
        fields[name(Symbol(key.pos, key.name), "field")] = literal_field(items[i + 1])
    return new.StructLit(span=d.span, struct=struct, fields=fields)


def literal_field(d: Datum):
    if is_make(d):
        return struct_literal(d)
    if isinstance(d, String):
        return d.value
    if isinstance(d, SList):
        return [integer(x, "an array element", -(1 << 63)) for x in d.items]
    return integer(d, "a field value", -(1 << 63))


def map_key(d: Datum) -> int | str | ir.StructLit:
    """An integer, or (lpm-trie maps) a prefix such as "10.1.2.0/24", or a
    struct key `(make tuple …)`: the checker validates it against the map
    (mapdata.key_problem)."""
    if is_make(d):
        return struct_literal(d)
    if isinstance(d, String):
        return string(d, ":expect-maps key", LPM_KEY_TEXT, 'an address prefix such as "10.1.2.0/24" or "2001:db8::/32"')
    return integer(d, "the key", -(1 << 63))


DECLARATIONS: dict[str, Callable[[SList, ir.Module], None]] = {
    "defbpf-struct": defbpf_struct,
    "defbpf-map": defbpf_map,
    "defbpf-program": defbpf_program,
    "defbpf-policy": defbpf_policy,
    "bpf-fn": bpf_fn,
    "defbpf-test": defbpf_test,
    "defbpf-const": defbpf_const,
    "defbpf-func": defbpf_func,
}

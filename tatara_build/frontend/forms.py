"""s-expressions -> IR: the declaration forms (`defbpf-map`, `defbpf-program`,
`defbpf-policy`, `bpf-fn`, `defbpf-test`) and the `bpf-fn` body forms.

This stage checks shape only (arity, which keywords, identifier syntax,
strings that backends paste into sections/attributes); meaning (types, kinds,
tables) is the checker's job. Errors are collected per top-level form.
"""

from __future__ import annotations

import difflib
import re
from typing import Callable, Sequence

from .. import ir, tables
from ..errors import Diagnostic, SourceError, Span
from .names import ident_problem
from .reader import Boolean, Datum, Integer, Keyword, SList, String, Symbol

# Strings that end up inside generated code (SEC("…"), #[lsm(hook = "…")],
# license section) are restricted to these shapes.
ATTACH_TARGET = re.compile(r"[A-Za-z0-9_./:-]{1,128}")
DIRECTIONS = ("ingress", "egress")
PRINTABLE_TEXT = re.compile(r"[ !#-\[\]-~]{0,256}")  # printable ASCII minus `"` and `\`
KERNEL_VERSION = re.compile(r"[0-9]{1,2}\.[0-9]{1,3}(?:\.[0-9]{1,4})?")
PIN_PATH = re.compile(r"/(?:[A-Za-z0-9_.-]+/)*[A-Za-z0-9_.-]+")
HEX_TEXT = re.compile(r"(?:[0-9a-fA-F]{2})*")

SCALAR_TYPES = ("u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "bool")
BYTES_TO_TYPE = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}
COMPARE_OPS = {"=": "eq", "!=": "ne", "<": "lt", ">": "gt", "<=": "le", ">=": "ge"}
# Operators that fold left over 2+ operands; the others take exactly two.
FOLDING_OPS = {"+": "add", "*": "mul", "&": "bit-and", "|": "bit-or", "^": "bit-xor"}
PAIR_OPS = {"-": "sub", "/": "div", "%": "rem", "<<": "shl", ">>": "shr"}
MAX_INT = (1 << 64) - 1


class FormError(Exception):
    def __init__(self, message: str, span: Span, *notes: str):
        super().__init__(message)
        self.diagnostic = Diagnostic(message, span, list(notes))


def suggest(word: str, known: Sequence[str]) -> list[str]:
    close = difflib.get_close_matches(word, known, n=1)
    return [f"did you mean `{close[0]}`?"] if close else []


def describe(d: Datum) -> str:
    if isinstance(d, SList):
        return f"a list `({d.head} …)`" if d.head else "a list"
    if isinstance(d, Symbol):
        return f"`{d.name}`"
    if isinstance(d, Keyword):
        return f"keyword `:{d.name}`"
    if isinstance(d, String):
        return "a string"
    if isinstance(d, Integer):
        return f"integer {d.value}"
    return "a boolean"


# --- small extractors -----------------------------------------------------------


def name(d: Datum, what: str) -> str:
    if not isinstance(d, Symbol):
        raise FormError(f"expected {what} name, got {describe(d)}", d.span)
    problem = ident_problem(d.name)
    if problem:
        raise FormError(problem, d.span)
    return d.name


def name_list(d: Datum, what: str) -> list[str]:
    if not isinstance(d, SList):
        raise FormError(f"expected a list of {what} names, e.g. (a b), got {describe(d)}", d.span)
    return [name(x, what) for x in d.items]


def keyword(d: Datum, what: str, choices: Sequence[str] | None = None) -> str:
    if not isinstance(d, Keyword):
        raise FormError(f"expected {what} as a :keyword, got {describe(d)}", d.span)
    if choices is not None and d.name not in choices:
        raise FormError(
            f"unknown {what} `:{d.name}`", d.span, *suggest(d.name, choices), "known: " + ", ".join(choices)
        )
    return d.name


def integer(d: Datum, what: str, low: int = 0, high: int = MAX_INT) -> int:
    if not isinstance(d, Integer):
        raise FormError(f"expected an integer for {what}, got {describe(d)}", d.span)
    if not low <= d.value <= high:
        raise FormError(f"{what} must be between {low} and {high}, got {d.value}", d.span)
    return d.value


def string(d: Datum, what: str, shape: re.Pattern[str], rule: str) -> str:
    if not isinstance(d, String):
        raise FormError(f"expected a string for {what}, got {describe(d)}", d.span)
    if not shape.fullmatch(d.value):
        raise FormError(f"invalid {what} {d.value!r}: {rule}", d.span)
    return d.value


def options(form: SList, items: Sequence[Datum], allowed: Sequence[str], required: Sequence[str] = ()) -> dict[str, Datum]:
    """Parse `:key value …` pairs; unknown, repeated or missing keys are errors."""
    out: dict[str, Datum] = {}
    i = 0
    while i < len(items):
        key = items[i]
        if not isinstance(key, Keyword):
            raise FormError(f"expected a :keyword option, got {describe(key)}", key.span, "options: " + " ".join(f":{a}" for a in allowed))
        if key.name not in allowed:
            raise FormError(
                f"unknown option `:{key.name}` for {form.head}", key.span,
                *suggest(key.name, allowed), "options: " + " ".join(f":{a}" for a in allowed),
            )
        if key.name in out:
            raise FormError(f"option `:{key.name}` given twice", key.span)
        if i + 1 >= len(items):
            raise FormError(f"option `:{key.name}` needs a value", key.span)
        out[key.name] = items[i + 1]
        i += 2
    for key in required:
        if key not in out:
            raise FormError(f"{form.head} needs `:{key}`", form.span)
    return out


def arity(form: SList, low: int, high: int | None, usage: str) -> tuple[Datum, ...]:
    args = form.items[1:]
    if len(args) < low or (high is not None and len(args) > high):
        raise FormError(f"wrong number of arguments to `{form.head}`: expected {usage}", form.span)
    return args


# --- declarations ---------------------------------------------------------------


def to_module(data: list[Datum], file: str, source_sha256: str) -> ir.Module:
    module = ir.Module(file=file, source_sha256=source_sha256)
    errors: list[Diagnostic] = []
    for d in data:
        try:
            declaration(d, module)
        except FormError as err:
            errors.append(err.diagnostic)
    if errors:
        raise SourceError(errors)
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
    opts = options(form, form.items[2:], ("kind", "key", "value", "key-size", "value-size", "max-entries", "pin-path"), ("kind", "max-entries"))
    decl = ir.MapDecl(
        span=form.span,
        name=name(form.items[1], "map"),
        kind=keyword(opts["kind"], "map kind", list(tables.MAP_KINDS)),
        key=map_type(opts, "key"),
        value=map_type(opts, "value"),
        max_entries=integer(opts["max-entries"], ":max-entries", 1, (1 << 32) - 1),
    )
    if "pin-path" in opts:
        decl.pin_path = string(opts["pin-path"], ":pin-path", PIN_PATH, "an absolute path of [A-Za-z0-9_.-] parts")
    module.maps.append(decl)


def map_type(opts: dict[str, Datum], which: str) -> str | None:
    """`:key u32`, or upstream's `:key-size 4` (bytes)."""
    if which in opts and f"{which}-size" in opts:
        raise FormError(f"give either :{which} or :{which}-size, not both", opts[f"{which}-size"].span)
    if which in opts:
        d = opts[which]
        if not isinstance(d, Symbol) or d.name not in tables.INT_TYPES:
            raise FormError(f"expected an integer type for :{which} ({', '.join(tables.INT_TYPES)}), got {describe(d)}", d.span)
        return d.name
    if f"{which}-size" in opts:
        d = opts[f"{which}-size"]
        size = integer(d, f":{which}-size", 1, 8)
        if size not in BYTES_TO_TYPE:
            raise FormError(f":{which}-size must be 1, 2, 4 or 8 bytes, got {size}", d.span)
        return BYTES_TO_TYPE[size]
    return None


def defbpf_program(form: SList, module: ir.Module) -> None:
    opts = options(form, form.items[2:], ("kind", "attach", "license", "uses-maps", "kernel", "max-insns"), ("kind",))
    decl = ir.ProgramDecl(
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
    if "max-insns" in opts:
        decl.max_insns = integer(opts["max-insns"], ":max-insns", 1, tables.DEFAULT_MAX_INSNS)
    module.programs.append(decl)


def attach(d: Datum) -> ir.Attach:
    if not isinstance(d, SList):
        raise FormError(f'expected :attach (:target "…"), got {describe(d)}', d.span)
    opts = options(SList(d.pos, (Symbol(d.pos, ":attach"), *d.items)), d.items, ("target", "direction"))
    out = ir.Attach(span=d.span)
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
    decl = ir.PolicyDecl(span=form.span, name=name(form.items[1], "policy"))
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
        ir.BpfFn(
            span=form.span,
            name=name(form.items[1], "function"),
            ctx=name(params.items[0], "context parameter"),
            body=[expr(x) for x in form.items[3:]],
        )
    )


def defbpf_test(form: SList, module: ir.Module) -> None:
    opts = options(form, form.items[2:], ("program", "cases", "expect-maps"), ("program", "cases"))
    cases = opts["cases"]
    if not isinstance(cases, SList) or not cases.items:
        raise FormError("expected :cases ((name :packet (…) :expect :action) …)", cases.span)
    decl = ir.TestDecl(
        span=form.span,
        name=name(form.items[1], "test"),
        program=name(opts["program"], "program"),
        cases=[test_case(c) for c in cases.items],
    )
    if "expect-maps" in opts:
        expects = opts["expect-maps"]
        if not isinstance(expects, SList):
            raise FormError("expected :expect-maps ((map key value) …)", expects.span)
        decl.expect_maps = [map_expect(e) for e in expects.items]
    module.tests.append(decl)


def test_case(d: Datum) -> ir.TestCase:
    if not isinstance(d, SList) or len(d.items) < 1:
        raise FormError(f"expected a test case (name :packet (…) :expect :action), got {describe(d)}", d.span)
    form = SList(d.pos, (Symbol(d.pos, "test case"), *d.items[1:]))
    opts = options(form, d.items[1:], ("packet", "packet-hex", "truncate", "expect", "repeat"), ("expect",))
    if ("packet" in opts) == ("packet-hex" in opts):
        raise FormError("a test case needs exactly one of :packet or :packet-hex", d.span)
    case = ir.TestCase(span=d.span, name=name(d.items[0], "test case"), expect=keyword(opts["expect"], "expected action"))
    if "packet" in opts:
        layers = opts["packet"]
        if not isinstance(layers, SList) or not layers.items:
            raise FormError("expected :packet ((eth) (ipv4) …)", layers.span)
        case.layers = [layer(x) for x in layers.items]
    else:
        case.packet_hex = string(opts["packet-hex"], ":packet-hex", HEX_TEXT, "an even number of hex digits")
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
    fields = list(tables.PACKET_LAYERS[d.head].fields)
    opts = options(d, d.items[1:], fields)
    return ir.Layer(span=d.span, kind=d.head, fields={k: layer_value(v) for k, v in opts.items()})


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
    return ir.MapExpect(
        span=d.span,
        map=name(d.items[0], "map"),
        key=integer(d.items[1], "the key", -(1 << 63)),
        value=integer(d.items[2], "the value", -(1 << 63)),
    )


DECLARATIONS: dict[str, Callable[[SList, ir.Module], None]] = {
    "defbpf-map": defbpf_map,
    "defbpf-program": defbpf_program,
    "defbpf-policy": defbpf_policy,
    "bpf-fn": bpf_fn,
    "defbpf-test": defbpf_test,
}


# --- bpf-fn body ----------------------------------------------------------------


def expr(d: Datum) -> ir.Expr:
    if isinstance(d, Integer):
        return ir.Int(span=d.span, value=d.value)
    if isinstance(d, Boolean):
        return ir.Bool(span=d.span, value=d.value)
    if isinstance(d, Symbol):
        if d.name in BODY_FORMS:
            raise FormError(f"`{d.name}` is a form; write ({d.name} …)", d.span)
        return ir.Var(span=d.span, name=name(d, "variable"))
    if isinstance(d, Keyword):
        raise FormError(f"a keyword `:{d.name}` is not a value here; return actions are written (return :{d.name})", d.span)
    if isinstance(d, String):
        raise FormError("strings are only allowed in declarations, not in bpf-fn bodies", d.span)
    assert isinstance(d, SList)
    if not d.items:
        raise FormError("empty list `()` is not an expression", d.span)
    head = d.head
    if head is None:
        raise FormError(f"expected a form name at the head of the list, got {describe(d.items[0])}", d.items[0].span)
    if head in COMPARE_OPS:
        left, right = arity(d, 2, 2, f"({head} a b)")
        return ir.Compare(span=d.span, op=COMPARE_OPS[head], left=expr(left), right=expr(right))
    if head in FOLDING_OPS:
        args = arity(d, 2, None, f"({head} a b …) with two or more operands")
        result = expr(args[0])
        file, line, col = d.pos[:3]
        for arg in args[1:]:
            # Inner folds span from the operator to their last operand.
            span = Span(file=file, line=line, col=col, end_line=arg.pos[3], end_col=arg.pos[4])
            result = ir.Binary(span=span, op=FOLDING_OPS[head], left=result, right=expr(arg))
        return result
    if head in PAIR_OPS:
        left, right = arity(d, 2, 2, f"({head} a b); negative literals are written -5")
        return ir.Binary(span=d.span, op=PAIR_OPS[head], left=expr(left), right=expr(right))
    if head in SCALAR_TYPES:
        (value,) = arity(d, 1, 1, f"({head} value)")
        return ir.Cast(span=d.span, type=head, value=expr(value))
    handler = BODY_FORMS.get(head)
    if handler is None:
        known = sorted([*BODY_FORMS, *COMPARE_OPS, *FOLDING_OPS, *PAIR_OPS, *SCALAR_TYPES])
        raise FormError(f"unknown form `{head}`", d.items[0].span, *suggest(head, known), "known forms: " + " ".join(known))
    return handler(d)


def body(items: Sequence[Datum], form: SList) -> list[ir.Expr]:
    if not items:
        raise FormError(f"`{form.head}` needs a body", form.span)
    return [expr(x) for x in items]


def form_return(d: SList) -> ir.Expr:
    (value,) = arity(d, 1, 1, "(return :action) or (return value)")
    if isinstance(value, Keyword):
        return ir.Return(span=d.span, action=value.name)
    return ir.ReturnValue(span=d.span, value=expr(value))


def form_call(d: SList) -> ir.Expr:
    args = arity(d, 1, None, "(call helper args…)")
    return ir.Call(span=d.span, helper=name(args[0], "helper"), args=[expr(a) for a in args[1:]])


def form_let(d: SList) -> ir.Expr:
    args = arity(d, 2, None, "(let ((name value) …) body…)")
    bindings = args[0]
    if not isinstance(bindings, SList) or not bindings.items:
        raise FormError("expected a binding list ((name value) …)", bindings.span)
    pairs = []
    for b in bindings.items:
        if not isinstance(b, SList) or len(b.items) != 2:
            raise FormError("each binding is (name value)", b.span)
        pairs.append((b, name(b.items[0], "variable"), expr(b.items[1])))
    result = body(args[1:], d)
    # Desugar into nested single-binding lets, innermost first.
    for i, (b, var, value) in reversed(list(enumerate(pairs))):
        result = [ir.Let(span=d.span if i == 0 else b.span, name=var, value=value, body=result)]
    return result[0]


def form_if(d: SList) -> ir.Expr:
    args = arity(d, 2, 3, "(if cond then [else])")
    otherwise = expr(args[2]) if len(args) == 3 else ir.Begin(span=d.span, body=[])
    return ir.If(span=d.span, cond=expr(args[0]), then=expr(args[1]), otherwise=otherwise)


def form_begin(d: SList) -> ir.Expr:
    return ir.Begin(span=d.span, body=[expr(x) for x in d.items[1:]])


def form_and(d: SList) -> ir.Expr:
    args = arity(d, 1, None, f"({d.head} a b …)")
    return (ir.And if d.head == "and" else ir.Or)(span=d.span, args=[expr(a) for a in args])


def form_not(d: SList) -> ir.Expr:
    (arg,) = arity(d, 1, 1, "(not x)")
    return ir.Not(span=d.span, arg=expr(arg))


def form_cast(d: SList) -> ir.Expr:
    target, value = arity(d, 2, 2, "(cast type value)")
    if not isinstance(target, Symbol) or target.name not in SCALAR_TYPES:
        raise FormError(f"expected a type ({', '.join(SCALAR_TYPES)}), got {describe(target)}", target.span)
    return ir.Cast(span=d.span, type=target.name, value=expr(value))


def form_set(d: SList) -> ir.Expr:
    var, value = arity(d, 2, 2, "(set! name value)")
    return ir.SetVar(span=d.span, name=name(var, "variable"), value=expr(value))


def form_loop(d: SList) -> ir.Expr:
    args = arity(d, 2, None, "(loop (i start end) body…)")
    spec = args[0]
    if not isinstance(spec, SList) or len(spec.items) != 3:
        raise FormError("expected a loop header (i start end) with literal bounds", spec.span)
    var, start, end = spec.items
    for bound in (start, end):
        if not isinstance(bound, Integer):
            raise FormError(f"loop bounds must be integer literals (the verifier needs a constant bound), got {describe(bound)}", bound.span)
    return ir.Loop(span=d.span, var=name(var, "loop variable"), start=start.value, end=end.value, body=body(args[1:], d))


def form_break(d: SList) -> ir.Expr:
    arity(d, 0, 0, "(break)")
    return ir.Break(span=d.span)


def form_header(d: SList) -> ir.Expr:
    ctx, which = arity(d, 2, 2, "(header ctx :tcp)")
    return ir.Header(span=d.span, ctx=name(ctx, "context"), header=keyword(which, "header", list(tables.HEADERS)))


def form_if_let(d: SList) -> ir.Expr:
    args = arity(d, 2, 3, "(if-let (name optional) then [else])")
    binding = args[0]
    if not isinstance(binding, SList) or len(binding.items) != 2:
        raise FormError("expected (if-let (name (header ctx :tcp)) then [else])", binding.span)
    otherwise = expr(args[2]) if len(args) == 3 else ir.Begin(span=d.span, body=[])
    return ir.IfLet(
        span=d.span, name=name(binding.items[0], "variable"), value=expr(binding.items[1]), then=expr(args[1]), otherwise=otherwise
    )


def form_field(d: SList) -> ir.Expr:
    value, field = arity(d, 2, 2, "(field header :name)")
    return ir.HeaderField(span=d.span, value=expr(value), field=keyword(field, "header field"))


def form_ctx_field(d: SList) -> ir.Expr:
    ctx, field = arity(d, 2, 2, "(ctx-field ctx :name)")
    return ir.CtxField(span=d.span, ctx=name(ctx, "context"), field=keyword(field, "context field"))


def map_form(model: type, usage: str, *parts: str) -> Callable[[SList], ir.Expr]:
    def build(d: SList) -> ir.Expr:
        args = arity(d, 1 + len(parts), 1 + len(parts), usage)
        return model(span=d.span, map=name(args[0], "map"), **{p: expr(a) for p, a in zip(parts, args[1:])})

    return build


BODY_FORMS: dict[str, Callable[[SList], ir.Expr]] = {
    "return": form_return,
    "call": form_call,
    "let": form_let,
    "if": form_if,
    "begin": form_begin,
    "do": form_begin,
    "and": form_and,
    "or": form_and,
    "not": form_not,
    "cast": form_cast,
    "set!": form_set,
    "loop": form_loop,
    "break": form_break,
    "header": form_header,
    "if-let": form_if_let,
    "field": form_field,
    "ctx-field": form_ctx_field,
    "map-get": map_form(ir.MapGet, "(map-get map key)", "key"),
    "map-lookup": map_form(ir.MapLookup, "(map-lookup map key)", "key"),
    "map-set": map_form(ir.MapSet, "(map-set map key value)", "key", "value"),
    "map-add": map_form(ir.MapAdd, "(map-add map key delta)", "key", "value"),
    "map-delete": map_form(ir.MapDelete, "(map-delete map key)", "key"),
    "event-output": map_form(ir.EventOutput, "(event-output map value)", "value"),
}

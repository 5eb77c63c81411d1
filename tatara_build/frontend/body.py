"""`bpf-fn` body forms -> IR expressions (surface syntax in DESIGN.md):
return, call, let (multi-binding lets become nested single lets), if,
comparisons, begin/do, and/or/not, arithmetic (n-ary + * & | ^ fold left),
casts `(cast u32 x)` / `(u32 x)`, set!, loop, break, header, if-let, field,
ctx-field, set-field!, set-ctx-field! and the map forms. An unknown head is an error naming the known
forms, with the closest match."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from .. import ir, tables
from ..ir import trusted as new  # unvalidated constructors: values are checked here
from .reader import Boolean, Datum, Integer, Keyword, SList, String, Symbol, span_of
from .shapes import FormError, arity, describe, integer, keyword, name, suggest

SCALAR_TYPES = ("u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "bool")
COMPARE_OPS = {"=": "eq", "!=": "ne", "<": "lt", ">": "gt", "<=": "le", ">=": "ge"}
# Operators that fold left over 2+ operands; the others take exactly two.
FOLDING_OPS = {"+": "add", "*": "mul", "&": "bit-and", "|": "bit-or", "^": "bit-xor"}
PAIR_OPS = {"-": "sub", "/": "div", "%": "rem", "<<": "shl", ">>": "shr"}
# printk formats go into generated C and Rust string literals: printable
# ASCII only (the backends escape `"`, `\\` and `?`), at most
# tables.PRINTK_MAX_FORMAT characters.
PRINTK_TEXT = re.compile(r"[ -~]*")
# Names of the file's defbpf-funcs while it is converted: a list headed by
# one is a call. One set, changed in place (replacing it would free objects
# a caller may have frozen, see frontend.collector_paused).
_FUNCS: set[str] = set()


@contextmanager
def declared_funcs(names: set[str]) -> Iterator[None]:
    outer = set(_FUNCS)
    _FUNCS.clear()
    _FUNCS.update(names)
    try:
        yield
    finally:
        _FUNCS.clear()
        _FUNCS.update(outer)


def expr(d: Datum) -> ir.Expr:
    # The hot path first: a list headed by a known form name (one dict lookup).
    if type(d) is SList:
        items = d.items
        if items and type(items[0]) is Symbol:
            handler = HANDLERS.get(items[0].name)
            if handler is not None:
                return handler(d)
            if items[0].name in _FUNCS:
                return form_func_call(d)
        return bad_list(d)
    if type(d) is Symbol:
        if d.name in BODY_FORMS:
            raise FormError(f"`{d.name}` is a form; write ({d.name} …)", d.span)
        return new.Var(span=d.span, name=name(d, "variable", local=True))
    if type(d) is Integer:
        return new.Int(span=d.span, value=d.value)
    if type(d) is Boolean:
        return new.Bool(span=d.span, value=d.value)
    if type(d) is Keyword:
        raise FormError(f"a keyword `:{d.name}` is not a value here; return actions are written (return :{d.name})", d.span)
    assert type(d) is String
    raise FormError("strings are only allowed in declarations and as the format of (printk \"…\" …), "
                    "not elsewhere in bodies", d.span)


def bad_list(d: SList) -> ir.Expr:
    if not d.items:
        raise FormError("empty list `()` is not an expression", d.span)
    head = d.head
    if head is None:
        raise FormError(f"expected a form name at the head of the list, got {describe(d.items[0])}", d.items[0].span)
    known = sorted(HANDLERS)
    funcs = sorted(_FUNCS)
    notes = [*suggest(head, known + funcs), "known forms: " + " ".join(known)]
    if funcs:
        notes.append("functions (defbpf-func): " + " ".join(funcs))
    raise FormError(f"unknown form `{head}`", d.items[0].span, *notes)


def form_func_call(d: SList) -> ir.Expr:
    return new.FuncCall(span=d.span, name=d.head, args=[expr(a) for a in d.items[1:]])


def form_printk(d: SList) -> ir.Expr:
    args = arity(d, 1, None, '(printk "format %u" args…)')
    fmt = args[0]
    if not isinstance(fmt, String):
        raise FormError(f"printk's format must be a string literal, got {describe(fmt)}", fmt.span)
    bad = next((ch for ch in fmt.value if not PRINTK_TEXT.fullmatch(ch)), None)
    if bad is not None:
        raise FormError(f"printk format may hold printable ASCII only, found {bad!r}", fmt.span,
                        "the kernel's trace buffer adds the line break itself")
    if len(fmt.value) > tables.PRINTK_MAX_FORMAT:
        raise FormError(f"printk format is {len(fmt.value)} characters long, over the limit of "
                        f"{tables.PRINTK_MAX_FORMAT}", fmt.span)
    return new.Printk(span=d.span, format=fmt.value, args=[expr(a) for a in args[1:]])


def form_compare(d: SList) -> ir.Expr:
    head = d.head
    left, right = arity(d, 2, 2, f"({head} a b)")
    return new.Compare(span=d.span, op=COMPARE_OPS[head], left=expr(left), right=expr(right))


def form_fold(d: SList) -> ir.Expr:
    head = d.head
    args = arity(d, 2, None, f"({head} a b …) with two or more operands")
    result = expr(args[0])
    file, line, col = d.pos[:3]
    for arg in args[1:]:
        # Inner folds span from the operator to their last operand.
        span = span_of((file, line, col, arg.pos[3], arg.pos[4]))
        result = new.Binary(span=span, op=FOLDING_OPS[head], left=result, right=expr(arg))
    return result


def form_pair(d: SList) -> ir.Expr:
    head = d.head
    left, right = arity(d, 2, 2, f"({head} a b); negative literals are written -5")
    return new.Binary(span=d.span, op=PAIR_OPS[head], left=expr(left), right=expr(right))


def form_type_cast(d: SList) -> ir.Expr:
    head = d.head
    (value,) = arity(d, 1, 1, f"({head} value)")
    return new.Cast(span=d.span, to=head, value=expr(value))


def body(items: Sequence[Datum], form: SList) -> list[ir.Expr]:
    if not items:
        raise FormError(f"`{form.head}` needs a body", form.span)
    return [expr(x) for x in items]


def form_return(d: SList) -> ir.Expr:
    (value,) = arity(d, 1, 1, "(return :action) or (return value)")
    if isinstance(value, Keyword):
        return new.Return(span=d.span, action=value.name)
    return new.ReturnValue(span=d.span, value=expr(value))


def form_call(d: SList) -> ir.Expr:
    args = arity(d, 1, None, "(call helper args…)")
    return new.Call(span=d.span, helper=name(args[0], "helper"), args=[expr(a) for a in args[1:]])


def form_current_comm(d: SList) -> ir.Expr:
    """`(current-comm)`: the helper call that yields the task's comm (an
    array, so it has a form of its own rather than `(call …)`)."""
    arity(d, 0, 0, "(current-comm)")
    return new.Call(span=d.span, helper="current-comm", args=[])


def form_string_read(d: SList) -> ir.Expr:
    """`(probe-read-user-str PTR)` / `(probe-read-kernel-str PTR)`: a string
    copied into the array field it is stored in (checked there)."""
    (ptr,) = arity(d, 1, 1, f"({d.head} PTR)")
    return new.Call(span=d.span, helper=d.head, args=[expr(ptr)])


def form_let(d: SList) -> ir.Expr:
    args = arity(d, 2, None, "(let ((name value) …) body…)")
    bindings = args[0]
    if not isinstance(bindings, SList) or not bindings.items:
        raise FormError("expected a binding list ((name value) …)", bindings.span)
    pairs = []
    for b in bindings.items:
        if not isinstance(b, SList) or len(b.items) != 2:
            raise FormError("each binding is (name value)", b.span)
        var = name(b.items[0], "variable", local=True)
        if any(var == seen for _, seen, _ in pairs):
            raise FormError(f"`{var}` is bound twice in this let", b.items[0].span)
        pairs.append((b, var, expr(b.items[1])))
    result = body(args[1:], d)
    # Desugar into nested single-binding lets, innermost first.
    for i, (b, var, value) in reversed(list(enumerate(pairs))):
        result = [new.Let(span=d.span if i == 0 else b.span, name=var, value=value, body=result)]
    return result[0]


def form_if(d: SList) -> ir.Expr:
    args = arity(d, 2, 3, "(if cond then [else])")
    otherwise = expr(args[2]) if len(args) == 3 else new.Begin(span=d.span, body=[])
    return new.If(span=d.span, cond=expr(args[0]), then=expr(args[1]), otherwise=otherwise)


def form_begin(d: SList) -> ir.Expr:
    return new.Begin(span=d.span, body=[expr(x) for x in d.items[1:]])


def form_and(d: SList) -> ir.Expr:
    args = arity(d, 1, None, f"({d.head} a b …)")
    return (new.And if d.head == "and" else new.Or)(span=d.span, args=[expr(a) for a in args])


def form_not(d: SList) -> ir.Expr:
    (arg,) = arity(d, 1, 1, "(not x)")
    return new.Not(span=d.span, arg=expr(arg))


def form_cast(d: SList) -> ir.Expr:
    target, value = arity(d, 2, 2, "(cast type value)")
    if not isinstance(target, Symbol) or target.name not in SCALAR_TYPES:
        raise FormError(f"expected a type ({', '.join(SCALAR_TYPES)}), got {describe(target)}", target.span)
    return new.Cast(span=d.span, to=target.name, value=expr(value))


def form_set(d: SList) -> ir.Expr:
    var, value = arity(d, 2, 2, "(set! name value)")
    return new.SetVar(span=d.span, name=name(var, "variable", local=True), value=expr(value))


def form_loop(d: SList) -> ir.Expr:
    args = arity(d, 2, None, "(loop (i start end) body…)")
    spec = args[0]
    if not isinstance(spec, SList) or len(spec.items) != 3:
        raise FormError("expected a loop header (i start end) with literal bounds", spec.span)
    var, start, end = spec.items
    for bound in (start, end):
        if not isinstance(bound, Integer):
            raise FormError(f"loop bounds must be integer literals (the verifier needs a constant bound), got {describe(bound)}", bound.span)
    return new.Loop(span=d.span, var=name(var, "loop variable", local=True), start=start.value, end=end.value, body=body(args[1:], d))


def form_break(d: SList) -> ir.Expr:
    arity(d, 0, 0, "(break)")
    return new.Break(span=d.span)


def form_header(d: SList) -> ir.Expr:
    ctx, which = arity(d, 2, 2, "(header ctx :tcp)")
    return new.Header(span=d.span, ctx=name(ctx, "context", local=True), header=keyword(which, "header", list(tables.HEADERS)))


def form_if_let(d: SList) -> ir.Expr:
    args = arity(d, 2, 3, "(if-let (name optional) then [else])")
    binding = args[0]
    if not isinstance(binding, SList) or len(binding.items) != 2:
        raise FormError("expected (if-let (name (header ctx :tcp)) then [else])", binding.span)
    otherwise = expr(args[2]) if len(args) == 3 else new.Begin(span=d.span, body=[])
    return new.IfLet(
        span=d.span, name=name(binding.items[0], "variable", local=True), value=expr(binding.items[1]), then=expr(args[1]), otherwise=otherwise
    )


def form_field(d: SList) -> ir.Expr:
    value, field = arity(d, 2, 2, "(field header-or-struct :name)")
    return new.HeaderField(span=d.span, value=expr(value), field=keyword(field, "field"))


def form_make(d: SList) -> ir.Expr:
    """`(make flow :packets 1 :bytes len)`: fields by keyword, each once."""
    if len(d.items) < 2:
        raise FormError("wrong number of arguments to `make`: expected (make STRUCT :field value …)", d.span)
    struct = name(d.items[1], "struct")
    fields, values = [], []
    items = d.items[2:]
    for i in range(0, len(items), 2):
        field = keyword(items[i], "struct field")
        if i + 1 >= len(items):
            raise FormError(f"field `:{field}` needs a value", items[i].span)
        if field in fields:
            raise FormError(f"field `:{field}` given twice", items[i].span)
        fields.append(field)
        values.append(expr(items[i + 1]))
    return new.Make(span=d.span, struct=struct, fields=fields, values=values)


def form_field_add(d: SList) -> ir.Expr:
    value, field, delta = arity(d, 3, 3, "(field-add! map-value :field delta)")
    return new.FieldAdd(span=d.span, value=expr(value), field=keyword(field, "field"), delta=expr(delta))


def form_ctx_field(d: SList) -> ir.Expr:
    ctx, field = arity(d, 2, 2, "(ctx-field ctx :name)")
    return new.CtxField(span=d.span, ctx=name(ctx, "context", local=True), field=keyword(field, "context field"))


C_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def kernel_name(d: Datum, what: str) -> str:
    """A kernel C name (struct, field): the one place `_` is allowed. It is
    checked against the kernel's BTF later; here only that it is an identifier."""
    text = d.name if isinstance(d, (Symbol, Keyword)) else None
    if text is None or not C_IDENT.fullmatch(text):
        shown = f"`{text}`" if text is not None else describe(d)
        raise FormError(f"expected {what}, the kernel's C name ([A-Za-z_][A-Za-z0-9_]*, up to 128), got {shown}", d.span,
                        *(["kernel names are spelled as in C: `-` is `_` there"] if text and "-" in text else []))
    return text


def form_arg(d: SList) -> ir.Expr:
    ctx, index = arity(d, 2, 2, "(arg ctx N)")
    if not isinstance(index, Integer):
        raise FormError(f"the argument number must be an integer literal, got {describe(index)}", index.span)
    return new.Arg(span=d.span, ctx=name(ctx, "context"), index=index.value)


def form_tp_field(d: SList) -> ir.Expr:
    ctx, field = arity(d, 2, 2, "(tp-field ctx :field)")
    if not isinstance(field, Keyword):
        raise FormError(f"expected the tracepoint field as a :keyword, got {describe(field)}", field.span)
    return new.TpField(span=d.span, ctx=name(ctx, "context"), field=kernel_name(field, "a tracepoint field"))


def form_core_read(d: SList) -> ir.Expr:
    args = arity(d, 3, None, "(core-read PTR struct :field :field …), e.g. (core-read (arg ctx 0) sock :__sk_common :skc_daddr)")
    pointer, struct, *fields = args
    if not isinstance(struct, Symbol):
        raise FormError(f"expected the kernel struct's C name (e.g. sock, task_struct), got {describe(struct)}", struct.span)
    names: list[str | int] = []
    for f in fields:
        if isinstance(f, Integer) and names and isinstance(names[-1], str):  # an array element
            names.append(integer(f, "an array index", 0, 1 << 20))
            continue
        if not isinstance(f, Keyword):
            raise FormError(f"expected a field of the kernel struct as a :keyword (or an index after an array "
                            f"field), got {describe(f)}", f.span)
        names.append(kernel_name(f, "a struct field"))
    return new.CoreRead(span=d.span, value=expr(pointer), struct=kernel_name(struct, "a kernel struct"), fields=names)


LOAD_TYPES = ("u8", "u16", "u32", "u64")


def form_load(d: SList) -> ir.Expr:
    value, offset, to = arity(d, 3, 3, "(load header offset type), e.g. (load tcp 0 u32)")
    if not isinstance(to, Symbol) or to.name not in LOAD_TYPES:
        raise FormError(f"expected the type read, one of {', '.join(LOAD_TYPES)}, got {describe(to)}", to.span)
    return new.Load(span=d.span, value=expr(value), offset=expr(offset), to=to.name)


def form_set_field(d: SList) -> ir.Expr:
    value, field, new_value = arity(d, 3, 3, "(set-field! header :name value)")
    return new.SetField(span=d.span, value=expr(value), field=keyword(field, "field"), new=expr(new_value))


def form_set_ctx_field(d: SList) -> ir.Expr:
    ctx, field, value = arity(d, 3, 3, "(set-ctx-field! ctx :name value)")
    return new.SetCtxField(span=d.span, ctx=name(ctx, "context"), field=keyword(field, "context field"),
                           value=expr(value))


def form_lpm_key(d: SList) -> ir.Expr:
    args = arity(d, 2, 3, "(lpm-key prefix-bits address), or (lpm-key prefix-bits hi lo) for IPv6 tries")
    return new.LpmKey(span=d.span, prefix=expr(args[0]), address=[expr(a) for a in args[1:]])


def form_redirect(d: SList) -> ir.Expr:
    args = arity(d, 1, 2, "(redirect IFINDEX) or, on tc, (redirect IFINDEX :ingress)")
    ingress = False
    if len(args) == 2:
        keyword(args[1], "redirect flag", ["ingress"])
        ingress = True
    return new.Redirect(span=d.span, ifindex=expr(args[0]), ingress=ingress)


def form_redirect_map(d: SList) -> ir.Expr:
    args = arity(d, 2, 3, "(redirect-map map key [:fallback-action])")
    node = new.RedirectMap(span=d.span, map=name(args[0], "map"), key=expr(args[1]))
    if len(args) == 3:
        node.fallback = keyword(args[2], "fallback action")
    return node


def form_tail_call(d: SList) -> ir.Expr:
    ctx, m, index = arity(d, 3, 3, "(tail-call ctx map index)")
    return new.TailCall(span=d.span, ctx=name(ctx, "context"), map=name(m, "map"), index=expr(index))


def form_adjust(d: SList) -> ir.Expr:
    ctx, delta = arity(d, 2, 2, f"({d.head} ctx delta)")
    make = new.AdjustHead if d.head == "adjust-head" else new.AdjustTail
    return make(span=d.span, ctx=name(ctx, "context"), delta=expr(delta))


def form_get_stackid(d: SList) -> ir.Expr:
    args = arity(d, 2, 3, "(get-stackid ctx map [flags])")
    node = new.GetStackId(span=d.span, ctx=name(args[0], "context"), map=name(args[1], "map"))
    if len(args) == 3:
        node.flags = expr(args[2])
    return node


# Map forms: IR model, usage, and the argument names after the map. One
# plain handler reads this table (no closures made at import, which mutation
# testing could not reach).
MAP_FORMS: dict[str, tuple[type, str, tuple[str, ...]]] = {
    "map-get": (ir.MapGet, "(map-get map key)", ("key",)),
    "map-lookup": (ir.MapLookup, "(map-lookup map key)", ("key",)),
    "map-set": (ir.MapSet, "(map-set map key value)", ("key", "value")),
    "map-add": (ir.MapAdd, "(map-add map key delta)", ("key", "value")),
    "map-delete": (ir.MapDelete, "(map-delete map key)", ("key",)),
    "event-output": (ir.EventOutput, "(event-output map value)", ("value",)),
}


def form_map(d: SList) -> ir.Expr:
    model, usage, parts = MAP_FORMS[d.head]
    args = arity(d, 1 + len(parts), 1 + len(parts), usage)
    make = getattr(new, model.__name__)
    return make(span=d.span, map=name(args[0], "map"), **{p: expr(a) for p, a in zip(parts, args[1:])})


BODY_FORMS: dict[str, Callable[[SList], ir.Expr]] = {
    "return": form_return,
    "call": form_call,
    "current-comm": form_current_comm,
    "probe-read-user-str": form_string_read,
    "probe-read-kernel-str": form_string_read,
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
    "set-field!": form_set_field,
    "load": form_load,
    "set-ctx-field!": form_set_ctx_field,
    "make": form_make,
    "field-add!": form_field_add,
    **dict.fromkeys(MAP_FORMS, form_map),
    "lpm-key": form_lpm_key,
    "arg": form_arg,
    "tp-field": form_tp_field,
    "core-read": form_core_read,
    "redirect": form_redirect,
    "redirect-map": form_redirect_map,
    "tail-call": form_tail_call,
    "adjust-head": form_adjust,
    "adjust-tail": form_adjust,
    "get-stackid": form_get_stackid,
    "printk": form_printk,
}
# Every list head `expr` accepts: the named forms, operators and cast shorthands.
HANDLERS: dict[str, Callable[[SList], ir.Expr]] = {
    **BODY_FORMS,
    **dict.fromkeys(COMPARE_OPS, form_compare),
    **dict.fromkeys(FOLDING_OPS, form_fold),
    **dict.fromkeys(PAIR_OPS, form_pair),
    **dict.fromkeys(SCALAR_TYPES, form_type_cast),
}

"""The typed IR: plain records (model.py), no behaviour beyond structure.

JSON is compatible with the seed's serde shapes (`BpfFn` / `BpfExpr`, tag
`form`, kebab-case): `{"form": "return", "action": "xdp-pass"}`,
`{"form": "if", "cond": …, "then": …, "otherwise": …}`. The seed's
unserialisable newtype variants are `{"form": "int", "value": 42}` and
`{"form": "var", "name": "x"}`. `span` is optional everywhere so the seed's
span-less JSON loads as-is; `model_dump(exclude_none=True)` round-trips exactly.
Nodes are built without validation (the frontend checked every value);
JSON from outside is validated (`from_json`, pydantic models mirrored from
these classes, model_mirror.py).

Names in the IR are the user's kebab-case names, already validated by the
frontend against `[a-z][a-z0-9-]*`; keywords are stored without the colon.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, Union, get_args

from .model import Field, Model
from .span import Span
from .types import Type

# u8…u64, i8…i64, bool. `action` is the return-action type of the program kind.
IntType = Literal["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"]
ScalarType = Literal["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "bool"]

# A field's or map key's/value's type besides the integers: a struct
# (`struct:flow`) or, in struct fields only, a fixed array (`array:u8:16`).
StructType = Annotated[str, Field(pattern=r"^struct:[a-z][a-z0-9]*(-[a-z0-9]+)*$")]
ArrayType = Annotated[str, Field(pattern=r"^array:[ui](8|16|32|64):[1-9][0-9]{0,3}$")]


class Node(Model, extra="forbid", populate_by_name=True):
    span: Span | None = None
    # Filled in by the checker on expressions; backends rely on it. A
    # types.Type (Int, Bool, Unit, Never, Header, Option, Struct, Ref, …),
    # None before checking. JSON and the schema keep its spelling: "u32",
    # "unit", "header:ipv4", "option:u64" (model.py writes it, model_mirror.py
    # reads it back with types.parse).
    type: Type | None = None


# --- expressions ------------------------------------------------------------
# Seed forms: return, call, let, if, compare, map-get, map-set, int, var.


class Return(Node):
    """`(return :xdp-pass)`: a return-action keyword of the program's kind."""

    form: Literal["return"] = "return"
    action: str


class ReturnValue(Node):
    """`(return EXPR)`: an integer of the kind's return type (e.g. socket-filter
    bytes to keep)."""

    form: Literal["return-value"] = "return-value"
    value: Expr


class Call(Node):
    """`(call helper-name args…)`: a helper from the per-kind allow-list."""

    form: Literal["call"] = "call"
    helper: str
    args: list[Expr] = []


class Let(Node):
    """`(let ((name expr)) body…)`: one binding; multi-binding lets are
    desugared into nested singles by the frontend."""

    form: Literal["let"] = "let"
    name: str
    value: Expr
    body: list[Expr]


class If(Node):
    """`(if cond then [else])`; a missing else is `begin` with no body."""

    form: Literal["if"] = "if"
    cond: Expr
    then: Expr
    otherwise: Expr


CompareOp = Literal["eq", "ne", "lt", "gt", "le", "ge"]


class Compare(Node):
    """`(= a b)` `(!= a b)` `(< a b)` `(> a b)` `(<= a b)` `(>= a b)`."""

    form: Literal["compare"] = "compare"
    op: CompareOp
    left: Expr
    right: Expr


class MapGet(Node):
    """`(map-get m key)`: the value, or 0 when the key is absent."""

    form: Literal["map-get"] = "map-get"
    map: str
    key: Expr


class MapSet(Node):
    """`(map-set m key value)`: update with BPF_ANY (arrays: write in place)."""

    form: Literal["map-set"] = "map-set"
    map: str
    key: Expr
    value: Expr


class Int(Node):
    """An integer literal; it takes the type its context needs (checker)."""

    form: Literal["int"] = "int"
    value: int


class Var(Node):
    form: Literal["var"] = "var"
    name: str


# Extensions beyond the seed.


class Bool(Node):
    """`#t` / `#f`."""

    form: Literal["bool"] = "bool"
    value: bool


class Begin(Node):
    """`(begin e…)` / `(do e…)`: value of the last expression."""

    form: Literal["begin"] = "begin"
    body: list[Expr] = []


class And(Node):
    form: Literal["and"] = "and"
    args: list[Expr]


class Or(Node):
    form: Literal["or"] = "or"
    args: list[Expr]


class Not(Node):
    form: Literal["not"] = "not"
    arg: Expr


BinaryOp = Literal["add", "sub", "mul", "div", "rem", "bit-and", "bit-or", "bit-xor", "shl", "shr"]


class Binary(Node):
    """`(+ a b)` `(- a b)` `(* a b)` `(/ a b)` `(% a b)` `(& a b)` `(| a b)`
    `(^ a b)` `(<< a b)` `(>> a b)`: both operands the same integer type
    (wrap-around arithmetic; `/` and `%` by zero give 0 as in BPF)."""

    form: Literal["binary"] = "binary"
    op: BinaryOp
    left: Expr
    right: Expr


class Cast(Node):
    """`(cast u32 x)` or the shorthand `(u32 x)`: explicit width change
    (truncation / zero- or sign-extension as in C)."""

    form: Literal["cast"] = "cast"
    to: ScalarType  # the user's target; `type` (from the checker) stays the inferred type
    value: Expr


class SetVar(Node):
    """`(set! name expr)`: assign to a let-bound variable (same type)."""

    form: Literal["set"] = "set"
    name: str
    value: Expr


class Loop(Node):
    """`(loop (i START END) body…)`: i runs START..END-1; both bounds are
    literals so the verifier sees a bounded loop. `i` is u32."""

    form: Literal["loop"] = "loop"
    var: str
    start: int
    end: int
    body: list[Expr]


class Break(Node):
    """`(break)`: leave the innermost loop."""

    form: Literal["break"] = "break"


HeaderName = Literal["eth", "vlan", "ipv4", "ipv6", "tcp", "udp", "icmp", "icmpv6"]


class Header(Node):
    """`(header ctx :tcp)`: parse the packet up to that header, with the bounds
    checks generated. Its value is optional: only usable through `if-let`."""

    form: Literal["header"] = "header"
    ctx: str
    header: HeaderName


class MapLookup(Node):
    """`(map-lookup m key)`: optional value; only usable through `if-let`."""

    form: Literal["map-lookup"] = "map-lookup"
    map: str
    key: Expr


class IfLet(Node):
    """`(if-let (name OPTIONAL) then [else])`: `name` is bound in `then` only,
    when the parse or lookup succeeded."""

    form: Literal["if-let"] = "if-let"
    name: str
    value: Expr
    then: Expr
    otherwise: Expr


class HeaderField(Node):
    """`(field tcp :dst-port)`: a header field in host byte order; the field
    table (tables.HEADERS) gives offset, width, mask and type."""

    form: Literal["field"] = "field"
    value: Expr
    field: str


class MapDelete(Node):
    """`(map-delete m key)`: hash-like maps only."""

    form: Literal["map-delete"] = "map-delete"
    map: str
    key: Expr


class MapAdd(Node):
    """`(map-add m key delta)`: atomic add to a counter (arrays: in place;
    hashes: insert delta when absent, and add to the entry another CPU
    inserted first when that insert loses the race)."""

    form: Literal["map-add"] = "map-add"
    map: str
    key: Expr
    value: Expr


class CtxField(Node):
    """`(ctx-field ctx :len)`: a field of the program's context (table
    tables.PROGRAM_KINDS[kind].ctx_fields)."""

    form: Literal["ctx-field"] = "ctx-field"
    ctx: str
    field: str


class Load(Node):
    """`(load H OFFSET T)`: the unsigned integer T read big-endian (like
    `field` values) at byte OFFSET past the end of header H (TCP: past its
    options; IPv4: past IHL * 4). Optional: only usable through `if-let`,
    which binds it when those bytes are in the packet."""

    form: Literal["load"] = "load"
    value: Expr
    offset: Expr
    to: Literal["u8", "u16", "u32", "u64"]


class SetField(Node):
    """`(set-field! H :f X)`: write field `f` of `value`. On a parsed
    packet header (header:<h>): the field in network byte order (bitfields
    keep their other bits), with the header's and the L4 checksums kept
    right; on a struct map value: a store into the map value."""

    form: Literal["set-field!"] = "set-field!"
    value: Expr
    field: str
    new: Expr


class SetCtxField(Node):
    """`(set-ctx-field! ctx :mark X)`: write a writable field of the
    program's context (tables.PROGRAM_KINDS[kind].ctx_fields[f].writable)."""

    form: Literal["set-ctx-field!"] = "set-ctx-field!"
    ctx: str
    field: str
    value: Expr


class EventOutput(Node):
    """`(event-output m value)`: push an integer to a ring-buf (or, with the
    program's context, a perf-event-array)."""

    form: Literal["event-output"] = "event-output"
    map: str
    value: Expr


class LpmKey(Node):
    """`(lpm-key PREFIX ADDR)`: a key of an lpm-trie map, the first PREFIX
    bits of ADDR (stored in network byte order, as the kernel compares
    them). ADDR has the map's key type; 16-byte (IPv6) tries take the two
    u64 halves, `(lpm-key 48 HI LO)`, as `(field ip6 :src-hi)` gives them.
    A plain key of the map's type is the full-length prefix."""

    form: Literal["lpm-key"] = "lpm-key"
    prefix: Expr
    address: list[Expr]


class Arg(Node):
    """`(arg ctx N)`: argument N (u64) of a kprobe (its registers), a
    syscall-entry tracepoint (`args[N]`) or an LSM hook (its BTF-typed
    arguments); tables.PROGRAM_KINDS[kind].args says how."""

    form: Literal["arg"] = "arg"
    ctx: str
    index: int


class TpField(Node):
    """`(tp-field ctx :prev_pid)`: a named field of the program's tracepoint
    record, typed and placed by the target kernel's BTF
    (struct trace_event_raw_<name>). Field names are the kernel's."""

    form: Literal["tp-field"] = "tp-field"
    ctx: str
    field: str


class CoreRead(Node):
    """`(core-read PTR sock :__sk_common :skc_daddr)`: a read through a
    kernel pointer (a u64), STRUCT and fields being the kernel's own C names
    resolved against the target kernel's BTF; a field of struct type goes on
    into it, a pointer field followed by more fields is read and followed."""

    form: Literal["core-read"] = "core-read"
    value: Expr
    struct: str
    fields: list[Union[str, int]]  # an int after an array field: its element
class Make(Node):
    """`(make flow :packets 1 :bytes len)`: a struct value; omitted fields
    (and padding) are zero. `fields[i]` gets `values[i]`."""

    form: Literal["make"] = "make"
    struct: str
    fields: list[str] = []
    values: list[Expr] = []


class FieldAdd(Node):
    """`(field-add! X :f DELTA)`: an atomic add to an integer field of a map
    value bound by if-let on map-lookup (fields under 32 bits: a plain add)."""

    form: Literal["field-add!"] = "field-add!"
    value: Expr
    field: str
    delta: Expr


class Redirect(Node):
    """`(redirect IFINDEX [:ingress])`: bpf_redirect; its value is the action
    the program returns (xdp: XDP_REDIRECT, tc: TC_ACT_REDIRECT, or the
    failure action), typed as the kind's return type."""

    form: Literal["redirect"] = "redirect"
    ifindex: Expr
    ingress: bool = False  # tc: BPF_F_INGRESS


class RedirectMap(Node):
    """`(redirect-map MAP KEY [:FALLBACK])`: bpf_redirect_map over a devmap,
    devmap-hash, cpumap or xskmap; XDP_REDIRECT, or FALLBACK (an action
    below 4, default xdp-aborted) when the slot is empty."""

    form: Literal["redirect-map"] = "redirect-map"
    map: str
    key: Expr
    fallback: str | None = None


class TailCall(Node):
    """`(tail-call ctx MAP INDEX)`: jump to the program in a prog-array slot;
    returns (unit) only when the slot is empty."""

    form: Literal["tail-call"] = "tail-call"
    ctx: str
    map: str
    index: Expr


class AdjustHead(Node):
    """`(adjust-head ctx DELTA)`: bpf_xdp_adjust_head; 0 or -errno (i64)."""

    form: Literal["adjust-head"] = "adjust-head"
    ctx: str
    delta: Expr


class AdjustTail(Node):
    """`(adjust-tail ctx DELTA)`: bpf_xdp_adjust_tail; 0 or -errno (i64)."""

    form: Literal["adjust-tail"] = "adjust-tail"
    ctx: str
    delta: Expr


class GetStackId(Node):
    """`(get-stackid ctx MAP [FLAGS])`: the id of the current stack in a
    stack-trace map, or -errno (i64)."""

    form: Literal["get-stackid"] = "get-stackid"
    ctx: str
    map: str
    flags: Expr | None = None
class FuncCall(Node):
    """`(bucket len)`: a call of a `defbpf-func` declared in the file."""

    form: Literal["func-call"] = "func-call"
    name: str
    args: list[Expr] = []


class Printk(Node):
    """`(printk "dropped %u from %x" a b)`: bpf_trace_printk with a literal
    format (validated printable ASCII) checked against the argument types."""

    form: Literal["printk"] = "printk"
    format: str
    args: list[Expr] = []


Expr = Annotated[
    Union[
        Return,
        ReturnValue,
        Call,
        Let,
        If,
        Compare,
        MapGet,
        MapSet,
        Int,
        Var,
        Bool,
        Begin,
        And,
        Or,
        Not,
        Binary,
        Cast,
        SetVar,
        Loop,
        Break,
        Header,
        MapLookup,
        IfLet,
        HeaderField,
        MapDelete,
        MapAdd,
        CtxField,
        EventOutput,
        SetField,
        SetCtxField,
        Load,
        LpmKey,
        Arg,
        TpField,
        CoreRead,
        Redirect,
        RedirectMap,
        TailCall,
        AdjustHead,
        AdjustTail,
        GetStackId,
        FuncCall,
        Printk,
        Make,
        SetField,
        FieldAdd,
    ],
    Field(discriminator="form"),
]


# --- declarations -------------------------------------------------------------


class BpfFn(Node):
    """`(bpf-fn name (ctx) body…)`: the body of the program of the same name."""

    name: str
    ctx: str
    body: list[Expr]


class Param(Node):
    """`(len u32)`: a parameter of a defbpf-func."""

    name: str
    param_type: Union[ScalarType, StructType]  # a struct is passed by value (a copy)


class FuncDecl(Node):
    """`(defbpf-func name ((p TYPE) …) [:returns TYPE] body…)`: a typed
    function the bodies call; without :returns it gives no value. It may call
    functions declared before it, never itself."""

    name: str
    params: list[Param] = []
    returns: Union[ScalarType, StructType, None] = None
    body: list[Expr]


class ConstDecl(Node):
    """`(defbpf-const limit u64 100)`: a read-only global in .rodata with a
    default, set by the loader before load."""

    name: str
    const_type: ScalarType
    default: int  # bool: 0 or 1


MapKind = Literal[
    "hash",
    "lru-hash",
    "array",
    "per-cpu-hash",
    "per-cpu-array",
    "ring-buf",
    "perf-event-array",
    "stack-trace",
    "lpm-trie",
    "devmap",
    "devmap-hash",
    "cpumap",
    "xskmap",
    "prog-array",
]


class StructField(Node):
    name: str
    type: Union[IntType, ArrayType, StructType]  # type: ignore[assignment]


class StructDecl(Node):
    """`(defbpf-struct flow (packets u64) (bytes u64) (comm (array u8 16)))`:
    fields in order, laid out as C does (structs.py)."""

    name: str
    fields: list[StructField]


class ProgramSlot(Node):
    """`(0 parse-v4)` in a prog-array's `:programs`: the loader puts program
    `parse-v4` (of the same file) into slot 0."""

    index: int
    program: str


class MapDecl(Node):
    """`(defbpf-map name :kind :hash :key u32 :value u64 :max-entries 1024)`;
    upstream's `:key-size` / `:value-size` (bytes) map to u8…u64. `:key flow`
    / `:value flow` name a defbpf-struct (stored as `struct:flow`)."""

    name: str
    kind: MapKind
    key: Union[IntType, StructType, None] = None
    value: Union[IntType, StructType, None] = None
    # lpm-trie only: `:key-size 16` (IPv6 prefixes), wider than any integer
    # type; `key` is then None. Narrower lpm keys use `key` (u32: IPv4).
    key_size: int | None = None
    max_entries: int
    pin_path: str | None = None
    programs: list[ProgramSlot] | None = None  # prog-array: the slots the loader fills


ProgramKind = Literal[
    "xdp", "tc", "socket-filter", "kprobe", "tracepoint", "cgroup-skb", "lsm", "perf-event"
]


class Attach(Node):
    """`:attach (:target "eth0")`. For kprobe the target is the function, for
    tracepoint "category/name", for lsm the hook, for cgroup-skb the
    direction ("ingress"/"egress"), for tc the interface (direction below)."""

    target: str | None = None
    direction: str | None = None


class ProgramDecl(Node):
    name: str
    kind: ProgramKind
    attach: Attach | None = None
    license: str = "GPL"
    uses_maps: list[str] = []
    kernel: str | None = None  # target kernel, e.g. "6.1" (a version names its pinned line)
    kernels: list[str] = []  # kernels the program promises to run on, e.g. ["5.10", "6.1"]
    max_insns: int | None = None  # verifier budget


class PolicyDecl(Node):
    name: str
    description: str = ""
    programs: list[str] = []
    maps: list[str] = []


PacketValue = Union[int, str, list[str]]


class Layer(Node):
    """One protocol layer of a test packet, e.g. `(tcp :dport 80 :flags (syn))`.
    Field names and defaults: tables.PACKET_LAYERS. Lengths, ethertypes,
    protocol numbers and checksums are filled in when not given."""

    kind: Literal["eth", "vlan", "ipv4", "ipv6", "ipv6-hop-by-hop", "ipv6-dest-opts", "ipv6-routing", "ipv6-fragment",
                  "tcp", "udp", "icmp", "icmpv6", "arp", "raw"]
    fields: dict[str, PacketValue] = {}


class StructLit(Node):
    """A struct value in test data, `(make flow :packets 4)`: integer fields,
    nested structs, arrays as lists of integers (u8 arrays also as strings)."""

    struct: str
    fields: dict[str, Union[int, str, list[int], StructLit]] = {}


class MapExpect(Node):
    """After all cases: `(syn-drops 0 3)`, the value at key 0 is 3 (per-CPU
    maps: the sum over CPUs). lpm-trie keys may be prefixes written as text,
    `("10.1.2.0/24" 1)` (see mapdata). Struct keys and values are written
    `(make flow :packets 4)`; an expected struct compares only the fields it
    names."""

    map: str
    key: Union[int, str, StructLit]
    value: Union[int, StructLit]


class EventExpect(Node):
    """`(events 60)`: one record the test's program sent to event map `events`
    (ring-buf or perf-event-array) during the test's cases, in order."""

    map: str
    value: Union[int, StructLit]


class TestCase(Node):
    """`(syn :packet ((eth) (ipv4) (tcp :flags (syn))) :expect :xdp-drop)`;
    or `:packet-hex "…"`; `:truncate N` cuts the built packet to N bytes."""

    name: str
    layers: list[Layer] = []
    packet_hex: str | None = None
    truncate: int | None = None
    # a return-action keyword of the program's kind; the number it stands for
    # (`:expect 1` on cgroup-skb) until the checker names its action
    expect: str | int
    expect_span: Span | None = None  # where `:expect`'s value is, for its errors
    repeat: int = 1
    # `:expect-packet ((eth) (ipv4 :ttl 63) (tcp))` / `:expect-packet-hex "…"`:
    # the packet the program leaves (test-run's data_out), byte for byte,
    # checksums as the packet builder computes them.
    expect_layers: list[Layer] | None = None
    expect_packet_hex: str | None = None


class ConstSet(Node):
    """`(limit 3)` in a test's `:consts`: the value the loader writes before load."""

    name: str
    value: int  # bool: 0 or 1


class Trigger(Node):
    """One action of a test's `:trigger`, done in the VM while the test's
    tracing program is attached: `(open "/tmp/x" [FLAGS])` is an openat(2)
    of that path, `(connect PORT)` a TCP connect to 127.0.0.1:PORT."""

    action: Literal["open", "connect"]
    path: str | None = None
    flags: int = 0
    port: int | None = None


class TestDecl(Node):
    """`(defbpf-test name :program p [:maps-before (…)] :cases (…) :expect-maps (…))`;
    a tracing program's test has `:trigger (…)` instead of `:cases`."""

    name: str
    program: str
    cases: list[TestCase] = []
    # `:trigger ((open "/tmp/x") (connect 80))`: attach the program in the
    # VM, do these actions, detach; None: a packet test.
    trigger: list[Trigger] | None = None
    expect_maps: list[MapExpect] = []
    # `:maps-before ((blocklist "10.1.2.0/24" 1) …)`: entries written into the
    # maps before any case of the file runs, same key/value syntax.
    maps_before: list[MapExpect] = []
    # `:expect-events ((events 60) …)`: every record each listed map got during
    # this test's cases, in order (`()`: none at all); None: not compared.
    expect_events: list[EventExpect] | None = None
    # `:consts ((limit 3))`: defbpf-const values the loader sets before load;
    # tests with the same set share one copy of the object (and its maps).
    consts: list[ConstSet] = []


class Module(Model, extra="forbid"):
    """Everything one `.tlisp` file declares, in source order per kind."""

    file: str
    source_sha256: str
    structs: list[StructDecl] = []
    maps: list[MapDecl] = []
    programs: list[ProgramDecl] = []
    policies: list[PolicyDecl] = []
    functions: list[BpfFn] = []
    consts: list[ConstDecl] = []
    funcs: list[FuncDecl] = []
    tests: list[TestDecl] = []


class _Trusted:
    """`trusted.If(...)` is `If(...)`: nodes were built without validation
    here when they were pydantic models, and the name stays for the code
    that says so."""

    def __getattr__(self, name: str) -> type[Model]:
        cls = globals().get(name)
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            raise AttributeError(name)
        setattr(self, name, cls)  # later lookups skip __getattr__
        return cls


trusted = _Trusted()


def to_json(module: Module, *, spans: bool = True) -> str:
    data = module.model_dump(mode="json", exclude_none=True)
    if not spans:
        data = _strip_spans(data)
    return json.dumps(data, indent=2) + "\n"


def from_json(text: str) -> Module:
    return Module.model_validate_json(text)


def _strip_spans(value):
    if isinstance(value, dict):
        return {k: _strip_spans(v) for k, v in value.items() if k != "span"}
    if isinstance(value, list):
        return [_strip_spans(v) for v in value]
    return value


def children(node: Node) -> list[Node]:
    """The nodes directly under `node`, in field order."""
    out: list[Node] = []
    try:
        fields = _CHILD_FIELDS[type(node)]
    except KeyError:
        fields = _child_fields(type(node))
    for name in fields:
        value = getattr(node, name)
        if isinstance(value, Node):
            out.append(value)
        elif isinstance(value, list):
            out += [v for v in value if isinstance(v, Node)]
    return out


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type[Node]) -> tuple[str, ...]:
    """The fields of `cls` whose type can hold a node, from its annotations
    (once per class: the checker's walks ask for every node's children)."""

    def holds_node(tp) -> bool:
        if isinstance(tp, type):
            return issubclass(tp, Node)
        return any(holds_node(arg) for arg in get_args(tp))

    fields = tuple(name for name, f in cls.model_fields.items() if holds_node(f.annotation))
    _CHILD_FIELDS[cls] = fields
    return fields


def walk(body: list[Expr]):
    """Every node under a body (pre-order)."""
    stack = list(reversed(body))
    pop, extend = stack.pop, stack.extend
    while stack:
        node = pop()
        yield node
        try:
            fields = _CHILD_FIELDS[type(node)]
        except KeyError:
            fields = _child_fields(type(node))
        if fields:  # children(node), inlined: the checker walks every body several times
            extend(reversed(children(node)))

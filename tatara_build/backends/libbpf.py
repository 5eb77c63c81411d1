"""The libbpf C dialect: `DIR/<stem>.bpf.c` for `clang -O2 -g -target bpf`.

No vmlinux.h: only the UAPI and libbpf headers Debian ships; everything
packet-shaped comes from tables.HEADERS. C's integer promotions and signed
overflow are why arithmetic is spelled with explicit unsigned casts."""

from __future__ import annotations

from dataclasses import dataclass

import re

from .. import ir, kernelbtf, structs, tables
from ..types import BOOL, Array, Header, LpmKey, Ref, Struct, Type, of
from .. import mapdata
from ..errors import Diagnostic, SourceError
from . import parsers
from .base import (BINARY, INDENT, Csum, FieldWrite, Fill, Generator, PacketArgs, balanced, blocks, format_target, lpm_address_types,
                   snake, stem, unparen)
from .parsers import above_l2

# --- spellings, keyed by the names tables.py defines ---------------------------


@dataclass(frozen=True)
class Program:
    section: str  # `{target}` is the validated attach target
    ctx: str  # the context parameter's type


PROGRAMS = {
    "xdp": Program("xdp", "struct xdp_md *"),
    "tc": Program("tc", "struct __sk_buff *"),
    "socket-filter": Program("socket", "struct __sk_buff *"),
    "kprobe": Program("kprobe/{target}", "struct pt_regs *"),
    "tracepoint": Program("tracepoint/{target}", "void *"),
    "cgroup-skb": Program("cgroup_skb/{target}", "struct __sk_buff *"),
    "lsm": Program("lsm/{target}", "void *"),
    "perf-event": Program("perf_event", "struct bpf_perf_event_data *"),
}
_SKB_FIELDS = {"len": "ctx->len", "protocol": "bpf_ntohs(ctx->protocol)", "mark": "ctx->mark",
               "ifindex": "ctx->ifindex", "priority": "ctx->priority", "tc-classid": "ctx->tc_classid",
               "tc-index": "ctx->tc_index", "queue-mapping": "ctx->queue_mapping"}
# An XDP packet's length from its two packet pointers, held in 64-bit
# registers by an empty asm: otherwise clang 14 (-mcpu=v3) may keep
# ctx->data as a u32 and spill it with a 4-byte store, which the verifier
# refuses for a pointer ("invalid size of register spill"; examples/conntrack).
XDP_LEN = ('({ long __e = (long)ctx->data_end, __s = (long)ctx->data; asm volatile("" : "+r"(__e), "+r"(__s)); '
           '(__u32)(__e - __s); })')
CTX_FIELDS = {  # kind -> field -> C expression over `ctx` (writable ones: `ctx-><snake name>`)
    "xdp": {"len": XDP_LEN, "ingress-ifindex": "ctx->ingress_ifindex"},
    **{kind: {f: _SKB_FIELDS[f] for f in tables.PROGRAM_KINDS[kind].ctx_fields}
       for kind in ("tc", "socket-filter", "cgroup-skb")},
}
HELPERS = {
    "get-current-cpu": "bpf_get_smp_processor_id", "get-current-pid-tgid": "bpf_get_current_pid_tgid",
    "get-current-uid-gid": "bpf_get_current_uid_gid", "get-prandom": "bpf_get_prandom_u32",
    "ktime-ns": "bpf_ktime_get_ns", "ktime-boot-ns": "bpf_ktime_get_boot_ns",
    "ktime-coarse-ns": "bpf_ktime_get_coarse_ns", "ktime-tai-ns": "bpf_ktime_get_tai_ns",
    # (buf, size[, src]): array helpers, see line_fill
    "current-comm": "bpf_get_current_comm",
    "probe-read-user-str": "bpf_probe_read_user_str", "probe-read-kernel-str": "bpf_probe_read_kernel_str",
    "get-smp-processor-id": "bpf_get_smp_processor_id", "get-numa-node-id": "bpf_get_numa_node_id",
    "jiffies64": "bpf_jiffies64", "get-current-task": "bpf_get_current_task",
    "get-current-cgroup-id": "bpf_get_current_cgroup_id",
}
FORMS = {  # tables.HELPER_FORMS over `ctx`; helpers return long: narrowed explicitly
    "redirect": "(({ret})bpf_redirect({ifindex}, {flags}))",
    "redirect-map": "(({ret})bpf_redirect_map(&{map}, {key}, {fallback}))",
    "tail-call": "bpf_tail_call(ctx, &{map}, {index});",
    "adjust-head": "((__s64)bpf_xdp_adjust_head(ctx, {delta}))",
    "adjust-tail": "((__s64)bpf_xdp_adjust_tail(ctx, {delta}))",
    "get-stackid": "((__s64)bpf_get_stackid(ctx, &{map}, {flags}))",
}
SPELL = {  # Generator.SPELL: the one-line spellings that fill a template
    "found_ptr": "{ptr}", "deref": "*{ptr}", "ref_member": "{ref}->{member}", "ref_deref": "(*{ref})",
    "store": "*{rec} = {value};", "submit": "bpf_ringbuf_submit({rec}, 0);", "record_ptr": "{rec}",
    "array_ptr": "{name}", "zero_record": "__builtin_memset({ptr}, 0, sizeof(*{ptr}));", "member_ptr": "{ptr}->{member}",
}
READS = {  # tables.PACKET_READS over `ctx`: `{n}` bytes at `{off}` into `{dst}`, nonzero when not there
    "skb": "bpf_skb_load_bytes(ctx, {off}, {dst}, {n})",
    "net": "bpf_skb_load_bytes_relative(ctx, {off}, {dst}, {n}, BPF_HDR_START_NET)",
}
INTS = {"u8": "__u8", "u16": "__u16", "u32": "__u32", "u64": "__u64",
        "i8": "__s8", "i16": "__s16", "i32": "__s32", "i64": "__s64"}


@dataclass(frozen=True)
class Map:
    extra: tuple[str, ...] = ()  # declaration lines besides type, max_entries, key and value
    sized: bool = True  # False: libbpf sizes it (to the CPU count), no max_entries
    output: str | None = None  # event-output: `{map}` the map, `{v}` the value's variable


MAPS = {
    **{kind: Map() for kind in ("hash", "lru-hash", "per-cpu-hash", "array", "per-cpu-array")},
    "lpm-trie": Map(("__uint(map_flags, BPF_F_NO_PREALLOC);",)),
    "ring-buf": Map(),  # events are reserved, written in place and submitted (Generator.stmt_event_output)
    "perf-event-array": Map(("__uint(key_size, sizeof(__u32));", "__uint(value_size, sizeof(__u32));"), sized=False,
                            output="bpf_perf_event_output(ctx, &{map}, BPF_F_CURRENT_CPU, &{v}, sizeof({v}));"),
    "stack-trace": Map(("__uint(key_size, sizeof(__u32));", "__uint(value_size, 127 * sizeof(__u64));")),
    # key/value fixed by the kernel (tables.MapKind.value_required), declared by type
    **{kind: Map() for kind in ("devmap", "devmap-hash", "cpumap", "xskmap", "prog-array")},
}
# printk conversion -> the C type its argument is passed as
PRINTK_C = {**dict.fromkeys(("d", "i"), "int"), **dict.fromkeys(("u", "x"), "unsigned int"),
            **dict.fromkeys(("ld", "li", "lld", "lli"), "long long"),
            **dict.fromkeys(("lu", "lx", "llu", "llx"), "unsigned long long")}
SWAP = {1: "", 2: "bpf_ntohs", 4: "bpf_ntohl", 8: "bpf_be64_to_cpu"}
TO_NETWORK = {1: "", 2: "bpf_htons", 4: "bpf_htonl", 8: "bpf_cpu_to_be64"}
# parsers.Pin: an empty asm that "changes" the pointer makes it opaque to
# LLVM, so it cannot recompute it after the bounds check. LLVM's BTF writer
# skips an empty asm string (no line-info record of its own).
PIN = 'asm volatile("" : "+r"({}));'
# The packet pointers come from 32-bit context fields, so clang (-mcpu=v3,
# alu32) knows their upper half is zero and may copy them with 32-bit moves,
# after which the verifier sees a scalar, not a packet pointer ("R2 invalid
# mem access 'scalar'": found by the generated-program test, seed 1). Pinned,
# they are opaque 64-bit values, copied whole.
PACKET_PINS = 'asm volatile("" : "+r"(__data), "+r"(__data_end));'


def ctype(t: Type | str) -> str:
    """The C type of a value; an array's is its element's (see decl)."""
    t = of(t)
    if type(t) is Array:
        return INTS[t.elem.spell()]
    if type(t) is Ref:
        return f"struct {snake(t.target.name)} *"
    if type(t) is Struct:
        return f"struct {snake(t.name)}"
    if t == BOOL:
        return "_Bool"
    if type(t) is Header:
        return "void *"
    if type(t) is LpmKey:
        return f"struct {lpm_struct(t.nbytes)}"
    return INTS[t.spell()]


def record_size(t: Type) -> str:
    """`sizeof` of a value of type t, as C spells it."""
    if type(t) is Array:
        return str(t.elem.bits // 8 * t.n)
    return f"sizeof({ctype(t)})"


def lpm_struct(width: int) -> str:
    return f"__lpm_key{width}"


def lpm_data_member(width: int, key: str | None) -> str:
    """The address member of an lpm key struct, in network byte order: one
    integer of the key's width, or u64 halves (16 bytes)."""
    parts = lpm_address_types(width, key)
    c = INTS[parts[0]]
    return f"{c} data" if len(parts) == 1 else f"{c} data[{len(parts)}]"


def decl(t: Type | str, name: str) -> str:
    """`__u32 x` / `void *p`."""
    c = ctype(t)
    return f"{c}{name}" if c.endswith("*") else f"{c} {name}"


LOCAL_FLAVOR = "___tatara"  # libbpf ignores a `___suffix` when it matches a local type to the kernel's
KERNEL_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def local_name(key: str) -> str:
    """The C tag of a kernel struct's local definition: its name with a
    flavor suffix (so it never clashes with a UAPI header's definition of
    the same struct), or one made up for an anonymous struct."""
    name = f"__anon{key.removeprefix('(anon)')}" if key.startswith("(anon)") else key
    assert KERNEL_IDENT.fullmatch(name), "kernel names from BTF are C identifiers"
    return name + LOCAL_FLAVOR


def member_ctype(member_type: str) -> str:
    """How a local struct declares a member of this BTF type string."""
    kind, _, rest = member_type.partition(":")
    if kind == "ptr":
        return "void *"
    if kind == "comp":
        return f"struct {local_name(rest)}"  # the keyword is fixed by the definition (see local_keyword)
    t = kernelbtf.value_type(member_type)
    assert t is not None, member_type
    return INTS[t]


# An anonymous enum of each size: CO-RE matches it with any kernel enum (an
# enum of a name would have to be the kernel's), and the enumerator's value
# gives it the size (packed: the smallest that holds it).
_ENUM_SIZES = {"1": ("__attribute__((packed)) ", "1"), "2": ("__attribute__((packed)) ", "0x100"),
               "4": ("", "0"), "8": ("", "0x100000000ULL")}


def sized_member(member: str, member_type: str) -> str:
    """A bitfield (`int:<bytes>:<s|u>:<bits>`) or an integer array
    (`array:<bytes>:<n>:<s|u>`) member of a local struct."""
    kind, size, third, fourth = member_type.split(":")
    sign = third if kind == "int" else fourth
    elem = INTS[("i" if sign == "s" else "u") + str(int(size) * 8)]
    return f"{elem} {member} : {fourth}" if kind == "int" else f"{elem} {member}[{third}]"


def local_enum(member_type: str, enumerator: str) -> str:
    """How a local struct declares an enum member of this BTF type string."""
    packed, value = _ENUM_SIZES[member_type.removeprefix("enum:")]
    return f"enum {packed}{{ {enumerator} = {value} }}"


class CGenerator(Generator):
    name = "c"
    summary = "libbpf C, needs only clang"
    source_suffix = ".c"
    comment = ("/* ", " */")
    compiler = "clang"
    PROGRAMS, MAPS, HELPERS, CTX_FIELDS, INTS, FORMS, READS, SPELL = PROGRAMS, MAPS, HELPERS, CTX_FIELDS, INTS, FORMS, READS, SPELL
    ACTIONS = {a.uapi: a.uapi for k in tables.PROGRAM_KINDS.values() for a in k.actions.values() if a.uapi}

    csum_support = False  # a direct write fixes checksums in the program (__csum_set)
    # Direct access passes packet pointers; helper reads pass offsets from the packet start.
    DIRECT_ARGS = PacketArgs("__data, __data_end", "__data_end, __l3p, __l3proto", "__data_end")
    READ_ARGS = PacketArgs("ctx, 0", "ctx, __l3p, __l3proto", "ctx")

    def __init__(self, module: ir.Module):
        super().__init__(module)
        # kernel struct key -> (struct|union, member -> BTF type string): local CO-RE definitions
        self.local_structs: dict[str, tuple[str, dict[str, str]]] = {}
        # (struct, fields) -> (support function, hops, value type)
        self.core_reads: dict[tuple, tuple[str, tuple, str]] = {}

    def files(self) -> dict[str, str]:
        return {f"{stem(self.module)}.bpf.c": self.render()}

    @classmethod
    def section_prefix(cls, kind: str) -> str:
        return PROGRAMS[kind].section.split("/")[0]

    # --- values -------------------------------------------------------------

    def map_symbol(self, decl: ir.MapDecl) -> str:
        return snake(decl.name)

    def spell_int(self, value: int, t: Type) -> str:
        if t == BOOL:
            return "1" if value else "0"
        if value == t.min and t.signed:
            return f"({value + 1}{'LL' if t.bits == 64 else ''} - 1)"
        suffix = {(False, 32): "U", (False, 64): "ULL", (True, 64): "LL", (True, 32): ""}.get((t.signed, t.bits))
        if suffix is None:
            return f"(({ctype(t)}){value})"
        return f"{value}{suffix}"

    def spell_bool(self, value: bool) -> str:
        return "1" if value else "0"

    def spell_default(self, t: Type) -> str:
        return "{0}" if type(t) is Struct else "0"

    def spell_action(self, action: tables.Action) -> str:
        return action.uapi or str(action.value)

    def spell_binary(self, op: str, left: str, right: str, t: Type) -> str:
        sym = BINARY[op]
        if op in ("shl", "shr"):
            right = f"({right} & {t.bits - 1})"
        if op == "shr":
            return f"(({ctype(t)})({left} >> {right}))"
        if not t.signed and t.bits >= 32:
            return f"({left} {sym} {right})"
        # Promotion to int (and signed overflow) are undefined or wrong for
        # wrap-around: compute in the unsigned type of at least 32 bits.
        wide = "__u64" if t.bits == 64 else "__u32"
        if op == "shl":
            return f"(({ctype(t)})(({wide}){left} << {right}))"
        return f"(({ctype(t)})(({wide}){left} {sym} ({wide}){right}))"

    def spell_cast(self, value: str, src: Type, dst: Type) -> str:
        if dst == BOOL:
            return f"({value} != 0)"
        return f"(({ctype(dst)}){value})"

    def spell_call(self, helper: tables.Helper, args: list[str]) -> str:
        return f"{HELPERS[helper.name]}({', '.join(args)})"

    def spell_ctx_field(self, spec: tables.CtxField, text: str) -> str:
        return f"(({ctype(spec.type)}){text})"

    def field_bytes(self, ptr: str, spec: tables.HeaderFieldSpec) -> str:
        at = f"{ptr} + {spec.offset}"
        raw = self.read_load(spec.size, at) if self.read else self.raw_load(spec.size, at)
        return f"{SWAP[spec.size]}({raw})" if SWAP[spec.size] else f"({raw})"

    def field_as(self, value: str, spec: tables.HeaderFieldSpec) -> str:
        return f"(({ctype(spec.type)}){value})"

    def raw_load(self, size: int, at: str) -> str:
        return f"*(__u{size * 8} *)({at})"

    def spell_ctx_u64(self, offset: int) -> str:
        return f"((__u64 *)(void *)ctx)[{offset // 8}]"

    def local_struct(self, hop: kernelbtf.Hop) -> str:
        """Declare the members a hop passes through in the local CO-RE
        structs (only those: libbpf matches members by name); the root's tag."""
        for step in hop.steps:  # an embedded member is always followed by a step into it
            _, members = self.local_structs.setdefault(step.container, (step.container_kind, {}))
            members[step.member] = f"{step.type}:{step.bits}" if step.bits else step.type
        return local_name(hop.root)

    def member_path(self, hop: kernelbtf.Hop) -> str:
        assert all(KERNEL_IDENT.fullmatch(s.member) for s in hop.steps), "fields are checked C identifiers"
        return ".".join(s.member + ("" if s.index is None else f"[{s.index}]") for s in hop.steps)

    def spell_core_read(self, layouts, pointer: str, e: ir.CoreRead) -> str:
        hops = next(iter(layouts.values()))  # CO-RE: libbpf relocates the offsets on the target kernel
        key = (e.struct, tuple(e.fields))
        if key not in self.core_reads:
            self.core_reads[key] = (self.helper_name("core_read", str(len(self.core_reads) + 1)), hops, e.type)
        return f"{self.core_reads[key][0]}({unparen(pointer)})"

    def core_read_helper(self, name: str, hops: tuple[kernelbtf.Hop, ...], t: Type) -> list[str]:
        """One `bpf_core_read` (bpf_probe_read_kernel of a relocated address)
        per hop: pointers are followed, the last read is the value."""
        body, src = [], "p"
        for i, hop in enumerate(hops):
            last = i == len(hops) - 1
            var, c = ("v", ctype(t)) if last else (f"p{i + 1}", "__u64")
            at = f"((struct {self.local_struct(hop)} *)(unsigned long){src})"
            if hop.steps[-1].bits:  # libbpf's relocated byte offset, size and shifts of the bitfield
                body.append(f"{INDENT}{c} {var} = ({c})BPF_CORE_READ_BITFIELD_PROBED({at}, {self.member_path(hop)});")
                continue
            body += [f"{INDENT}{c} {var} = 0;",
                     f"{INDENT}bpf_core_read(&{var}, sizeof({var}), &{at}->{self.member_path(hop)});"]
            src = var
        return [f"static __always_inline {ctype(t)} {name}(__u64 p)", "{", *body, f"{INDENT}return v;", "}"]

    def spell_tp_field(self, layouts, e: ir.TpField) -> str:
        (hop,) = next(iter(layouts.values()))
        if len({hops[0].steps[0].container for hops in layouts.values()}) > 1:
            at = self.shared_offset(layouts, e)
            return f"(({ctype(e.type)})*({ctype(kernelbtf.value_type(hop.type))} *)((char *)ctx + {at}))"
        # a direct context load at a CO-RE relocated offset
        return f"(({ctype(e.type)})((struct {self.local_struct(hop)} *)ctx)->{self.member_path(hop)})"

    def spell_tp_string(self, layouts, e: ir.TpField) -> str:
        # __data_loc: the low 16 bits are the string's offset in the record
        return f"((__u64)(unsigned long)ctx + ({self.spell_tp_field(layouts, e)} & 0xffffULL))"

    def shared_offset(self, layouts, e: ir.TpField) -> int:
        """A record laid out by another struct on some promised kernel (an
        event class's on one, the event's own on another): CO-RE relocates
        by one struct's name, so the offset is compiled in, the same on
        every promised kernel (the manifest ties the object to them)."""
        (first, (hop,)), *rest = layouts.items()
        for line, (other,) in rest:
            if other.offset != hop.offset:
                raise SourceError(Diagnostic(
                    f"field `{e.field}` of tracepoint `{self.program.attach.target}` is at byte {hop.offset} of "
                    f"`struct {hop.steps[0].container}` on kernel {first} but at byte {other.offset} of `struct "
                    f"{other.steps[0].container}` on kernel {line}: one object cannot read both", e.span,
                    ["promise kernels whose records agree, or write one program per kernel"]))
        self.layout_kernels.update(layouts)
        return hop.offset

    def local_struct_lines(self) -> list[str]:
        """The local CO-RE definitions, each after the structs it embeds."""
        out, done = [], set()

        def emit(key: str) -> None:
            if key in done:
                return
            done.add(key)
            kind, members = self.local_structs[key]
            for member_type in members.values():
                if member_type.startswith("comp:"):
                    emit(member_type.removeprefix("comp:"))
            out.append(f"{kind} {local_name(key)} {{")
            for member, member_type in members.items():
                if member_type.startswith("enum:"):
                    out.append(f"{INDENT}{local_enum(member_type, f'{local_name(key)}__{member}')} {member};")
                    continue
                if member_type.startswith(("int:", "array:")) and member_type.count(":") == 3:
                    out.append(f"{INDENT}{sized_member(member, member_type)};")
                    continue
                out.append(f"{INDENT}{member_ctype(member_type).replace('struct ', self.local_keyword(member_type), 1)}"
                           f"{'' if member_type.startswith('ptr') else ' '}{member};")
            out.extend(["} __attribute__((preserve_access_index));", ""])

        for key in sorted(self.local_structs):
            emit(key)
        return out

    def local_keyword(self, member_type: str) -> str:
        target = member_type.removeprefix("comp:")
        return self.local_structs[target][0] + " " if target in self.local_structs else "struct "

    def spell_found(self, name: str) -> str:
        return f"{name} >= 0" if self.read else name

    def line_set_ctx_field(self, member: str, value: str) -> str:
        return f"ctx->{member} = {value};"

    # --- structs ----------------------------------------------------------------

    def line_zeroed(self, name: str, t: Type) -> str:
        return f"{decl(t, name)};\n__builtin_memset(&{name}, 0, sizeof({name}));"

    def line_set_member(self, ref: str, member: str, value: str) -> str:
        return f"{ref}->{member} = {value};"

    def line_copy_array(self, name: str, member: str, value: str) -> str:
        return f"__builtin_memcpy({name}.{member}, {value}, sizeof({name}.{member}));"

    def line_field_add(self, ref: str, member: str, delta: str, t: Type) -> str:
        if t.bits >= 32:  # see map_helper: a relaxed add whose result is unused
            return f"__atomic_fetch_add(&{ref}->{member}, {delta}, __ATOMIC_RELAXED);"
        return f"{ref}->{member} = {self.spell_binary('add', f'{ref}->{member}', delta, t)};"

    def struct_decl_lines(self, struct: ir.StructDecl) -> list[str]:
        """The C declaration, gaps as explicit `__padN` bytes (structs.members):
        the layout structs.py computes and the manifest records."""
        out, pads = [f"struct {snake(struct.name)} {{"], 0
        for member, t, size in structs.members(self.layouts[struct.name]):
            if t is None:
                out.append(f"{INDENT}__u8 __pad{pads}[{size}];")
                pads += 1
                continue
            t = of(t)
            out.append(f"{INDENT}{ctype(t)} {snake(member)}[{t.n}];" if type(t) is Array else
                       f"{INDENT}{decl(t, snake(member))};")
        return out + ["};"]

    # --- statements -----------------------------------------------------------

    def line_return(self, value: str) -> str:
        return f"return {value};"

    def line_return_value(self, value: str) -> str:
        # The kind's value (e.g. socket-filter's i64) narrowed as the kernel
        # does, explicitly: an implicit narrowing is a -Werror warning.
        return f"return (int){value};"

    def line_discard(self, value: str) -> str:
        return f"(void){value};"

    def line_assign(self, name: str, value: str) -> str:
        return f"{name} = {value};"

    def line_let(self, name: str, t: Type, value: str, mutable: bool) -> str:
        if type(t) is Header:
            return f"{self.ptr_type()}{name} = {value};"
        return f"{decl(t, name)} = {value};"

    def line_unread(self, name: str) -> str:
        return f"(void){name};"

    def open_if(self, cond: str) -> str:
        return f"if ({cond.removeprefix('(').removesuffix(')') if balanced(cond) else cond}) {{"

    def open_while(self, cond: str) -> str:
        return f"while ({cond}) {{"

    def key_type(self, decl: ir.MapDecl) -> str:
        if mapdata.is_lpm(decl):
            return ctype(LpmKey(mapdata.lpm_data_bytes(decl)))
        return ctype(decl.key)

    def line_lookup(self, ptr: str, decl: ir.MapDecl, key: str) -> str:
        return (f"{self.key_type(decl)} {ptr}_key = {key};\n"
                f"{ctype(decl.value)} *{ptr} = bpf_map_lookup_elem(&{snake(decl.name)}, &{ptr}_key);")

    def spell_const(self, const: ir.ConstDecl) -> str:
        return snake(const.name)  # `const volatile`: every read is a load the verifier sees

    def const_lines(self, const: ir.ConstDecl) -> list[str]:
        """libbpf's skeleton style: a `const volatile` global lands in
        .rodata, whose bytes the loader may change before load (then the
        map is frozen and the verifier knows the value)."""
        return [f"const volatile {decl(const.const_type, snake(const.name))} = "
                f"{self.spell_int(const.default, of(const.const_type))};"]

    def line_printk(self, fmt: str, args: list[tuple[str, str, str]]) -> str:
        """bpf_printk (≤ 3 arguments: bpf_trace_printk with the format in
        .rodata); each argument cast to the width its conversion reads."""
        text = fmt.replace("\\", "\\\\").replace('"', '\\"').replace("?", "\\?")  # `??=` is no trigraph
        values = [f"({PRINTK_C[conv]}){unparen(value)}" for value, _, conv in args]
        return f'bpf_printk("{text}"{"".join(", " + v for v in values)});'

    def func_lines(self, name: str, params: list[tuple[str, str, bool]], returns: str | None,
                   body: list[str]) -> list[str]:
        ret = ctype(returns) if returns else "void"
        spelled = ", ".join(decl(t, p) for p, t, _ in params) or "void"
        return [f"static __always_inline {ret} {name}({spelled})", "{", *body, "}"]

    def line_event_output(self, decl: ir.MapDecl, tmp: str, t: str) -> str:
        return MAPS[decl.kind].output.format(map=snake(decl.name), v=tmp)

    def open_reserve(self, rec: str, decl: ir.MapDecl, t: Type) -> str:
        return (f"{ctype(t)} *{rec} = bpf_ringbuf_reserve(&{snake(decl.name)}, {record_size(t)}, 0);\n"
                f"if ({rec}) {{")

    def line_let_array(self, name: str, t: Array) -> str:
        return f"{ctype(t)} {name}[{t.n}] = {{0}};"

    def line_fill(self, fill: Fill, ptr: str, t: Type) -> str:
        src = [f"(const void *)(unsigned long){a}" for a in fill.args]  # a string read's address
        return f"{HELPERS[fill.helper.name]}({', '.join([ptr, record_size(t), *src])});"

    def packet_prologue(self, pull: int | None) -> list[str]:
        if self.read:
            return []  # offsets from the packet start, read through the helper
        out = []
        if pull:
            # Headers past the skb's linear head are invisible to direct
            # access: pull what the parsers may read (never past the packet:
            # pulling more than skb->len fails and pulls nothing).
            out += [f"{INDENT}if ((void *)(long)ctx->data + {pull} > (void *)(long)ctx->data_end)",
                    f"{INDENT * 2}bpf_skb_pull_data(ctx, ctx->len < {pull} ? ctx->len : {pull});"]
        return out + [f"{INDENT}void *__data = (void *)(long)ctx->data;",
                      f"{INDENT}void *__data_end = (void *)(long)ctx->data_end;", f"{INDENT}{PACKET_PINS}"]

    def lines_reload_packet(self, locator: str | None) -> str:
        out = f"__data = (void *)(long)ctx->data;\n__data_end = (void *)(long)ctx->data_end;\n{PACKET_PINS}"
        return out + (f"\n__l3p = {locator}({self.l2_args()}, &__l3proto);" if locator else "")

    def line_locate_l3(self, locator: str) -> str:
        return f"__u16 __l3proto = 0;\n{self.ptr_type()}__l3p = {locator}({self.l2_args()}, &__l3proto);"

    # A header is a packet pointer (NULL: not this packet), or with helper
    # reads an offset from the packet start (-1: not this packet).
    def ptr_type(self) -> str:
        return "long " if self.read else "void *"

    def no_ptr(self) -> str:
        return "-1" if self.read else "0"

    # --- support functions ------------------------------------------------------

    def int_helper(self, op: str, t: Type) -> list[str]:
        c, name = ctype(t), self.helper_name(op, t.spell())
        head = f"static __always_inline {c} {name}({c} a, {c} b)"
        if not t.signed:
            return [head, "{", f"{INDENT}return b ? ({c})(a {BINARY[op]} b) : 0;", "}"]
        # BPF before v4 has no signed division: divide magnitudes, fix the sign
        # (truncation toward zero, as C and Rust; MIN / -1 wraps to MIN).
        u = "__u64" if t.bits == 64 else "__u32"
        sign = "(a < 0) != (b < 0)" if op == "div" else "a < 0"
        return [head, "{",
                f"{INDENT}{u} ua = a < 0 ? -({u})a : ({u})a;",
                f"{INDENT}{u} ub = b < 0 ? -({u})b : ({u})b;",
                f"{INDENT}{u} r;",
                f"{INDENT}if (!b)", f"{INDENT * 2}return 0;",
                f"{INDENT}r = ua {BINARY[op]} ub;",
                f"{INDENT}return ({c})({sign} ? -r : r);", "}"]

    def map_helper(self, op: str, decl: ir.MapDecl) -> list[str]:
        m, kt, vt = snake(decl.name), self.key_type(decl), ctype(decl.value or "u64")
        name = self.helper_name(op, m)
        key = f"{kt} k = key;"
        if op == "get" and type(of(decl.value)) is Struct:
            return [f"static __always_inline {vt} {name}({kt} key)", "{", INDENT + key, f"{INDENT}{vt} zero;",
                    f"{INDENT}{vt} *v = bpf_map_lookup_elem(&{m}, &k);", f"{INDENT}if (v)", f"{INDENT * 2}return *v;",
                    f"{INDENT}__builtin_memset(&zero, 0, sizeof(zero));", f"{INDENT}return zero;", "}"]
        if op == "get":
            return [f"static __always_inline {vt} {name}({kt} key)", "{", INDENT + key,
                    f"{INDENT}{vt} *v = bpf_map_lookup_elem(&{m}, &k);", f"{INDENT}return v ? *v : 0;", "}"]
        if op == "set":
            return [f"static __always_inline void {name}({kt} key, {vt} value)", "{", INDENT + key,
                    f"{INDENT}bpf_map_update_elem(&{m}, &k, &value, BPF_ANY);", "}"]
        if op == "delete":
            return [f"static __always_inline void {name}({kt} key)", "{", INDENT + key,
                    f"{INDENT}bpf_map_delete_elem(&{m}, &k);", "}"]
        # add: atomic in place; where entries can be absent, insert the delta
        # only if still absent (BPF_NOEXIST) and, when another CPU inserted
        # first (EEXIST), add to its entry: no count is lost to the race.
        # A relaxed add whose result is unused is BPF's plain atomic add (any
        # kernel); clang >= 20 turns __sync_fetch_and_add at -mcpu=v3 into
        # atomic_fetch_add, which kernels before 5.12 reject ("BPF_STX uses
        # reserved fields").
        bits = tables.INT_TYPES[decl.value].bits
        add = "__atomic_fetch_add(slot, delta, __ATOMIC_RELAXED);" if bits >= 32 else \
            f"*slot = ({vt})(*slot + delta);"
        out = [f"static __always_inline void {name}({kt} key, {vt} delta)", "{", INDENT + key,
               f"{INDENT}{vt} *slot = bpf_map_lookup_elem(&{m}, &k);"]
        if "map-delete" in tables.MAP_KINDS[decl.kind].ops:
            out += [f"{INDENT}if (!slot) {{",
                    f"{INDENT * 2}if (bpf_map_update_elem(&{m}, &k, &delta, BPF_NOEXIST) != -EEXIST)",
                    f"{INDENT * 3}return;",
                    f"{INDENT * 2}slot = bpf_map_lookup_elem(&{m}, &k);",
                    f"{INDENT}}}"]
        return out + [f"{INDENT}if (slot)", f"{INDENT * 2}{add}", "}"]

    def lpm_key_helper(self, width: int) -> list[str]:
        """Builds the kernel's lpm key (struct bpf_lpm_trie_key): prefix
        length in host order, the address in network order."""
        parts = self.lpm_address_types(width)
        c = INTS[parts[0]]
        swap = TO_NETWORK[tables.INT_TYPES[parts[0]].bits // 8]
        if len(parts) == 1:
            params, data = f"{c} addr", f"{swap}(addr)" if swap else "addr"
        else:
            names = ["hi", "lo"] if len(parts) == 2 else [f"a{i}" for i in range(len(parts))]
            params = ", ".join(f"{c} {n}" for n in names)
            data = "{ " + ", ".join(f"{swap}({n})" for n in names) + " }"
        struct = lpm_struct(width)
        return [f"static __always_inline struct {struct} {self.helper_name('lpm_key', str(width))}(__u32 prefixlen, {params})",
                "{", f"{INDENT}struct {struct} k = {{ .prefixlen = prefixlen, .data = {data} }};",
                f"{INDENT}return k;", "}"]

    # `__loadN_<read>(ctx, off)`: N bits at off, as stored (network order), 0
    # when not there; `__has_<read>(ctx, end)`: the packet has bytes up to end
    # (the helper fails past the packet's end).
    def read_load_helper(self, name: str, size: int) -> list[str]:
        c, call = f"__u{size * 8}", READS[name].format(off="off", dst="&v", n=size)
        return [f"static __always_inline {c} {self.helper_name(f'load{size * 8}', name)}(struct __sk_buff *ctx, long off)",
                "{", f"{INDENT}{c} v = 0;", f"{INDENT}{call};", f"{INDENT}return v;", "}"]

    def read_has_helper(self, name: str) -> list[str]:
        call = READS[name].format(off="end - 1", dst="&b", n=1)
        return [f"static __always_inline int {self.helper_name('has', name)}(struct __sk_buff *ctx, long end)",
                "{", f"{INDENT}__u8 b;", f"{INDENT}return {call} == 0;", "}"]

    # --- header field writes (base.field_write) ------------------------------------

    def write_helper(self, w: FieldWrite, access: str) -> list[str]:
        """`__set_<h>_<f>`: store the field (network order, the other bits
        of its bytes kept) and fix the checksums over the changed 16-bit
        words: in the program (RFC 1624) with direct access; through
        bpf_l3/l4_csum_replace, which keep skb->csum right too, with helper
        access (the L4 checksums over an address where their parsers find them)."""
        f = w.field
        fc = f"__u{f.size * 8}"
        params = "void *__data_end, void *__l3p, __u16 __l3proto" if w.pseudo else "void *__data_end"
        if self.read:
            params = params.replace("void *__data_end", "struct __sk_buff *ctx").replace("void *__l3p", "long __l3p")
        value = f"({fc})(__v ? 1 : 0)" if f.type == "bool" else f"({fc})__v"
        swap, to_net = SWAP[f.size], TO_NETWORK[f.size]
        if f.mask is None:
            merged = f"{to_net}({value})" if to_net else value
        else:
            keep = f"({swap}(__c) & {hex(~(f.mask << f.shift) & ((1 << f.size * 8) - 1))})" if swap else \
                f"(__c & {hex(~(f.mask << f.shift) & 0xFF)})"
            host = f"({fc})({keep} | (({value} & {hex(f.mask)}) << {f.shift}))"
            merged = f"{to_net}({host})" if to_net else host
        body = (["(void)__data_end;"] if not self.read else []) + self.write_body(w, merged) + self.csum_lines(w, access)
        return [f"static __always_inline void {self.write_name(w.header, f.name, access)}({params}, "
                f"{self.ptr_type()}__h, {ctype(f.type)} __v)", "{", *(INDENT + line for line in body), "}"]

    def line_word(self, name: str, size: int, value: str) -> str:
        return f"__u{size * 8} {name} = {value};"

    def line_write_field(self, f: tables.HeaderFieldSpec, merged: str) -> list[str]:
        if self.read:
            return [f"__u{f.size * 8} __w = {merged};", f"bpf_skb_store_bytes(ctx, __h + {f.offset}, &__w, {f.size}, 0);"]
        return [f"{self.raw_load(f.size, f'__h + {f.offset}')} = {merged};"]

    def pseudo_csum_fix(self, c: Csum, access: str, rsize: int) -> list[str]:
        var = f"__l4_{c.header}"
        return [f"{self.ptr_type()}{var} = {self.parser_name(c.header, access)}({self.l3_args()});",
                f"if ({self.spell_found(var)}) {{", *(INDENT + line for line in self.csum_fix(c, var, rsize)), "}"]

    # --- loads past a header (`load`) ------------------------------------------------

    def line_load(self, name: str, t: str, call: str) -> tuple[str, str]:
        return f"{ctype(t)} {name} = 0;", f"{call}, &{name})"

    def load_helper(self, header: str, size: int, access: str) -> list[str]:
        """`__load_<h>_<bits>(packet, h, off, &out)`: 1 and the big-endian
        integer at `off` bytes past the header's end when the packet has
        it; `off` is bounded (MAX_LOAD_OFFSET) for the verifier."""
        c = f"__u{size * 8}"
        swap = SWAP[size]
        head = f"static __always_inline int {self.load_name(header, size, access)}("
        guard = [f"if (__off > {tables.MAX_LOAD_OFFSET})", f"{INDENT}return 0;"]
        if self.read:
            read = READS[self.read.name].format(off=f"__h + {self.end_offset(header, '__h')} + __off", dst="&__v", n=size)
            body = [f"{c} __v = 0;", *guard, f"if ({read})", f"{INDENT}return 0;"]
            params = f"struct __sk_buff *ctx, long __h, __u32 __off, {c} *__out)"
        else:
            body = [*guard, f"void *__p = __h + {self.end_offset(header, '__h')} + __off;", PIN.format("__p"),
                    f"if (__p + {size} > __data_end)", f"{INDENT}return 0;", f"{c} __v = *({c} *)__p;"]
            params = f"void *__data_end, void *__h, __u32 __off, {c} *__out)"
        value = f"{swap}(__v)" if swap else "__v"
        return [head + params, "{", *(INDENT + line for line in body), f"{INDENT}*__out = {value};",
                f"{INDENT}return 1;", "}"]

    def csum_fix(self, c: Csum, at: str, rsize: int) -> list[str]:
        """Fix the checksum at `at + c.offset` for the region's old and new
        bytes. Helpers take at most 4 bytes per call (an 8-byte region is two)."""
        if not self.read:
            self.csum_support = True
            words = lambda v: " + ".join(f"(({v} >> {16 * i}) & 0xffff)" for i in range(rsize // 2))  # noqa: E731
            return [f"__csum_set({at} + {c.offset}, {words('__old')}, {words('__new')}, {int(c.zero_none)});"]
        parts = [("__old", "__new")] if rsize <= 4 else \
            [("(__u32)__old", "(__u32)__new"), ("(__u32)(__old >> 32)", "(__u32)(__new >> 32)")]
        size = min(rsize, 4)
        if not c.l4:
            return [f"bpf_l3_csum_replace(ctx, {at} + {c.offset}, {o}, {n}, {size});" for o, n in parts]
        flags = " | ".join([str(size)] + ["BPF_F_PSEUDO_HDR"] * c.pseudo + ["BPF_F_MARK_MANGLED_0"] * c.zero_none)
        return [f"bpf_l4_csum_replace(ctx, {at} + {c.offset}, {o}, {n}, {flags});" for o, n in parts]

    def csum_helpers(self) -> list[str]:
        """RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), over 16-bit words as
        stored (ones' complement sums do not depend on byte order)."""
        return ["static __always_inline __u32 __csum_fold(__u32 s)", "{",
                f"{INDENT}s = (s & 0xffff) + (s >> 16);", f"{INDENT}return (s & 0xffff) + (s >> 16);", "}", "",
                "static __always_inline void __csum_set(void *at, __u32 from, __u32 to, int zero_none)", "{",
                f"{INDENT}__u16 c = *(__u16 *)at;",
                f"{INDENT}if (zero_none && !c)", f"{INDENT * 2}return;",
                f"{INDENT}c = (__u16)~__csum_fold((__u16)~c + (__u16)~__csum_fold(from) + __csum_fold(to));",
                f"{INDENT}*(__u16 *)at = zero_none && !c ? 0xffff : c;", "}", ""]

    def parser(self, name: str, packet: str, steps: tuple[parsers.Step, ...]) -> list[str]:
        is_l3 = name == parsers.L3
        fname = self.l3_locator(packet) if is_l3 else self.parser_name(name, packet)
        ptr = self.ptr_type()
        if is_l3:
            params = f"{ptr}__data, void *__data_end, __u16 *__proto_out"
        elif above_l2(name):
            params = f"void *__data_end, {ptr}__l3p, __u16 __l3proto"
        else:
            params = f"{ptr}__data, void *__data_end"
        if self.read:  # no data_end: reads are checked by the helper
            params = "struct __sk_buff *ctx, " + ", ".join(p for p in params.split(", ") if p != "void *__data_end")
        return [f"static __always_inline {ptr}{fname}({params})", "{", *self.spell_steps(steps), "}"]

    # --- parser steps (parsers.py): the ones brace dialects share are in base.py

    def guard(self, cond: str) -> list[str]:
        return [f"if ({cond})", f"{INDENT}return {self.no_ptr()};"]

    def line_fail(self) -> str:
        return f"return {self.no_ptr()};"

    def step_load(self, step: parsers.Load) -> list[str]:
        return [f"{ctype(step.field.type)} {step.var} = {self.spell_field(step.ptr, step.field)};"]

    def step_offset(self, step: parsers.Offset) -> list[str]:
        return [f"{self.ptr_type()}{step.var} = {step.base} + {self.spell_size(step.size)};"]

    @staticmethod
    def spell_size(size: int | parsers.Scaled) -> str:
        if not isinstance(size, parsers.Scaled):
            return str(size)
        return size.var if size.scale == 1 else f"{size.var} * {size.scale}"

    def step_scalar(self, step: parsers.Scalar) -> list[str]:
        return [f"__u64 {step.var} = {step.value};"]

    def step_extract(self, step: parsers.Extract) -> list[str]:
        f, t = step.field, ctype(step.field.type)
        return [f"{t + ' ' if step.new else ''}{step.var} = ({t})(({step.word} >> {f.shift}) & {hex(f.mask)});"]

    def step_member(self, step: parsers.Member) -> list[str]:
        m, bits = step.mask, sum(1 << v for v in step.values)  # (m >> 6) + 3 >> 2: 0 when m < 64, else 1
        return [f"__u64 {m} = {step.var};", PIN.format(m),
                f"{m} = (({hex(bits)}ULL >> ({m} & 63)) & 1) & ~((({m} >> 6) + 3) >> 2);"]

    def step_keep(self, step: parsers.Keep) -> list[str]:
        m, top = step.mask, (1 << step.bits) - 1  # (t + top) >> bits: 0 when t is 0, else 1
        return [f"__u64 {m} = {step.var} ^ {hex(step.value)};", PIN.format(m),
                f"{m} = 0 - (({m} + {hex(top)}) >> {step.bits});"]

    def step_blend(self, step: parsers.Blend) -> list[str]:
        return [f"{step.var} ^= ({step.var} ^ {step.other}) & ~{step.mask};"]

    def step_add_unless(self, step: parsers.AddUnless) -> list[str]:
        return [f"{step.var} += {step.value} & ~{step.mask};"]

    def step_mask(self, step: parsers.Mask) -> list[str]:
        return [f"{step.var} &= {'~' if step.invert else ''}{step.mask};"]

    def step_grow(self, step: parsers.Grow) -> list[str]:
        return [f"{step.var} += {self.spell_size(step.size)} + {step.extra};", *self.guard(f"{step.var} > {step.limit}"),
                PIN.format(step.var), f"{step.var} &= {step.limit};"]

    def step_pin(self, step: parsers.Pin) -> list[str]:
        return [PIN.format(step.ptr)]

    def step_ret(self, step: parsers.Ret) -> list[str]:
        return [f"return {step.ptr};"]

    def step_take_l3(self, step: parsers.TakeL3) -> list[str]:
        missing = f"{step.ptr} < 0" if self.read else f"!{step.ptr}"
        return [f"__u16 {step.proto} = __l3proto;", f"{self.ptr_type()}{step.ptr} = __l3p;", *self.guard(missing)]

    def step_ret_l3(self, step: parsers.RetL3) -> list[str]:
        return [f"*__proto_out = {step.proto};", f"return {step.ptr};"]

    def step_ret_by_version(self, step: parsers.RetByVersion) -> list[str]:
        out = []
        for version, ethertype in step.table:
            out += [f"if ({step.var} == {version}) {{", f"{INDENT}*__proto_out = {hex(ethertype)};",
                    f"{INDENT}return {step.ptr};", "}"]
        return out + [self.line_fail()]

    # --- the file -----------------------------------------------------------------

    def render(self) -> str:
        # The bodies first: generating them notes the support code they use.
        subroutines, functions = self.subroutines(), self.functions()
        out = [*self.preamble(), *self.declarations(functions), *self.support_lines(), *blocks(subroutines),
               *blocks(self.program_lines(decl, body) for decl, body in functions),
               f'char LICENSE[] SEC("license") = "{self.license()}";']
        return "\n".join(out) + "\n"

    def preamble(self) -> list[str]:
        return [
            f"// Generated by tatara-build (C backend) from a source with sha256 {self.module.source_sha256[:64]}.",
            "// Do not edit: regenerate with `tatara-build emit FILE --backend c`.",
            "#include <linux/types.h>",
            "#include <linux/bpf.h>",
            "#include <linux/errno.h>",
            "#include <linux/pkt_cls.h>",
            "#include <bpf/bpf_helpers.h>",
            "#include <bpf/bpf_endian.h>",
            *(["#include <bpf/bpf_core_read.h>"] if self.core_reads else []),
            "",
            "// Legal source may compare a value with itself, e.g. (= x x): not an error here.",
            '#pragma clang diagnostic ignored "-Wtautological-compare"',
            "",
        ]

    def declarations(self, functions) -> list[str]:
        """The context structs the programs take (forward declarations),
        lpm key structs, the source's structs, maps and consts."""
        ctx_structs = sorted({PROGRAMS[d.kind].ctx for d, _ in functions if PROGRAMS[d.kind].ctx.startswith("struct ")})
        out = [c.removesuffix(" *").strip() + ";" for c in ctx_structs] + ([""] if ctx_structs else [])
        # lpm key structs: packed, the address right after the 4-byte prefix
        # length (as the kernel and aya's Key<K> lay it out)
        for width in sorted({mapdata.lpm_data_bytes(d) for d in self.module.maps if mapdata.is_lpm(d)}):
            out += [f"struct {lpm_struct(width)} {{", f"{INDENT}__u32 prefixlen;",
                    f"{INDENT}{lpm_data_member(width, self.lpm_key_types[width])};", "} __attribute__((packed));", ""]
        out += blocks(self.struct_decl_lines(struct) for struct in self.module.structs)
        out += blocks(self.map_decl_lines(decl) for decl in self.module.maps)
        consts = [line for const in self.module.consts for line in self.const_lines(const)]
        return out + (consts + [""] if consts else [])

    def support_lines(self) -> list[str]:
        """The support functions the bodies used, each spelled once."""
        out = blocks(self.lpm_key_helper(width) for width in sorted(self.lpm_widths))
        out += blocks(self.int_helper(op, t) for op, t in self.int_helper_keys())
        out += blocks(self.map_helper(op, self.maps[name]) for op, name in sorted(self.map_helpers))
        core = blocks(self.core_read_helper(name, hops, t) for name, hops, t in self.core_reads.values())
        if self.local_structs:  # declared by the core reads above; generated from the target kernel's BTF
            out += ["// Kernel structs, only the members read: libbpf relocates each access (CO-RE) against",
                    "// the running kernel's BTF, so their offsets here do not matter.",
                    *self.local_struct_lines()]
        parsers_ = self.packet_support()  # notes the helper loads and checksum support spelled before it
        return out + core + self.packet_read_helpers() + (self.csum_helpers() if self.csum_support else []) + parsers_

    def program_lines(self, decl: ir.ProgramDecl, body: list[str]) -> list[str]:
        ctx = PROGRAMS[decl.kind].ctx
        return [f'SEC("{format_target(PROGRAMS[decl.kind].section, decl)}")',
                f"int {snake(decl.name)}({ctx.rstrip()}{'' if ctx.endswith('*') else ' '}ctx)", "{", *body, "}"]

    def map_decl_lines(self, decl: ir.MapDecl) -> list[str]:
        kind = tables.MAP_KINDS[decl.kind]
        name = snake(decl.name)
        out = ["struct {", f"{INDENT}__uint(type, {kind.uapi});"]
        if MAPS[decl.kind].sized:
            out.append(f"{INDENT}__uint(max_entries, {int(decl.max_entries)});")
        if kind.has_value:
            out += [f"{INDENT}__type(key, {self.key_type(decl)});", f"{INDENT}__type(value, {ctype(decl.value)});"]
        out += [INDENT + line for line in MAPS[decl.kind].extra]
        out.append(f'}} {name} SEC(".maps");')
        return out


"""The aya dialect: a complete aya-ebpf 0.2.1 crate (Cargo.toml, Cargo.lock,
rust-toolchain.toml, .cargo/config.toml, src/main.rs).

Spelling rules that keep the verifier happy: wrap-around arithmetic is
`wrapping_*`; division goes through helpers that test for zero (and divide
magnitudes for signed types: BPF before v4 has no signed division), so no
panic path is ever reachable; packet bytes are read through `usize`
addresses checked against `data_end`; maps are `#[btf_map]` statics (the
`.maps` section libbpf and bpftool accept). The output is rustfmt-clean:
long expressions are hoisted into `let` temporaries."""

from __future__ import annotations

import re
from dataclasses import dataclass
import tomllib
from importlib import resources

from .. import ir, structs, tables
from ..types import BOOL, U32, U64, Array, Header, LpmKey, Option, Ref, Struct, Type, of
from ..errors import SourceError
from ..pins import AYA_EBPF_VERSION, NIGHTLY
from .. import mapdata
from . import parsers
from .base import (BINARY, INDENT, Csum, FieldWrite, Fill, Generator, PacketArgs, blocks, format_target, is_pure_value, lpm_address_types,
                   screaming, snake, stem, unparen)
from .parsers import above_l2

# AYA_EBPF_VERSION and NIGHTLY (on LLVM 22, the LLVM of the pinned link tools)
# come from tatara_build/pins.json, which nix/pins.nix reads too.
EDITION = "2024"
MAX_INLINE = 72  # longer (indent + expression) get their own `let` (rustfmt's width is 100)
MAX_OPERAND = 40  # a longer operand of a larger expression is named first
MAX_WIDTH = 100  # rustfmt's max_width
MAX_ARGS = 44  # a call's arguments (or a method chain) stay under rustfmt's 60-column heuristics


def is_atom(text: str) -> bool:
    """A name or a literal: never split by rustfmt, safe as a receiver."""
    return re.fullmatch(r"[A-Za-z0-9_]+", text) is not None  # not `-5i32`: `-5i32.f()` is `-(5i32.f())`

# --- spellings, keyed by the names tables.py defines ---------------------------

_XDP = "aya_ebpf::bindings::xdp_action"
_SKB_DATA = ("unsafe { (*ctx.skb.skb).data } as usize", "unsafe { (*ctx.skb.skb).data_end } as usize")


@dataclass(frozen=True)
class Program:
    attr: str  # the program macro; `{target}` (`{category}`/`{name}`) is the validated attach target
    ctx: str  # aya_ebpf::programs::<ctx>
    ret: str
    packet: tuple[str, str] | None = None  # packet start and end as addresses


PROGRAMS = {
    "xdp": Program("#[xdp]", "XdpContext", "u32", ("ctx.data()", "ctx.data_end()")),
    "tc": Program("#[classifier]", "TcContext", "i32", ("ctx.data()", "ctx.data_end()")),
    "socket-filter": Program("#[socket_filter]", "SkBuffContext", "i64", _SKB_DATA),
    "kprobe": Program('#[kprobe(function = "{target}")]', "ProbeContext", "u32"),
    "tracepoint": Program('#[tracepoint(category = "{category}", name = "{name}")]', "TracePointContext", "u32"),
    "cgroup-skb": Program("#[cgroup_skb({target})]", "SkBuffContext", "i32", _SKB_DATA),
    "lsm": Program('#[lsm(hook = "{target}")]', "LsmContext", "i32"),
    "perf-event": Program("#[perf_event]", "PerfEventContext", "u32"),
}
# Actions with a kernel constant (tables.Action.uapi); the others are their number.
ACTIONS = {
    **{a: f"{_XDP}::{a}" for a in ("XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT")},
    "TC_ACT_UNSPEC": "aya_ebpf::bindings::TC_ACT_UNSPEC",
    **{a: f"aya_ebpf::bindings::{a} as i32"
       for a in ("TC_ACT_OK", "TC_ACT_RECLASSIFY", "TC_ACT_SHOT", "TC_ACT_PIPE", "TC_ACT_REDIRECT")},
}
_SKB_FIELDS = {
    "len": "ctx.len()",
    "protocol": "u16::from_be(ctx.skb.protocol() as u16)",
    **{f: f"unsafe {{ (*ctx.skb.skb).{f.replace('-', '_')} }}"
       for f in ("mark", "ifindex", "priority", "tc-classid", "tc-index", "queue-mapping")},
}
CTX_FIELDS = {  # kind -> field -> Rust expression over `ctx` (writable ones: `(*ctx.skb.skb).<snake name>`)
    "xdp": {"len": "(ctx.data_end() - ctx.data()) as u32", "ingress-ifindex": "unsafe { (*ctx.ctx).ingress_ifindex }"},
    **{kind: {f: _SKB_FIELDS[f] for f in tables.PROGRAM_KINDS[kind].ctx_fields}
       for kind in ("tc", "socket-filter", "cgroup-skb")},
}
HELPERS = {name: f"aya_ebpf::helpers::{fn}" for name, fn in (
    ("get-current-cpu", "bpf_get_smp_processor_id"), ("get-current-pid-tgid", "bpf_get_current_pid_tgid"),
    ("get-current-uid-gid", "bpf_get_current_uid_gid"), ("get-prandom", "bpf_get_prandom_u32"),
    ("ktime-ns", "bpf_ktime_get_ns"), ("ktime-boot-ns", "bpf_ktime_get_boot_ns"),
    ("ktime-coarse-ns", "bpf_ktime_get_coarse_ns"), ("ktime-tai-ns", "bpf_ktime_get_tai_ns"),
    # (buf, size[, src]): array helpers, called raw on the place they fill (line_fill)
    ("current-comm", "generated::bpf_get_current_comm"),
    ("probe-read-user-str", "generated::bpf_probe_read_user_str"),
    ("probe-read-kernel-str", "generated::bpf_probe_read_kernel_str"),
    ("get-smp-processor-id", "bpf_get_smp_processor_id"), ("get-numa-node-id", "bpf_get_numa_node_id"),
    ("jiffies64", "bpf_jiffies64"), ("get-current-task", "bpf_get_current_task"),
    ("get-current-cgroup-id", "bpf_get_current_cgroup_id"))}
# Helpers whose binding returns another type than the table's (c_long).
HELPER_CASTS = {"get-numa-node-id": "u32"}
FORMS = {  # tables.HELPER_FORMS over `ctx`; `{map}` is the map's static
    "redirect": "(unsafe {{ aya_ebpf::helpers::bpf_redirect({ifindex}, {flags}) }} as {ret})",
    "redirect-map": "__redirect_{name}({key}, {fallback})",  # FORM_SUPPORT
    "tail-call": "unsafe {{ {map}.tail_call(&ctx, {index}) }};",
    "adjust-head": "(unsafe {{ aya_ebpf::helpers::bpf_xdp_adjust_head(ctx.ctx, {delta}) }} as i64)",
    "adjust-tail": "(unsafe {{ aya_ebpf::helpers::bpf_xdp_adjust_tail(ctx.ctx, {delta}) }} as i64)",
    "get-stackid": "__stackid_{name}(&ctx, {flags})",  # FORM_SUPPORT
}
# Support functions of helper forms, one per map used (`{map}` the static,
# `{name}` its snake_case name): aya returns Results, the language the value.
FORM_SUPPORT = {
    # Ok(XDP_REDIRECT), or Err(the fallback action) when the slot is empty
    "redirect-map": ["#[inline(always)]", "fn __redirect_{name}(key: u32, fallback: u64) -> u32 {{",
                     INDENT + "match {map}.redirect(key, fallback) {{", INDENT * 2 + "Ok(action) => action,",
                     INDENT * 2 + "Err(action) => action,", INDENT + "}}", "}}"],
    # Ok(stack id), or Err(-errno)
    "get-stackid": ["#[inline(always)]", "fn __stackid_{name}<C: StackIdContext>(ctx: &C, flags: u64) -> i64 {{",
                    INDENT + "match ctx.get_stackid(&{map}, flags) {{", INDENT * 2 + "Ok(id) => id,",
                    INDENT * 2 + "Err(errno) => errno as i64,", INDENT + "}}", "}}"],
}
FORM_USES = {"get-stackid": "use aya_ebpf::programs::tracing::StackIdContext;"}



@dataclass(frozen=True)
class Read:
    """A tables.PACKET_READS read: `{n}` bytes at `{off}` into `{dst}` over
    `skb` (*const c_void), nonzero when not there, with `uses` in scope."""
    call: str
    uses: tuple[str, ...]


READS = {
    "skb": Read("bpf_skb_load_bytes(skb, {off}, {dst}, {n})", ("aya_ebpf::helpers::bpf_skb_load_bytes",)),
    "net": Read("bpf_skb_load_bytes_relative(skb, {off}, {dst}, {n}, BPF_HDR_START_NET)",
                ("aya_ebpf::bindings::bpf_hdr_start_off::BPF_HDR_START_NET", "aya_ebpf::helpers::bpf_skb_load_bytes_relative")),
}
INTS = {t: t for t in ("u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64")}


@dataclass(frozen=True)
class Map:
    """The btf_maps type (`{k}` key, `{v}` value, `{n}` max entries) and how
    each operation is spelled (`{m}` the static, `{k}` key, `{v}` value)."""
    type: str
    ops: dict[str, str]


_BTF = "aya_ebpf::btf_maps::"
ARRAY_OPS = {"ptr": "{m}.get_ptr({k})", "ptr_mut": "{m}.get_ptr_mut({k})", "set": "{m}.set({k}, {v}, 0)"}
HASH_OPS = {"ptr": "{m}.get_ptr({k})", "ptr_mut": "{m}.get_ptr_mut({k})", "set": "{m}.insert({k}, {v}, 0)",
            "insert_new": "{m}.insert({k}, {v}, flags)", "delete": "{m}.remove({k})"}
LPM_KEY = "aya_ebpf::btf_maps::lpm_trie::Key"
MAPS = {
    "array": Map(_BTF + "Array<{v}, {n}>", ARRAY_OPS),
    "per-cpu-array": Map(_BTF + "PerCpuArray<{v}, {n}>", ARRAY_OPS),
    "hash": Map(_BTF + "HashMap<{k}, {v}, {n}>", HASH_OPS),
    "lru-hash": Map(_BTF + "LruHashMap<{k}, {v}, {n}>", HASH_OPS),
    "per-cpu-hash": Map(_BTF + "PerCpuHashMap<{k}, {v}, {n}>", HASH_OPS),
    "lpm-trie": Map(_BTF + "LpmTrie<{k}, {v}, {n}>",
                    {"ptr": "{m}.get(&{k})", "set": "{m}.insert(&{k}, {v}, 0)", "delete": "{m}.remove(&{k})"}),
    # events: reserve_untyped::<T>, write in place, submit (Generator.stmt_event_output)
    "ring-buf": Map(_BTF + "RingBuf<(), {n}>", {}),
    "perf-event-array": Map(_BTF + "PerfEventArray", {"output": "{m}.output(&ctx, &{v}, 0);"}),
    "stack-trace": Map(_BTF + "StackTrace<{n}>", {}),
    # key/value fixed by the kernel: aya declares them (devmap, cpumap: the
    # 8-byte bpf_devmap_val / bpf_cpumap_val, as the C backend's u64)
    "devmap": Map(_BTF + "DevMap<{n}>", {}),
    "devmap-hash": Map(_BTF + "DevMapHash<{n}>", {}),
    "cpumap": Map(_BTF + "CpuMap<{n}>", {}),
    "xskmap": Map(_BTF + "XskMap<{n}>", {}),
    "prog-array": Map(_BTF + "ProgramArray<{n}>", {}),
}
# parsers.Pin in Rust: an empty asm! on the pointer. Its operand is an
# explicit register because rustc rejects an unused `reg` operand and LLVM's
# BTF writer skips only an empty asm string (a `/* {0} */` template gives two
# line-info records at one offset, which the kernel rejects). r6 is
# callee-saved, so it survives the helper calls around it. Spelled once as
# a macro (PIN_MACRO, in the crate head): the statement itself would pass
# rustfmt's width in the IPv6 extension walk's nested rounds.
PIN = "__pin!({});"
PIN_MACRO = [
    "macro_rules! __pin {",
    "    ($v:ident) => {",
    '        unsafe { core::arch::asm!("", inout("r6") $v, options(nomem, nostack, preserves_flags)) }',
    "    };",
    "}",
]
ATOMIC = ("u32", "u64", "i32", "i64")  # BPF atomics are 32 and 64 bits wide
# What packet reads through helpers take: the context's raw skb pointer
# (`ctx.skb.skb` of SkBuffContext and TcContext alike).
SKB = "*mut aya_ebpf::bindings::__sk_buff"
ZEROED = "__zeroed"
# A struct value of all-zero bytes (`make`, an absent `map-get`). Not
# `core::mem::zeroed()`: that is an llvm.memset, which the BPF backend
# cannot lower past a few stores once memcpy is expanded in order (the
# link step's --bpf-expand-memcpy-in-order): "A call to built-in function
# 'memset' is not supported". Volatile stores of the struct's alignment are
# never merged into one; every byte is a member (gaps are __padN arrays).
ZERO_AT = "__zero_at"
# Zero a struct where it lies (a ring buffer record: no stack copy); ZEROED builds on it.
ZERO_AT_FN = [
    "#[inline(always)]",
    f"fn {ZERO_AT}<T>(v: *mut T) {{",
    "    let p = v as *mut u8;",
    "    let mut i = 0;",
    "    while i < core::mem::size_of::<T>() {",
    "        unsafe {",
    "            match core::mem::align_of::<T>() {",
    "                8 => core::ptr::write_volatile(p.add(i) as *mut u64, 0),",
    "                4 => core::ptr::write_volatile(p.add(i) as *mut u32, 0),",
    "                2 => core::ptr::write_volatile(p.add(i) as *mut u16, 0),",
    "                _ => core::ptr::write_volatile(p.add(i), 0),",
    "            }",
    "        }",
    "        i += core::mem::align_of::<T>();",
    "    }",
    "}",
]
ZEROED_FN = ZERO_AT_FN + [
    "",
    "#[inline(always)]",
    f"fn {ZEROED}<T: Copy>() -> T {{",
    "    let mut v = core::mem::MaybeUninit::<T>::uninit();",
    f"    {ZERO_AT}(v.as_mut_ptr());",
    "    unsafe { v.assume_init() }",
    "}",
]
SPELL = {  # Generator.SPELL: the one-line spellings that fill a template
    "found_ptr": "let Some({ptr}) = {ptr}", "deref": "unsafe {{ *{ptr} }}", "ref_member": "unsafe {{ (*{ref}).{member} }}",
    "ref_deref": "unsafe {{ *{ref} }}", "store": "{rec}.write({value});", "submit": "{rec}.submit(0);",
    "record_ptr": "{rec}_p", "array_ptr": "{name}.as_mut_ptr()", "zero_record": ZERO_AT + "({ptr});",
    "member_ptr": "(*{ptr}).{member}.as_mut_ptr()",  # inside line_fill's unsafe block
}
SKB_CONTEXT = "aya_ebpf::programs::SkBuffContext"  # the context of kinds that read packets through helpers
CRATE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def rtype(t: Type | str) -> str:
    t = of(t)
    if type(t) is Ref:
        return f"*mut {snake(t.target.name)}"
    if type(t) is Struct:
        return snake(t.name)  # the C name, so BTF names agree across backends
    if type(t) is Array:
        return f"[{INTS[t.elem.spell()]}; {t.n}]"
    if type(t) is LpmKey:
        return f"{LPM_KEY}<{lpm_data_rust(t.nbytes)}>"
    if type(t) is Header:
        # Option, not a 0 sentinel: after `if p != 0` fails LLVM may rewrite
        # later reads through `data` (== p == 0) into constant addresses,
        # which the verifier rejects.
        return "Option<usize>"
    if t == BOOL:
        return "bool"
    if type(t) is Option:
        return f"Option<{rtype(t.inner)}>"
    return INTS[t.spell()]


def lpm_data_rust(width: int, key: str | None = None) -> str:
    """The K of aya's lpm_trie::Key<K>: the address in network order, one
    integer of the key's width, or u64 halves (16 bytes)."""
    parts = lpm_address_types(width, key or tables.UNSIGNED_BY_BYTES.get(width))
    return rtype(parts[0]) if len(parts) == 1 else f"[{rtype(parts[0])}; {len(parts)}]"


def fn_head(name: str, params: list[str], ret: str = "") -> list[str]:
    """`fn name(params) -> ret {`, one parameter per line past rustfmt's width."""
    tail = f" -> {ret} {{" if ret else " {"
    line = f"fn {name}({', '.join(params)}){tail}"
    if len(line) <= MAX_WIDTH:
        return [line]
    return [f"fn {name}(", *(f"{INDENT}{p}," for p in params), f"){tail}"]


def indent(lines: str, depth: int) -> list[str]:
    return [INDENT * depth + line for line in lines.split("\n")]


class AyaGenerator(Generator):
    name = "aya"
    summary = "aya-ebpf Rust crate, the default"
    source_suffix = ".rs"
    comment = ("// ", "")
    compiler = "cargo"
    relocates = False  # aya has no CO-RE (aya-rs/aya#349): offsets from the target kernels' BTF
    PROGRAMS, MAPS, HELPERS, CTX_FIELDS, ACTIONS, INTS, FORMS = PROGRAMS, MAPS, HELPERS, CTX_FIELDS, ACTIONS, INTS, FORMS
    READS, SPELL = READS, SPELL
    # Direct access passes packet addresses; helper reads pass offsets from the packet start.
    DIRECT_ARGS = PacketArgs("__data, __data_end", "__data_end, __l3", "__data_end")
    READ_ARGS = PacketArgs("__skb, 0", "__skb, __l3", "__skb")

    def files(self) -> dict[str, str]:
        """The crate: Cargo.toml, Cargo.lock, rust-toolchain.toml, .cargo/config.toml, src/main.rs."""
        name = stem(self.module)
        if not CRATE_NAME.fullmatch(name):
            raise SourceError(f"file name `{name}` cannot name a crate: use [a-z][a-z0-9-]*", None)
        return {
            "Cargo.toml": cargo_toml(name),
            "Cargo.lock": cargo_lock(name),
            "rust-toolchain.toml": RUST_TOOLCHAIN,
            ".cargo/config.toml": CARGO_CONFIG,
            "src/main.rs": self.render_main(),
        }

    @classmethod
    def section_prefix(cls, kind: str) -> str:
        return PROGRAMS[kind].attr.strip("#[]").split("(")[0]

    def __init__(self, module: ir.Module):
        super().__init__(module)
        self.atomic_adds: set[str] = set()  # value types of atomic map-add
        self.pinned = False  # a parser pins a pointer (PIN): the crate needs asm on BPF
        self.core_reads: dict[tuple, tuple[str, tuple, str]] = {}  # path -> (support function, hops, type)
        self.form_support: set[tuple[str, str]] = set()  # (helper form, map) with a FORM_SUPPORT function
        self.csum_support = False  # a direct write fixes checksums in the program (__csum_set)
        self.store_support = False  # a helper write (__store_skb, __l3/l4_csum_skb)

    # --- values -------------------------------------------------------------

    def hoist(self, text: str, t: Type) -> str:
        """Keep lines short (and rustfmt a no-op): a long value gets a name."""
        if not hasattr(self, "fn") or len(text) + len(INDENT) * self.fn.depth <= MAX_INLINE:
            return text
        tmp = self.temp()
        self.emit(self.line_let(tmp, t, text, False))
        return tmp

    def spell_int(self, value: int, t: Type) -> str:
        if t == BOOL:
            return "true" if value else "false"
        return f"{value}{INTS[t.spell()]}"

    def spell_bool(self, value: bool) -> str:
        return "true" if value else "false"

    def spell_default(self, t: Type) -> str | None:
        return None  # Rust checks definite assignment; no dummy initialiser

    def spell_action(self, action: tables.Action) -> str:
        return ACTIONS[action.uapi] if action.uapi else str(action.value)

    def spell_binary(self, op: str, left: str, right: str, t: Type) -> str:
        if op in ("add", "sub", "mul", "shl", "shr"):
            # A method call on a compound receiver is a chain; rustfmt splits
            # chains past chain_width (60): keep receivers atomic, calls short.
            if not is_atom(left) or len(left) + len(right) > MAX_ARGS:
                left = self.hoist_always(left, t)
            if len(left) + len(right) > MAX_ARGS and not is_atom(right):
                right = self.hoist_always(right, t)
            if op in ("shl", "shr"):
                # wrapping_shl masks the amount to width-1, as the C spelling does
                text = f"{left}.wrapping_{op}({right} as u32)"
            else:
                text = f"{left}.wrapping_{op}({unparen(right)})"
        else:
            text = f"({left} {BINARY[op]} {right})"
        return self.hoist(text, t)

    def spell_cast(self, value: str, src: Type, dst: Type) -> str:
        if dst == BOOL:
            return f"({value} != 0)" if src != BOOL else value
        if src == dst:
            return value
        return f"({value} as {rtype(dst)})"

    def spell_call(self, helper: tables.Helper, args: list[str]) -> str:
        call = f"unsafe {{ {HELPERS[helper.name]}({', '.join(args)}) }}"
        cast = HELPER_CASTS.get(helper.name)
        return f"({call} as {cast})" if cast else call

    def map_symbol(self, decl: ir.MapDecl) -> str:
        return screaming(decl.name)

    def helper_form(self, e: ir.Node, **args) -> str:
        if e.form in FORM_SUPPORT:
            self.form_support.add((e.form, e.map))
        text = super().helper_form(e, **args)
        return text if text.endswith(";") else self.hoist(text, e.type)

    def spell_ctx_field(self, spec: tables.CtxField, text: str) -> str:
        return f"({text})"

    def field_bytes(self, ptr: str, spec: tables.HeaderFieldSpec) -> str:
        at = f"{ptr} + {spec.offset}"
        value = self.read_load(spec.size, at) if self.read else self.raw_load(spec.size, at)
        return f"u{spec.size * 8}::from_be({value})" if spec.size > 1 else value

    def field_as(self, value: str, spec: tables.HeaderFieldSpec) -> str:
        return value if spec.type == f"u{spec.size * 8}" else f"({value} as {rtype(spec.type)})"

    def raw_load(self, size: int, at: str) -> str:
        return f"unsafe {{ *(({at}) as *const u{size * 8}) }}"

    def operand(self, e: ir.Expr) -> str:
        text = self.value(e)
        return self.hoist_always(text, e.type) if len(text) > MAX_OPERAND else text

    def arguments(self, exprs: list[ir.Expr]) -> list[str]:
        """rustfmt lays out a call vertically once its arguments pass
        fn_call_width (60): name the longest until the call fits."""
        texts = [self.operand(e) for e in exprs]
        while len(", ".join(texts)) > MAX_ARGS:
            i = max((i for i, t in enumerate(texts) if not is_atom(t)), key=lambda i: len(texts[i]), default=None)
            if i is None:
                break
            texts[i] = self.hoist_always(texts[i], exprs[i].type)
        return texts

    def short_circuit(self, args: list[ir.Expr], op: str, is_and: bool) -> str:
        if not all(is_pure_value(a) for a in args):
            return super().short_circuit(args, op, is_and)
        parts = [self.operand(a) for a in args]
        text = "(" + f" {op} ".join(parts) + ")"
        if len(text) + len(INDENT) * self.fn.depth <= MAX_INLINE:
            return text
        # Operands are pure reads: naming them first keeps the meaning.
        return "(" + f" {op} ".join(self.hoist_always(p, BOOL) for p in parts) + ")"

    def hoist_always(self, text: str, t: Type) -> str:
        if re.fullmatch(r"__t[0-9]+", text):
            return text
        tmp = self.temp()
        self.emit(self.line_let(tmp, t, text, False))
        return tmp

    def spell_ctx_u64(self, offset: int) -> str:
        # a direct context load, as ProbeContext::arg / LsmContext::arg read
        return self.hoist(f"unsafe {{ *(aya_ebpf::EbpfContext::as_ptr(&ctx) as *const u64).add({offset // 8}) }}", U64)

    def spell_core_read(self, layouts, pointer: str, e: ir.CoreRead) -> str:
        """No CO-RE in aya (aya-rs/aya#349): bpf_probe_read_kernel at the
        offsets of the target kernels' BTF, which must all agree."""
        hops = self.fixed_layout(layouts, e, f"`{e.struct}.{'.'.join(map(str, e.fields))}`")
        key = (e.struct, tuple(e.fields), tuple(h.offset for h in hops))
        if key not in self.core_reads:
            self.core_reads[key] = (self.helper_name("core_read", str(len(self.core_reads) + 1)), hops, e.type)
        return f"{self.core_reads[key][0]}({unparen(pointer)})"

    def core_read_helper(self, name: str, hops, t: Type) -> list[str]:
        body, src = [f"{INDENT}use aya_ebpf::helpers::bpf_probe_read_kernel as read;"], "p"
        for i, hop in enumerate(hops):
            last = i == len(hops) - 1
            read = f"unsafe {{ read({src}.wrapping_add({hop.offset}) as *const {rtype(t) if last else 'u64'}) }}.unwrap_or(0)"
            if last and hop.steps[-1].bits:
                read = self.bitfield_read(src, hop, t)
            if last:
                body.append(f"{INDENT}{read}")
            else:
                body.append(f"{INDENT}let p{i + 1}: u64 = {read};")
                src = f"p{i + 1}"
        return ["#[inline(always)]", f"fn {name}(p: u64) -> {rtype(t)} {{", *body, "}"]

    @staticmethod
    def bitfield_read(src: str, hop, t: str) -> str:
        """A bitfield: the smallest word holding its bits (from its first
        byte, little-endian), shifted down and masked."""
        step = hop.steps[-1]
        shift = hop.bit
        word = next(n for n in (8, 16, 32, 64) if n >= shift + step.bits)
        mask = (1 << step.bits) - 1
        return (f"((unsafe {{ read({src}.wrapping_add({hop.offset}) as *const u{word}) }}.unwrap_or(0) >> {shift}) "
                f"& {mask}) as {rtype(t)}")

    def spell_tp_string(self, layouts, e: ir.TpField) -> str:
        """A __data_loc string's address: the record's address plus the low
        16 bits of its u32 (offset | length << 16)."""
        (hop,) = self.fixed_layout(layouts, e, f"tracepoint field `{e.field}`")
        record = "aya_ebpf::EbpfContext::as_ptr(&ctx) as usize"
        loc = self.hoist_always(f"unsafe {{ *(({record} + {hop.offset}) as *const u32) }}", U32)
        return f"(({record}) as u64).wrapping_add(({loc} & 0xffff) as u64)"

    def spell_tp_field(self, layouts, e: ir.TpField) -> str:
        (hop,) = self.fixed_layout(layouts, e, f"tracepoint field `{e.field}`")
        at = f"(aya_ebpf::EbpfContext::as_ptr(&ctx) as usize + {hop.offset})"
        return self.hoist_always(f"unsafe {{ *({at} as *const {rtype(e.type)}) }}", e.type)

    def spell_found(self, name: str) -> str:
        return f"let Some({name}) = {name}"

    # --- structs ----------------------------------------------------------------

    def line_zeroed(self, name: str, t: Type) -> str:
        return f"let mut {name}: {rtype(t)} = {ZEROED}();"

    def line_set_member(self, ref: str, member: str, value: str) -> str:
        return f"unsafe {{ (*{ref}).{member} = {unparen(value)} }};"

    def line_copy_array(self, name: str, member: str, value: str) -> str:
        return self.line_assign(f"{name}.{member}", value)

    def line_field_add(self, ref: str, member: str, delta: str, t: Type) -> str:
        if t.spell() in ATOMIC:
            self.atomic_adds.add(t.spell())
            slot = self.temp()  # named, so the call stays on one line (rustfmt)
            self.emit(f"let {slot}: *mut {rtype(t)} = unsafe {{ &raw mut (*{ref}).{member} }};")
            if not is_atom(delta):
                delta = self.hoist_always(delta, t)
            return f"{self.helper_name('atomic_add', t.spell())}({slot}, {delta});"
        return f"unsafe {{ (*{ref}).{member} = (*{ref}).{member}.wrapping_add({unparen(delta)}) }};"

    def struct_decl_lines(self, struct: ir.StructDecl) -> list[str]:
        """`#[repr(C)]` under the C name, gaps as explicit `__padN` bytes
        (structs.members): the layout C gives."""
        out, pads = ["#[repr(C)]", "#[derive(Clone, Copy)]", "#[allow(non_camel_case_types)]",
                     f"pub struct {snake(struct.name)} {{"], 0
        for member, t, size in structs.members(self.layouts[struct.name]):
            if t is None:
                out.append(f"{INDENT}pub __pad{pads}: [u8; {size}],")
                pads += 1
            else:
                out.append(f"{INDENT}pub {snake(member)}: {rtype(t)},")
        return out + ["}"]

    # --- statements -----------------------------------------------------------

    def markable(self, line: str) -> bool:
        # rustfmt moves a comment after an opening `{` into the block
        return super().markable(line) and not line.rstrip().endswith("{")

    def line_return(self, value: str) -> str:
        return f"return {unparen(value)};"

    def line_discard(self, value: str) -> str:
        return f"let _ = {unparen(value)};"

    def line_assign(self, name: str, value: str) -> str:
        return self.wrap(f"{name} =", f"{unparen(value)};")

    def line_let(self, name: str, t: Type, value: str | None, mutable: bool) -> str:
        mut = "mut " if mutable and value is not None else ""
        if value is None:
            return f"let {name}: {rtype(t)};"
        return self.wrap(f"let {mut}{name}: {rtype(t)} =", f"{unparen(value)};")

    def wrap(self, head: str, tail: str) -> str:
        """rustfmt's layout for a too-long `let x: T = value;`: the value on
        the next line, one indent deeper."""
        depth = self.fn.depth if hasattr(self, "fn") else 0
        if len(INDENT) * depth + len(head) + 1 + len(tail) <= MAX_WIDTH:
            return f"{head} {tail}"
        return f"{head}\n{INDENT}{tail}"

    def line_unread(self, name: str) -> str | None:
        return None  # the crate allows unused_variables

    def open_if(self, cond: str) -> str:
        return f"if {unparen(cond)} {{"

    def open_while(self, cond: str) -> str:
        return f"while {unparen(cond)} {{"

    def op(self, name: str, decl: ir.MapDecl, key: str = "", value: str = "", m: str | None = None) -> str:
        template = MAPS[decl.kind].ops.get(name)
        if template is None:
            raise SourceError(f"{decl.kind} maps do not support this operation in the aya backend", decl.span)
        return template.format(m=m or screaming(decl.name), k=unparen(key), v=unparen(value),
                               t=rtype(decl.value) if decl.value else "u64")

    def line_lookup(self, ptr: str, decl: ir.MapDecl, key: str) -> str:
        # a struct value is written through the pointer (set-field!, field-add!)
        line = f"let {ptr} = {self.op('ptr_mut' if type(of(decl.value)) is Struct else 'ptr', decl, key)};"
        if len(INDENT) * self.fn.depth + len(line) <= MAX_WIDTH or "." not in line:
            return line
        receiver, call = line.split(".", 1)  # rustfmt breaks the chain before the method
        return f"{receiver}\n{INDENT}.{call}"

    def line_event_output(self, decl: ir.MapDecl, tmp: str, t: str) -> str:
        return MAPS[decl.kind].ops["output"].format(m=screaming(decl.name), v=tmp, t=rtype(t))

    def open_reserve(self, rec: str, decl: ir.MapDecl, t: Type) -> str:
        head, call = f"if let Some(mut {rec}) =", f"{screaming(decl.name)}.reserve_untyped::<{rtype(t)}>(0)"
        if len(INDENT) * self.fn.depth + len(head) + len(call) + 3 <= MAX_WIDTH:
            return f"{head} {call} {{"
        return f"{head}\n{INDENT}{call}\n{{"  # rustfmt: a wrapped condition puts `{` on its own line

    def line_record_ptr(self, rec: str) -> str:
        return f"let {rec}_p = {rec}.as_mut_ptr();"

    def line_let_array(self, name: str, t: Array) -> str:
        return f"let mut {name}: {rtype(t)} = [0{rtype(t.elem)}; {t.n}];"

    def line_fill(self, fill: Fill, ptr: str, t: Array) -> str:
        size = t.elem.bits // 8 * t.n
        args = [f"{ptr}.cast()", str(size), *(f"{a} as *const core::ffi::c_void" for a in fill.args)]
        call = f"{HELPERS[fill.helper.name]}({', '.join(args)})"
        depth = len(INDENT) * self.fn.depth
        if depth + len(call) + 12 <= MAX_WIDTH:
            return f"unsafe {{ {call} }};"
        if depth + len(INDENT) + len(call) <= MAX_WIDTH:
            return f"unsafe {{\n{INDENT}{call}\n}};"
        # rustfmt's layout: one argument a line
        lines = "".join(f"{INDENT * 2}{a},\n" for a in args)
        return f"unsafe {{\n{INDENT}{HELPERS[fill.helper.name]}(\n{lines}{INDENT})\n}};"

    def packet_prologue(self, pull: int | None) -> list[str]:
        if self.read:
            return [f"{INDENT}let __skb: {SKB} = ctx.skb.skb;"]  # offsets from the packet start, read through the helper
        out = []
        if pull:
            # Headers past the skb's linear head are invisible to direct
            # access: pull what the parsers may read (never past the packet:
            # pulling more than skb->len fails and pulls nothing).
            out += [f"{INDENT}if ctx.data() + {pull} > ctx.data_end() {{",
                    f"{INDENT * 2}let __pull: u32 = core::cmp::min(ctx.len(), {pull});",
                    f"{INDENT * 2}let _ = unsafe {{ aya_ebpf::helpers::bpf_skb_pull_data(ctx.skb.skb as *mut _, __pull) }};",
                    f"{INDENT}}}"]
        data, end = PROGRAMS[self.fn.kind.name].packet
        mut = "mut " if self.fn.reload else ""  # re-read after each tail-call
        return out + [f"{INDENT}let {mut}__data: usize = {data};", f"{INDENT}let {mut}__data_end: usize = {end};"]

    def lines_reload_packet(self, locator: str | None) -> str:
        data, end = PROGRAMS[self.fn.kind.name].packet
        return f"__data = {data};\n__data_end = {end};" + (f"\n__l3 = crate::{locator}({self.l2_args()});" if locator else "")

    def line_locate_l3(self, locator: str) -> str:
        mut = "mut " if self.fn.reload else ""  # re-located after a tail-call
        return f"let {mut}__l3: Option<(usize, u16)> = {locator}({self.l2_args()});"

    def line_set_ctx_field(self, member: str, value: str) -> str:
        return self.wrap(f"unsafe {{ (*ctx.skb.skb).{member} =", f"{value} }};")

    def spell_const(self, const: ir.ConstDecl) -> str:
        # as aya's EbpfLoader::set_global expects: a volatile read, so the
        # compiler keeps the load of the loader's value
        return f"unsafe {{ core::ptr::read_volatile(&{screaming(const.name)}) }}"

    def const_lines(self, const: ir.ConstDecl) -> list[str]:
        """A `#[no_mangle]` immutable static: .rodata, named in the symbol
        table, which aya's EbpfLoader::set_global (or libbpf) rewrites before load."""
        return ["#[unsafe(no_mangle)]",
                f"static {screaming(const.name)}: {rtype(const.const_type)} = "
                f"{self.spell_int(const.default, of(const.const_type))};"]

    def line_printk(self, fmt: str, args: list[tuple[str, str, str]]) -> str:
        """aya-ebpf's bpf_printk! (bpf_trace_printk for ≤ 3 arguments), the
        format a byte string; PrintkArg takes integers (bool as u32)."""
        text = fmt.replace("\\", "\\\\").replace('"', '\\"')
        values = [f"{unparen(v)} as u32" if t == BOOL else unparen(v) for v, t, _ in args]
        values = [v if is_atom(v) else self.hoist_always(v, U32 if t == BOOL else t)
                  for v, (_, t, _) in zip(values, args)]
        parts = [f'b"{text}"', *values]
        macro = "aya_ebpf::helpers::bpf_printk!"
        inner = ", ".join(parts)
        depth = len(INDENT) * self.fn.depth
        # rustfmt's three layouts of `unsafe { m!(args) };`, by width
        if depth + len(f"unsafe {{ {macro}({inner}) }};") <= MAX_WIDTH and len(inner) <= 60:
            return f"unsafe {{ {macro}({inner}) }};"
        if depth + len(INDENT) + len(f"{macro}({inner})") <= MAX_WIDTH and len(inner) <= 60:
            return f"unsafe {{\n{INDENT}{macro}({inner})\n}};"
        rows = ",\n".join(INDENT * 2 + p for p in parts)
        return f"unsafe {{\n{INDENT}{macro}(\n{rows}\n{INDENT})\n}};"

    def func_lines(self, name: str, params: list[tuple[str, str, bool]], returns: str | None,
                   body: list[str]) -> list[str]:
        spelled = [f"{'mut ' if mutable else ''}{p}: {rtype(t)}" for p, t, mutable in params]
        tail = f" -> {rtype(returns)} {{" if returns else " {"
        head = [f"fn {name}({', '.join(spelled)}){tail}"]
        if len(head[0]) > MAX_WIDTH:  # rustfmt's layout: one parameter per line
            head = [f"fn {name}(", *(f"{INDENT}{p}," for p in spelled), f"){tail}"]
        return ["#[inline(always)]", *head, *body, "}"]

    # --- support functions ------------------------------------------------------

    def int_helper(self, op: str, t: Type) -> list[str]:
        r, name = rtype(t), self.helper_name(op, t.spell())
        head = ["#[inline(always)]", f"fn {name}(a: {r}, b: {r}) -> {r} {{"]
        # checked_* + unwrap_or: no panic path exists for the verifier to find.
        checked = {"div": "checked_div", "rem": "checked_rem"}[op]
        if not t.signed:
            return head + [f"{INDENT}a.{checked}(b).unwrap_or(0)", "}"]
        sign = "(a < 0) != (b < 0)" if op == "div" else "a < 0"
        return head + [
            f"{INDENT}let r = a.unsigned_abs().{checked}(b.unsigned_abs()).unwrap_or(0);",
            f"{INDENT}if {sign} {{", f"{INDENT * 2}r.wrapping_neg() as {r}", f"{INDENT}}} else {{",
            f"{INDENT * 2}r as {r}", f"{INDENT}}}", "}"]

    def atomic_add(self, t: str) -> list[str]:
        return ["#[inline(always)]",
                f"fn {self.helper_name('atomic_add', t)}(slot: *mut {t}, delta: {t}) {{",
                f"{INDENT}use core::intrinsics::{{AtomicOrdering::Relaxed, atomic_xadd}};",
                f"{INDENT}unsafe {{ atomic_xadd::<{t}, {t}, {{ Relaxed }}>(slot, delta) }};", "}"]

    def map_helper(self, op: str, decl: ir.MapDecl) -> list[str]:
        k = rtype(LpmKey(mapdata.lpm_data_bytes(decl))) if mapdata.is_lpm(decl) else rtype(decl.key)
        v = rtype(decl.value or "u64")
        name = self.helper_name(op, snake(decl.name))
        body = [f"{INDENT}let map = &{screaming(decl.name)};"]
        if op == "get":
            head = f"fn {name}(key: {k}) -> {v} {{"
            absent = f"{ZEROED}()" if type(of(decl.value)) is Struct else "0"
            body += [f"{INDENT}match {self.op('ptr', decl, 'key', m='map')} {{",
                     f"{INDENT * 2}Some(value) => unsafe {{ *value }},", f"{INDENT * 2}None => {absent},", f"{INDENT}}}"]
        elif op == "set":
            head = f"fn {name}(key: {k}, value: {v}) {{"
            body += [f"{INDENT}let _ = {self.op('set', decl, 'key', 'value', m='map')};"]
        elif op == "delete":
            head = f"fn {name}(key: {k}) {{"
            body += [f"{INDENT}let _ = {self.op('delete', decl, 'key', m='map')};"]
        else:  # add: atomic in place; insert the delta where entries can be absent
            head = f"fn {name}(key: {k}, delta: {v}) {{"
            if decl.value in ATOMIC:
                # core's Atomic*::fetch_add needs CAS, which bpfel lacks; the
                # intrinsic lowers to BPF's atomic add.
                self.atomic_adds.add(decl.value)
                add = f"{self.helper_name('atomic_add', decl.value)}(slot, delta)"
            else:
                add = "unsafe { *slot = (*slot).wrapping_add(delta) }"
            if "map-delete" in tables.MAP_KINDS[decl.kind].ops:
                # Insert only if still absent; when another CPU inserted first
                # (EEXIST), add to its entry: no count is lost to the race.
                body += [f"{INDENT}match {self.op('ptr_mut', decl, 'key', m='map')} {{",
                         f"{INDENT * 2}Some(slot) => {add},", f"{INDENT * 2}None => {{",
                         f"{INDENT * 3}let flags = aya_ebpf::bindings::BPF_NOEXIST as u64;",
                         f"{INDENT * 3}if {self.op('insert_new', decl, 'key', 'delta', m='map')} == Err(-{tables.EEXIST}) {{",
                         f"{INDENT * 4}if let Some(slot) = {self.op('ptr_mut', decl, 'key', m='map')} {{",
                         f"{INDENT * 5}{add};",
                         f"{INDENT * 4}}}",
                         f"{INDENT * 3}}}",
                         f"{INDENT * 2}}}", f"{INDENT}}}"]
            else:
                body += [f"{INDENT}if let Some(slot) = {self.op('ptr_mut', decl, 'key', m='map')} {{",
                         f"{INDENT * 2}{add};", f"{INDENT}}}"]
        return ["#[inline(always)]", head, *body, "}"]

    def lpm_key_helper(self, width: int) -> list[str]:
        """Builds aya's lpm_trie::Key (the kernel's struct bpf_lpm_trie_key):
        prefix length in host order, the address in network order."""
        parts = self.lpm_address_types(width)
        names = ["addr"] if len(parts) == 1 else ["hi", "lo"] if len(parts) == 2 else [f"a{i}" for i in range(len(parts))]
        params = ", ".join(f"{n}: {rtype(t)}" for n, t in zip(names, parts))
        data = f"{names[0]}.to_be()" if len(parts) == 1 else "[" + ", ".join(f"{n}.to_be()" for n in names) + "]"
        return ["#[inline(always)]",
                f"fn {self.helper_name('lpm_key', str(width))}(prefix: u32, {params}) -> {rtype(LpmKey(width))} {{",
                f"{INDENT}{LPM_KEY}::new(prefix, {data})", "}"]

    # `__loadN_<read>(skb, off)`: N bits at off, as stored (network order), 0
    # when not there; `__has_<read>(skb, end)`: the packet has bytes up to end
    # (the helper fails past the packet's end).
    def read_load_helper(self, name: str, size: int) -> list[str]:
        read, r = READS[name], f"u{size * 8}"
        call = read.call.format(off="off as u32", dst="dst", n=size)
        return ["#[inline(always)]", f"fn {self.helper_name(f'load{size * 8}', name)}(skb: {SKB}, off: usize) -> {r} {{",
                *(f"{INDENT}use {u};" for u in read.uses),
                f"{INDENT}let skb = skb as *const core::ffi::c_void;", f"{INDENT}let mut v: {r} = 0;",
                f"{INDENT}let dst = &mut v as *mut {r} as *mut core::ffi::c_void;",
                f"{INDENT}let _ = unsafe {{ {call} }};", f"{INDENT}v", "}"]

    def read_has_helper(self, name: str) -> list[str]:
        read = READS[name]
        call = read.call.format(off="(end - 1) as u32", dst="dst", n=1)
        return ["#[inline(always)]", f"fn {self.helper_name('has', name)}(skb: {SKB}, end: usize) -> bool {{",
                *(f"{INDENT}use {u};" for u in read.uses),
                f"{INDENT}let skb = skb as *const core::ffi::c_void;", f"{INDENT}let mut b: u8 = 0;",
                f"{INDENT}let dst = &mut b as *mut u8 as *mut core::ffi::c_void;",
                f"{INDENT}unsafe {{ {call} == 0 }}", "}"]

    # --- header field writes (base.field_write) ------------------------------------

    def write_helper(self, w: FieldWrite, access: str) -> list[str]:
        """`__set_<h>_<f>`, as the C dialect's: the field stored in network
        order (other bits of its bytes kept), checksums fixed in the program
        (RFC 1624) with direct access, by bpf_l3/l4_csum_replace with helpers."""
        f, (roff, rsize) = w.field, w.region
        fr, rr = f"u{f.size * 8}", f"u{rsize * 8}"
        value = f"(__v as {fr})"
        if f.mask is None:
            merged = f"{value}.to_be()" if f.size > 1 else value
        else:
            keep = hex(~(f.mask << f.shift) & ((1 << f.size * 8) - 1))
            cur = f"{fr}::from_be(__c)" if f.size > 1 else "__c"
            host = f"(({cur} & {keep}) | (({value} & {hex(f.mask)}) << {f.shift}))"
            merged = f"{host}.to_be()" if f.size > 1 else host
        params = [f"__skb: {SKB}" if self.read else "__data_end: usize"]
        if w.pseudo:
            params.append("__l3: Option<(usize, u16)>")
        params += ["__h: usize", f"__v: {rtype(f.type)}"]
        body = self.write_body(w, merged)
        if not self.read and (w.own or w.pseudo):  # the changed words' sums, for every checksum fixed
            words = " + ".join(f"((__old >> {16 * i}) & 0xffff) as u32" for i in range(rsize // 2))
            body += [f"let __from: u32 = {words if rsize > 2 else '__old as u32'};",
                     f"let __to: u32 = {words.replace('__old', '__new') if rsize > 2 else '__new as u32'};"]
        body += self.csum_lines(w, access)
        return ["#[inline(always)]", *fn_head(self.write_name(w.header, f.name, access), params),
                *(INDENT + line for line in body), "}"]

    def line_word(self, name: str, size: int, value: str) -> str:
        return f"let {name}: u{size * 8} = {value};"

    def line_write_field(self, f: tables.HeaderFieldSpec, merged: str) -> list[str]:
        fr = f"u{f.size * 8}"
        if self.read:
            self.store_support = True
            store = f"__store_skb(__skb, __h + {f.offset}, &__w as *const {fr} as *const _, {f.size});"
        else:
            store = f"unsafe {{ *((__h + {f.offset}) as *mut {fr}) = __w }};"
        return [f"let __w: {fr} = {merged};", store]

    def pseudo_csum_fix(self, c: Csum, access: str, rsize: int) -> list[str]:
        return [f"if let Some(__l4) = {self.parser_name(c.header, access)}({self.l3_args()}) {{",
                *(INDENT + line for line in self.csum_fix(c, "__l4", rsize)), "}"]

    # --- loads past a header (`load`) ------------------------------------------------

    def line_load(self, name: str, t: Type, call: str) -> tuple[str, str]:
        return self.line_let(name, Option(t), f"{call})", False), f"let Some({name}) = {name}"

    def load_helper(self, header: str, size: int, access: str) -> list[str]:
        """`__load_<h>_<bits>(packet, h, off)`: the big-endian integer at
        `off` bytes past the header's end, None past the packet's end; `off`
        is bounded (MAX_LOAD_OFFSET) for the verifier."""
        r = f"u{size * 8}"
        spec = tables.HEADERS[header]
        end = str(spec.min_len)
        if spec.length:
            field, scale = spec.length
            end = f"({self.spell_field('__h', spec.fields[field])} as usize) * {scale}"
        params = [f"__skb: {SKB}" if self.read else "__data_end: usize", "__h: usize", "__off: u32"]
        body = [f"if __off > {tables.MAX_LOAD_OFFSET} {{", f"{INDENT}return None;", "}",
                f"let __end: usize = {end};", f"let {'' if self.read else 'mut '}__p: usize = __h + __end + __off as usize;"]
        if self.read:
            read = READS[self.read.name]
            call = read.call.format(off="__p as u32", dst="dst", n=size)
            body = [*(f"use {u};" for u in read.uses), *body, "let skb = __skb as *const core::ffi::c_void;",
                    f"let mut __v: {r} = 0;", f"let dst = &mut __v as *mut {r} as *mut core::ffi::c_void;",
                    f"if unsafe {{ {call} }} != 0 {{", f"{INDENT}return None;", "}"]
        else:
            self.pinned = True
            body += [PIN.format("__p"), f"if __p + {size} > __data_end {{", f"{INDENT}return None;", "}",
                     f"let __v: {r} = unsafe {{ *(__p as *const {r}) }};"]
        value = f"{r}::from_be(__v)" if size > 1 else "__v"
        return ["#[inline(always)]", *fn_head(self.load_name(header, size, access), params, f"Option<{r}>"),
                *(INDENT + line for line in body), f"{INDENT}Some({value})", "}"]

    def csum_fix(self, c: Csum, at: str, rsize: int) -> list[str]:
        if not self.read:
            self.csum_support = True
            return [f"__csum_set({at} + {c.offset}, __from, __to, {'true' if c.zero_none else 'false'});"]
        parts = [("__old as u64", "__new as u64")] if rsize <= 4 else \
            [("__old as u32 as u64", "__new as u32 as u64"), ("(__old >> 32) as u64", "(__new >> 32) as u64")]
        size = min(rsize, 4)
        if not c.l4:
            return [f"__l3_csum_skb(__skb, {at} + {c.offset}, {o}, {n}, {size});" for o, n in parts]
        flags = size | tables.BPF_F_PSEUDO_HDR * c.pseudo | tables.BPF_F_MARK_MANGLED_0 * c.zero_none
        return [f"__l4_csum_skb(__skb, {at} + {c.offset}, {o}, {n}, {hex(flags)});" for o, n in parts]

    def csum_helpers(self) -> list[str]:
        """RFC 1624 eqn. 3 over 16-bit words as stored (direct writes), and
        the skb helpers of helper writes, behind short wrappers."""
        out = []
        if self.csum_support:
            out += ["#[inline(always)]", "fn __csum_fold(s: u32) -> u32 {", f"{INDENT}let s = (s & 0xffff) + (s >> 16);",
                    f"{INDENT}(s & 0xffff) + (s >> 16)", "}", "",
                    "#[inline(always)]", "fn __csum_set(at: usize, from: u32, to: u32, zero_none: bool) {",
                    f"{INDENT}let c: u16 = unsafe {{ *(at as *const u16) }};",
                    f"{INDENT}if zero_none && c == 0 {{", f"{INDENT * 2}return;", f"{INDENT}}}",
                    f"{INDENT}let s: u32 = ((!c) as u32) + (!__csum_fold(from) & 0xffff) + __csum_fold(to);",
                    f"{INDENT}let n: u16 = !(__csum_fold(s) as u16);",
                    f"{INDENT}let n: u16 = if zero_none && n == 0 {{ 0xffff }} else {{ n }};",
                    f"{INDENT}unsafe {{ *(at as *mut u16) = n }};", "}", ""]
        if self.store_support:
            h = "aya_ebpf::helpers::"
            out += ["#[inline(always)]", *fn_head("__store_skb", [f"skb: {SKB}", "off: usize", "src: *const core::ffi::c_void", "n: u32"]),
                    f"{INDENT}use {h}bpf_skb_store_bytes;",
                    f"{INDENT}let _ = unsafe {{ bpf_skb_store_bytes(skb as *mut _, off as u32, src, n, 0) }};", "}", ""]
            for name, helper in (("l3", "bpf_l3_csum_replace"), ("l4", "bpf_l4_csum_replace")):
                out += ["#[inline(always)]", *fn_head(f"__{name}_csum_skb", [f"skb: {SKB}", "off: usize", "from: u64", "to: u64", "flags: u64"]),
                        f"{INDENT}use {h}{helper};",
                        f"{INDENT}let _ = unsafe {{ {helper}(skb as *mut _, off as u32, from, to, flags) }};", "}", ""]
        return out

    def parser(self, name: str, packet: str, steps: tuple[parsers.Step, ...]) -> list[str]:
        is_l3 = name == parsers.L3
        fname = self.l3_locator(packet) if is_l3 else self.parser_name(name, packet)
        ret = "Option<(usize, u16)>" if is_l3 else "Option<usize>"
        params = ["__data_end: usize", "__l3: Option<(usize, u16)>"] if not is_l3 and above_l2(name) else \
            ["__data: usize", "__data_end: usize"]
        if self.read:  # no data_end: reads are checked by the helper
            params = [f"__skb: {SKB}", *(p for p in params if not p.startswith("__data_end"))]
        return ["#[inline(always)]", *fn_head(fname, params, ret), *self.spell_steps(steps), "}"]

    # --- parser steps (parsers.py): the ones brace dialects share are in base.py

    def guard(self, cond: str) -> list[str]:
        return [f"if {cond} {{", f"{INDENT}return None;", "}"]

    def line_fail(self) -> str:
        return "return None;"

    def step_load(self, step: parsers.Load) -> list[str]:
        mut = "mut " if step.mutable else ""
        return [f"let {mut}{step.var}: {rtype(step.field.type)} = {unparen(self.spell_field(step.ptr, step.field))};"]

    def step_offset(self, step: parsers.Offset) -> list[str]:
        return [f"let {'mut ' if step.mutable else ''}{step.var}: usize = {step.base} + {self.spell_size(step.size)};"]

    @staticmethod
    def spell_size(size: int | parsers.Scaled) -> str:
        if not isinstance(size, parsers.Scaled):
            return str(size)
        return f"{size.var} as usize" + ("" if size.scale == 1 else f" * {size.scale}")

    def step_scalar(self, step: parsers.Scalar) -> list[str]:
        return [f"let mut {step.var}: usize = {step.value};"]

    def step_extract(self, step: parsers.Extract) -> list[str]:
        f, t = step.field, rtype(step.field.type)
        value = f"(({step.word} >> {f.shift}) & {hex(f.mask)}) as {t}"
        return [f"let mut {step.var}: {t} = {value};" if step.new else f"{step.var} = {value};"]

    def step_member(self, step: parsers.Member) -> list[str]:
        self.pinned = True
        m, bits = step.mask, sum(1 << v for v in step.values)  # (m >> 6) + 3 >> 2: 0 when m < 64, else 1
        return [f"let mut {m}: u64 = {step.var} as u64;", PIN.format(m),
                f"let {m}b: u64 = ({hex(bits)}u64 >> ({m} & 63)) & 1;", f"{m} = {m}b & !((({m} >> 6) + 3) >> 2);"]

    def step_keep(self, step: parsers.Keep) -> list[str]:
        self.pinned = True
        m, top = step.mask, (1 << step.bits) - 1  # (t + top) >> bits: 0 when t is 0, else 1
        return [f"let mut {m}: u64 = ({step.var} ^ {hex(step.value)}) as u64;", PIN.format(m),
                f"{m} = 0u64.wrapping_sub(({m} + {hex(top)}) >> {step.bits});"]

    def step_blend(self, step: parsers.Blend) -> list[str]:
        return [f"{step.var} ^= ({step.var} ^ {step.other}) & !{step.mask} as {rtype(step.type)};"]

    def step_add_unless(self, step: parsers.AddUnless) -> list[str]:
        return [f"{step.var} += {step.value} & !{step.mask} as usize;"]

    def step_mask(self, step: parsers.Mask) -> list[str]:
        return [f"{step.var} &= {'!' if step.invert else ''}{step.mask} as {rtype(step.type)};"]

    def step_grow(self, step: parsers.Grow) -> list[str]:
        self.pinned = True
        return [f"{step.var} += {self.spell_size(step.size)} + {step.extra};", *self.guard(f"{step.var} > {step.limit}"),
                PIN.format(step.var), f"{step.var} &= {step.limit};"]

    def step_pin(self, step: parsers.Pin) -> list[str]:
        self.pinned = True
        return [PIN.format(step.ptr)]

    def step_ret(self, step: parsers.Ret) -> list[str]:
        return [f"return Some({step.ptr});"]

    def step_take_l3(self, step: parsers.TakeL3) -> list[str]:
        return [f"let Some(({step.ptr}, {step.proto})) = __l3 else {{", f"{INDENT}return None;", "};"]

    def step_ret_l3(self, step: parsers.RetL3) -> list[str]:
        return [f"Some(({step.ptr}, {step.proto}))"]

    def step_ret_by_version(self, step: parsers.RetByVersion) -> list[str]:
        out = []
        for version, ethertype in step.table:
            out += [f"if {step.var} == {version} {{", f"{INDENT}return Some(({step.ptr}, {hex(ethertype)}));", "}"]
        return out + ["None"]

    # --- src/main.rs ----------------------------------------------------------------

    def render_main(self) -> str:
        # The bodies first, then the support code: generating them notes the
        # features and imports the crate's head declares.
        subroutines, functions = self.subroutines(), self.functions()
        body = [*self.declarations(), *self.support_lines()]
        out = [*self.crate_head(), *body, *blocks(subroutines),
               *blocks(self.program_lines(decl, lines) for decl, lines in functions), *self.crate_tail()]
        return "\n".join(out) + "\n"

    def crate_head(self) -> list[str]:
        features = ["#![feature(core_intrinsics)]", "#![allow(internal_features)]"] if self.atomic_adds else []
        if self.pinned:
            features.insert(0, "#![feature(asm_experimental_arch)]")  # inline asm on BPF
        uses = sorted({FORM_USES[form] for form, _ in self.form_support if form in FORM_USES})
        return [
            f"// Generated by tatara-build (aya backend) from a source with sha256 {self.module.source_sha256[:64]}.",
            "// Do not edit: regenerate with `tatara-build emit FILE --backend aya`.",
            "#![no_std]",
            "#![no_main]",
            *features,
            "#![allow(unused_mut, unused_parens, unused_unsafe, unused_variables, dead_code)]",
            *uses,
            "",
            *([*PIN_MACRO, ""] if self.pinned else []),
        ]

    def declarations(self) -> list[str]:
        out = blocks(self.struct_decl_lines(struct) for struct in self.module.structs)
        out += ZEROED_FN + [""] if self.module.structs else []
        out += blocks(self.map_static(decl) for decl in self.module.maps)
        return out + blocks(self.const_lines(const) for const in self.module.consts)

    def support_lines(self) -> list[str]:
        """The support functions the bodies used, each spelled once."""
        out = blocks(self.int_helper(op, t) for op, t in self.int_helper_keys())
        helpers = [self.map_helper(op, self.maps[name]) for op, name in sorted(self.map_helpers)]  # note atomic adds
        out += blocks(self.atomic_add(t) for t in sorted(self.atomic_adds)) + blocks(helpers)
        out += blocks(self.lpm_key_helper(width) for width in sorted(self.lpm_widths))
        out += blocks(self.core_read_helper(name, hops, t) for name, hops, t in self.core_reads.values())
        for form, name in sorted(self.form_support):
            decl = self.maps[name]
            out += [line.format(map=screaming(decl.name), name=snake(decl.name)) for line in FORM_SUPPORT[form]] + [""]
        parsers_ = self.packet_support()  # notes the helper loads and checksum support spelled before it
        return out + self.packet_read_helpers() + self.csum_helpers() + parsers_

    def program_lines(self, decl: ir.ProgramDecl, body: list[str]) -> list[str]:
        program = PROGRAMS[decl.kind]
        return [format_target(program.attr, decl).replace("#[", "#[aya_ebpf::macros::", 1),
                f"pub fn {snake(decl.name)}(ctx: aya_ebpf::programs::{program.ctx}) -> {program.ret} {{", *body, "}"]

    def crate_tail(self) -> list[str]:
        license_text = self.license()
        return [
            "#[cfg(not(test))]",
            "#[panic_handler]",
            "fn panic(_info: &core::panic::PanicInfo) -> ! {",
            f"{INDENT}loop {{}}",
            "}",
            "",
            '#[unsafe(link_section = "license")]',
            "#[unsafe(no_mangle)]",
            f'static LICENSE: [u8; {len(license_text) + 1}] = *b"{license_text}\\0";',
        ]

    def map_static(self, decl: ir.MapDecl) -> list[str]:
        key = lpm_data_rust(mapdata.lpm_data_bytes(decl), decl.key) if mapdata.is_lpm(decl) else \
            rtype(decl.key) if decl.key else "u32"
        ty = MAPS[decl.kind].type.format(
            k=key,
            v=rtype(decl.value) if decl.value else "u64", n=int(decl.max_entries))
        base = ty.split("<")[0]
        line = f"static {screaming(decl.name)}: {ty} = {base}::new();"
        if len(line) > 100:
            line = f"static {screaming(decl.name)}: {ty} =\n{INDENT}{base}::new();"
        # The object's map name is the C spelling, so both backends agree.
        return [f'#[aya_ebpf::macros::btf_map(name = "{snake(decl.name)}")]', line]



def pinned() -> list[dict]:
    text = resources.files(__package__).joinpath("aya_lock.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)["package"]


DIRECT = ("aya-ebpf", "aya-ebpf-bindings", "aya-ebpf-cty", "aya-ebpf-macros")


def cargo_toml(name: str) -> str:
    versions = {p["name"]: p["version"] for p in pinned()}
    deps = "\n".join(f'{d} = "={versions[d]}"' for d in DIRECT if d in versions)
    return f"""# Generated by tatara-build. Direct dependencies are pinned exactly here;
# Cargo.lock pins the whole closure (build-dependencies included) with
# crates.io checksums: build with `cargo build --release --locked`.
[package]
name = "{name}"
version = "0.1.0"
edition = "{EDITION}"
publish = false

[[bin]]
name = "{name}"
path = "src/main.rs"
test = false
bench = false

[dependencies]
{deps}

[profile.dev]
panic = "abort"

[profile.release]
panic = "abort"
opt-level = 3
codegen-units = 1
debug = 2
lto = false
overflow-checks = false
debug-assertions = false
incremental = false
"""


def cargo_lock(name: str) -> str:
    packages = pinned()
    root = {"name": name, "version": "0.1.0", "dependencies": [d for d in DIRECT]}
    out = ["# This file is automatically @generated by Cargo.", "# It is not intended for manual editing.",
           "version = 4", ""]
    for p in sorted(packages + [root], key=lambda p: (p["name"], p["version"])):
        out += ["[[package]]", f'name = "{p["name"]}"', f'version = "{p["version"]}"']
        if "source" in p:
            out += [f'source = "{p["source"]}"', f'checksum = "{p["checksum"]}"']
        if p.get("dependencies"):
            out.append("dependencies = [")
            out += [f' "{d}",' for d in sorted(p["dependencies"])]
            out.append("]")
        out.append("")
    return "\n".join(out)


RUST_TOOLCHAIN = f"""[toolchain]
channel = "{NIGHTLY}"
components = ["rust-src"]
profile = "minimal"
"""

CARGO_CONFIG = """[build]
target = "bpfel-unknown-none"

[unstable]
build-std = ["core"]

[target.bpfel-unknown-none]
rustflags = ["-C", "debuginfo=2", "-C", "link-arg=--btf"]
"""

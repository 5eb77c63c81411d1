"""Everything tatara-build knows about BPF, as data, in one place: program
kinds (context, return type, actions, helpers), map kinds and the
operations each allows, helpers, packet headers with their roles and
test-packet layers: what each kind *means*. How a backend spells it lives in
that backend's dialect (backends/aya.py, backends/libbpf.py), keyed by the
names defined here. Stages look entries up; none branches on a kind name."""

from __future__ import annotations

import re
from .records import dataclass, field

# --- helpers --------------------------------------------------------------


@dataclass(frozen=True)
class Helper:
    name: str  # tatara-lisp name
    returns: str  # IR scalar type
    kernel_id: int  # BPF_FUNC_* number
    params: tuple[str, ...] = ()  # IR types of the arguments
    kernel_fn: str = ""  # the kernel's name (bpf_get_smp_processor_id), for messages and the reference


# The type of a helper that fills an array sized by where it is stored.
STR_READ = "array:u8:N"

HELPERS: dict[str, Helper] = {
    h.name: h
    for h in [
        Helper("get-current-cpu", "u32", 8, kernel_fn="bpf_get_smp_processor_id"),
        Helper("get-current-pid-tgid", "u64", 14, kernel_fn="bpf_get_current_pid_tgid"),
        Helper("get-current-uid-gid", "u64", 15, kernel_fn="bpf_get_current_uid_gid"),
        Helper("get-prandom", "u32", 7, kernel_fn="bpf_get_prandom_u32"),
        Helper("ktime-ns", "u64", 5, kernel_fn="bpf_ktime_get_ns"),
        # CLOCK_BOOTTIME (counts suspend), a cheaper coarse clock, and TAI.
        Helper("ktime-boot-ns", "u64", 125, kernel_fn="bpf_ktime_get_boot_ns"),
        Helper("ktime-coarse-ns", "u64", 160, kernel_fn="bpf_ktime_get_coarse_ns"),
        Helper("ktime-tai-ns", "u64", 208, kernel_fn="bpf_ktime_get_tai_ns"),
        # bpf_get_smp_processor_id under its kernel name (same helper as get-current-cpu).
        Helper("get-smp-processor-id", "u32", 8, kernel_fn="bpf_get_smp_processor_id"),
        Helper("get-numa-node-id", "u32", 42, kernel_fn="bpf_get_numa_node_id"),
        Helper("jiffies64", "u64", 118, kernel_fn="bpf_jiffies64"),
        # The running task's `struct task_struct *`, as a u64 (a kernel address).
        Helper("get-current-task", "u64", 35, kernel_fn="bpf_get_current_task"),
        Helper("get-current-cgroup-id", "u64", 80, kernel_fn="bpf_get_current_cgroup_id"),
        # The task's comm, NUL-padded: a 16-byte array, written straight into
        # where it is stored (an event record or a struct field); spelled
        # `(current-comm)`.
        Helper("current-comm", "array:u8:16", 16, kernel_fn="bpf_get_current_comm"),
        # A NUL-terminated string copied from a u64 address of user (kernel)
        # memory into the `(array u8 N)` struct field it is the value of: N
        # is that field's (STR_READ), at most N - 1 bytes plus the NUL; a
        # bad address leaves the field zeroed.
        Helper("probe-read-user-str", STR_READ, 114, ("u64",), kernel_fn="bpf_probe_read_user_str"),
        Helper("probe-read-kernel-str", STR_READ, 115, ("u64",), kernel_fn="bpf_probe_read_kernel_str"),
    ]
}

# Helpers of bpf_base_func_proto: what networking kinds may call ...
NET_HELPERS = ("get-current-cpu", "get-smp-processor-id", "get-numa-node-id", "get-prandom", "ktime-ns",
               "ktime-boot-ns", "ktime-coarse-ns", "ktime-tai-ns", "jiffies64")
# ... except the coarse clock, which the verifier refuses to tracing kinds
# (kernel selftests verifier/helper_restricted: "forbidden in
# BPF_PROG_TYPE_KPROBE", tracepoint, perf-event; LSM too, seen on 6.1 and 6.12).
BASE_HELPERS = tuple(h for h in NET_HELPERS if h != "ktime-coarse-ns")
# Tracing kinds also see the current task (bpf_tracing_func_proto): its ids,
# comm, task pointer and cgroup; and they read strings at user and kernel
# addresses.
TASK_HELPERS = BASE_HELPERS + ("get-current-pid-tgid", "get-current-uid-gid", "current-comm",
                               "get-current-task", "get-current-cgroup-id", "probe-read-user-str",
                               "probe-read-kernel-str")


@dataclass(frozen=True)
class HelperForm:
    """A helper with a body form of its own (it takes a map, the context or an
    action, which `(call …)` cannot pass): which kinds may use it is
    ProgramKind.forms, its first kernel FORM_SINCE."""

    name: str  # the body form, e.g. "redirect-map"
    kernel_fn: str  # the kernel's helper, e.g. "bpf_redirect_map"
    kernel_id: int  # BPF_FUNC_* number
    returns: str  # IR type of the form's value ("action": the kind's return type)
    usage: str  # how it is written
    summary: str  # one line for the reference


HELPER_FORMS: dict[str, HelperForm] = {
    f.name: f
    for f in [
        HelperForm("redirect", "bpf_redirect", 23, "action", "(redirect IFINDEX [:ingress])",
                   "send the packet out of interface IFINDEX (tc :ingress: into its receive path); "
                   "the value is the action to return"),
        HelperForm("redirect-map", "bpf_redirect_map", 51, "action", "(redirect-map MAP KEY [:FALLBACK])",
                   "redirect through a devmap, devmap-hash, cpumap or xskmap slot; the value is the action "
                   "to return (:xdp-redirect, or FALLBACK, default :xdp-aborted, when the slot is empty)"),
        HelperForm("tail-call", "bpf_tail_call", 12, "unit", "(tail-call CTX MAP INDEX)",
                   "jump to the program in slot INDEX of a prog-array; when the slot is empty it falls "
                   "through and the next form runs"),
        HelperForm("adjust-head", "bpf_xdp_adjust_head", 44, "i64", "(adjust-head CTX DELTA)",
                   "move the packet start by DELTA (i32) bytes (negative: grow); 0 or a negative errno; "
                   "headers bound before it cannot be used after it"),
        HelperForm("adjust-tail", "bpf_xdp_adjust_tail", 65, "i64", "(adjust-tail CTX DELTA)",
                   "move the packet end by DELTA (i32) bytes (negative: trim); 0 or a negative errno; "
                   "headers bound before it cannot be used after it"),
        HelperForm("get-stackid", "bpf_get_stackid", 27, "i64", "(get-stackid CTX MAP [FLAGS])",
                   "record the current stack in a stack-trace map; its id, or a negative errno "
                   "(FLAGS u64: 256 = user stack, 1024 = reuse an id whose hash collides)"),
    ]
}
# bpf_get_stackid flags: BPF_F_SKIP_FIELD_MASK | USER_STACK | FAST_STACK_CMP | REUSE_STACKID
STACKID_FLAGS = 0xFF | 1 << 8 | 1 << 9 | 1 << 10
REDIRECT_INGRESS = 1  # BPF_F_INGRESS: tc redirect into the device's receive path
REDIRECT_INGRESS_KINDS = ("tc",)  # kinds whose bpf_redirect takes it
# Helper forms per kind family (the kernel's func_proto lists).
NET_FORMS = ("tail-call",)
XDP_FORMS = ("redirect", "redirect-map", "tail-call", "adjust-head", "adjust-tail")
TC_FORMS = ("redirect", "tail-call")
TRACE_FORMS = ("tail-call", "get-stackid")

# --- program kinds ----------------------------------------------------------


@dataclass(frozen=True)
class Action:
    name: str  # keyword, e.g. "xdp-drop"
    value: int  # numeric value the kernel sees
    uapi: str | None = None  # the kernel's constant (XDP_DROP); None: a plain number


@dataclass(frozen=True)
class CtxField:
    name: str
    type: str  # IR scalar type
    # `(set-ctx-field! ctx :f X)` may write it: the kernel's
    # <kind>_is_valid_access allows BPF_WRITE at this __sk_buff offset
    # (tc_cls_act_is_valid_access, cg_skb_is_valid_access).
    writable: bool = False


@dataclass(frozen=True)
class PacketRead:
    """How a kind reads packet bytes through a helper instead of direct
    packet pointers: bytes at an offset from where its packet starts (`start`),
    copied out by the kernel; the read fails when the bytes are not there.
    The helper copies from non-linear skbs too, and needs no `data_end`
    (which test-run leaves unset for cgroup-skb on 6.1 and 6.12, and socket
    filters never get). Each dialect spells each read (its READS table)."""

    name: str  # suffix of the support functions that read this way
    start: str  # offsets count from "data" (skb->data: bpf_skb_load_bytes) or "net" (the network header)


# cgroup-skb: skb->data is at the network header (the cgroup hook pushes it there).
LOAD_BYTES = PacketRead("skb", "data")
# socket filters: skb->data is wherever the socket's protocol left it (the
# transport header for TCP/UDP sockets), so read relative to the network header
# (bpf_skb_load_bytes_relative, BPF_HDR_START_NET).
LOAD_BYTES_NET = PacketRead("net", "net")
PACKET_READS = {r.name: r for r in (LOAD_BYTES, LOAD_BYTES_NET)}
# How a kind whose packet writes go through helpers (packet_write
# "helpers": tc, where skb->data is the Ethernet header) reads its packet in
# a program that writes: the helpers invalidate every direct packet pointer.
WRITE_READ = LOAD_BYTES
# UAPI flags of bpf_l4_csum_replace (include/uapi/linux/bpf.h).
BPF_F_PSEUDO_HDR = 0x10
BPF_F_MARK_MANGLED_0 = 0x20


@dataclass(frozen=True)
class ArgAccess:
    """How `(arg ctx N)` reads argument N (a u64) of a kind's context: the
    8-byte slot at `offsets[N]` bytes into the context (read directly, as
    PT_REGS_PARMn, `ctx->args[N]` and BTF-typed contexts are). `offsets`
    None: slot N of a u64 array whose length is the hook's arity in the
    target kernel's BTF (LSM hooks, fentry-style)."""

    name: str
    offsets: tuple[int, ...] | None
    what: str  # how messages name the arguments
    # Attach targets (regular expressions over category/name) the access is
    # valid for; empty: every target of the kind.
    targets: tuple[str, ...] = ()


# x86_64 (the pinned kernels are amd64): struct pt_regs holds r15 r14 r13 r12
# bp bx r11 r10 r9 r8 ax cx dx si di …, 8 bytes each; the C calling
# convention passes arguments 1-6 in di si dx cx r8 r9 (PT_REGS_PARM1..6).
KPROBE_ARGS = ArgAccess("pt-regs", (112, 104, 96, 88, 72, 64), "the probed function's arguments (x86_64 registers)")
# struct trace_event_raw_sys_enter: the 8-byte common header, the syscall
# number (long), then unsigned long args[6].
SYSCALL_ARGS = ArgAccess("syscall", tuple(16 + 8 * n for n in range(6)), "the syscall's arguments (args[0..5])",
                         (r"syscalls/sys_enter_[a-z0-9_]+", r"raw_syscalls/sys_enter"))
BTF_ARGS = ArgAccess("btf", None, "the hook's arguments (its BTF prototype in the target kernel)")


@dataclass(frozen=True)
class ProgramKind:
    name: str
    return_type: str  # IR scalar type of a `(return EXPR)` value
    actions: dict[str, Action]
    helpers: tuple[str, ...]
    # Where direct packet access starts: "l2" (Ethernet), "l3" (IP), or None
    # (no `header` forms allowed for this kind).
    packet: str | None
    needs_attach_target: bool
    attach_help: str  # what :attach :target means for this kind
    # The attach target is part of the object (its ELF section, e.g.
    # kprobe/do_sys_open), so it must be known at build time.
    target_in_object: bool
    test_run: bool  # BPF_PROG_TEST_RUN supports this kind with packet data
    ctx_fields: dict[str, CtxField] = field(default_factory=dict)
    # `{target}` when the program gives none (cgroup-skb: the direction).
    default_target: str | None = None
    # When set, the only valid :attach :target values.
    attach_targets: tuple[str, ...] = ()
    # Packet bytes through a helper (None: direct packet pointers).
    packet_read: PacketRead | None = None
    # Values the verifier accepts at exit on every pinned kernel (None: any).
    return_range: tuple[int, int] | None = None
    # Direct access over an skb: pull the bytes the parsers may read into
    # the linear head first (bpf_skb_pull_data), as hand-written tc does.
    pull_first: bool = False
    args: ArgAccess | None = None  # what `(arg ctx N)` reads; None: the kind has no arguments
    # Reads kernel memory (bpf_probe_read_kernel): `core-read` is allowed.
    kernel_reads: bool = False
    # `(tp-field ctx :f)`: named fields of its tracepoint record, from the
    # target kernel's BTF struct trace_event_raw_<name>.
    tp_fields: bool = False
    # Helper forms (HELPER_FORMS) the kind may use.
    forms: tuple[str, ...] = ()
    # How `(set-field! H :f X)` writes packet bytes: "direct" (stores through
    # the packet pointer, checksums updated incrementally in the program,
    # RFC 1624: XDP), "helpers" (bpf_skb_store_bytes and
    # bpf_l3/l4_csum_replace, which keep skb->csum right too: tc; such a
    # program reads its packet through bpf_skb_load_bytes, WRITE_READ, since
    # those helpers invalidate every packet pointer), None: no packet writes
    # (socket filters and cgroup-skb cannot write packet data).
    packet_write: str | None = None


def _actions(*items: tuple) -> dict[str, Action]:
    return {a[0]: Action(*a) for a in items}


def _ctx_fields(*items: tuple) -> dict[str, CtxField]:
    return {item[0]: CtxField(*item) for item in items}


_SKB_FIELDS = _ctx_fields(("len", "u32"), ("protocol", "u16"), ("mark", "u32"), ("ifindex", "u32"))
# tc may write mark, priority, tc_classid, tc_index and queue_mapping
# (besides cb[] and tstamp); cgroup-skb mark and priority (its reads of
# tc_classid are refused); socket filters only cb[].
_TC_FIELDS = _ctx_fields(("len", "u32"), ("protocol", "u16"), ("mark", "u32", True), ("ifindex", "u32"),
                         ("priority", "u32", True), ("tc-classid", "u32", True), ("tc-index", "u32", True),
                         ("queue-mapping", "u32", True))
_CGROUP_SKB_FIELDS = _ctx_fields(("len", "u32"), ("protocol", "u16"), ("mark", "u32", True), ("ifindex", "u32"),
                                 ("priority", "u32", True))

PROGRAM_KINDS: dict[str, ProgramKind] = {
    k.name: k
    for k in [
        ProgramKind(
            "xdp", "u32",
            _actions(
                ("xdp-aborted", 0, "XDP_ABORTED"),
                ("xdp-drop", 1, "XDP_DROP"),
                ("xdp-pass", 2, "XDP_PASS"),
                ("xdp-tx", 3, "XDP_TX"),
                ("xdp-redirect", 4, "XDP_REDIRECT"),
            ),
            NET_HELPERS, "l2", True, "network interface to attach to", False, True,
            _ctx_fields(("len", "u32"), ("ingress-ifindex", "u32")), forms=XDP_FORMS, packet_write="direct",
        ),
        ProgramKind(
            "tc", "i32",
            _actions(
                ("tc-act-unspec", -1, "TC_ACT_UNSPEC"),
                ("tc-act-ok", 0, "TC_ACT_OK"),
                ("tc-act-reclassify", 1, "TC_ACT_RECLASSIFY"),
                ("tc-act-shot", 2, "TC_ACT_SHOT"),
                ("tc-act-pipe", 3, "TC_ACT_PIPE"),
                ("tc-act-redirect", 7, "TC_ACT_REDIRECT"),
            ),
            NET_HELPERS, "l2", True, "network interface to attach to (:direction ingress|egress)", False, True,
            _TC_FIELDS, pull_first=True, forms=TC_FORMS, packet_write="helpers",
        ),
        ProgramKind(
            "socket-filter", "i64",
            _actions(("drop", 0), ("keep", -1)),
            NET_HELPERS, "l3", False, "unused", False, True,
            {name: _SKB_FIELDS[name] for name in ("len", "protocol")}, packet_read=LOAD_BYTES_NET,
            forms=NET_FORMS,
        ),
        ProgramKind(
            "kprobe", "u32",
            _actions(("ok", 0), ("err", 1)),
            TASK_HELPERS, None, True, "kernel function to probe", True, False,
            args=KPROBE_ARGS, kernel_reads=True, forms=TRACE_FORMS,
        ),
        ProgramKind(
            "tracepoint", "u32",
            _actions(("ok", 0), ("err", 1)),
            TASK_HELPERS, None, True, "tracepoint as category/name", True, False,
            args=SYSCALL_ARGS, kernel_reads=True, tp_fields=True, forms=TRACE_FORMS,
        ),
        ProgramKind(
            "cgroup-skb", "i32",
            _actions(("deny", 0), ("allow", 1)),
            NET_HELPERS, "l3", False, "direction: ingress or egress", True, True,
            _CGROUP_SKB_FIELDS, attach_targets=("ingress", "egress"), default_target="ingress", packet_read=LOAD_BYTES,
            return_range=(0, 1), forms=NET_FORMS,
        ),
        ProgramKind(
            "lsm", "i32",
            _actions(("allow", 0), ("deny", -1)),
            TASK_HELPERS, None, True, "LSM hook name, e.g. file_open", True, False,
            return_range=(-4095, 0),  # 0 or -errno (enforced by the verifier from 6.13 on)
            args=BTF_ARGS, kernel_reads=True,
            # no tail calls: an LSM program is tied to its hook's BTF id
            forms=("get-stackid",),
        ),
        ProgramKind(
            "perf-event", "u32",
            _actions(("ok", 0), ("err", 1)),
            TASK_HELPERS, None, False, "perf event the loader opens (PERF_EVENTS), e.g. cpu-clock", False, False,
            forms=TRACE_FORMS,
            attach_targets=("cpu-clock", "task-clock", "page-faults", "context-switches", "cpu-migrations",
                            "cpu-cycles", "instructions", "cache-references", "cache-misses", "branch-instructions",
                            "branch-misses", "bus-cycles", "ref-cycles"),
            kernel_reads=True,
        ),
    ]
}

# perf-event targets: what the loader opens (perf_event_open type, config),
# named as perf(1) names them; the manifest records the name.
PERF_EVENTS: dict[str, tuple[str, int]] = {
    "cpu-cycles": ("PERF_TYPE_HARDWARE", 0), "instructions": ("PERF_TYPE_HARDWARE", 1),
    "cache-references": ("PERF_TYPE_HARDWARE", 2), "cache-misses": ("PERF_TYPE_HARDWARE", 3),
    "branch-instructions": ("PERF_TYPE_HARDWARE", 4), "branch-misses": ("PERF_TYPE_HARDWARE", 5),
    "bus-cycles": ("PERF_TYPE_HARDWARE", 6), "ref-cycles": ("PERF_TYPE_HARDWARE", 9),
    "cpu-clock": ("PERF_TYPE_SOFTWARE", 0), "task-clock": ("PERF_TYPE_SOFTWARE", 1),
    "page-faults": ("PERF_TYPE_SOFTWARE", 2), "context-switches": ("PERF_TYPE_SOFTWARE", 3),
    "cpu-migrations": ("PERF_TYPE_SOFTWARE", 4),
}
assert set(PERF_EVENTS) == set(PROGRAM_KINDS["perf-event"].attach_targets)

# What an attach target must look like per kind (before the VM checks that
# the booted kernel has it): kernel symbols, category/name tracepoints, hooks.
ATTACH_TARGET_SYNTAX: dict[str, tuple[str, str]] = {
    "kprobe": (r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*", "a kernel function name, e.g. tcp_v4_connect"),
    "tracepoint": (r"[A-Za-z0-9_]+/[A-Za-z0-9_]+", "category/name, e.g. syscalls/sys_enter_openat"),
    "lsm": (r"[a-z_][a-z0-9_]*", "an LSM hook name, e.g. file_open"),
}
# `defbpf-test … :trigger (…)`: the kinds the VM's tool attaches and fires
# (tatara-guest attach: a kprobe or tracepoint perf event, an LSM hook),
# and the paths `(open PATH)` takes: argument words in the guest, so no
# spaces or shell characters.
TRIGGER_KINDS = ("kprobe", "tracepoint", "lsm")
TRIGGER_PATH = re.compile(r"/[A-Za-z0-9_.+/-]{0,199}")

# --- map kinds ----------------------------------------------------------------

# Map operations (IR forms) by name.
OPS_HASH = frozenset({"map-get", "map-lookup", "map-set", "map-delete", "map-add"})
OPS_ARRAY = frozenset({"map-get", "map-lookup", "map-set", "map-add"})


@dataclass(frozen=True)
class SizedInBytes:
    """:max-entries of a map kind that is a size in bytes, not a count of
    entries (ring buffers: the kernel wants a power-of-two number of pages)."""

    minimum: int
    power_of_two: bool = True

    def problem(self, max_entries: int) -> str | None:
        if max_entries < self.minimum or (self.power_of_two and max_entries & (max_entries - 1)):
            return f"a power of two of at least {self.minimum}" if self.power_of_two else f"at least {self.minimum}"
        return None


@dataclass(frozen=True)
class MapKind:
    name: str
    uapi: str  # BPF_MAP_TYPE_*
    ops: frozenset[str]
    key_required: str | None  # fixed key type, e.g. "u32" for arrays; None = any
    has_value: bool = True  # ring-buf etc. declare no key/value
    kernel_id: int = 0
    # event-output: "reserve" writes the record in place in the map's own
    # memory (ring buffers: reserve, fill, submit; a full buffer drops the
    # record), "copy" builds it on the stack and the helper copies it
    # (perf-event arrays); None: no events.
    events: str | None = None
    # The value type the kernel fixes (None: the declaration's :value); the
    # declaration may leave :key/:value out and gets these.
    value_required: str | None = None
    # Tests may write and read entries (:maps-before, :expect-maps); not
    # where values are file descriptors (xskmap; prog-array: `:programs`).
    test_entries: bool = True
    summary: str = ""  # one line for the reference
    bytes: SizedInBytes | None = None  # None: :max-entries counts entries


MAP_KINDS: dict[str, MapKind] = {
    m.name: m
    for m in [
        MapKind("hash", "BPF_MAP_TYPE_HASH", OPS_HASH, None, kernel_id=1),
        MapKind("lru-hash", "BPF_MAP_TYPE_LRU_HASH", OPS_HASH, None, kernel_id=9),
        MapKind("per-cpu-hash", "BPF_MAP_TYPE_PERCPU_HASH", OPS_HASH, None, kernel_id=5),
        MapKind("array", "BPF_MAP_TYPE_ARRAY", OPS_ARRAY, "u32", kernel_id=2),
        MapKind("per-cpu-array", "BPF_MAP_TYPE_PERCPU_ARRAY", OPS_ARRAY, "u32", kernel_id=6),
        MapKind("lpm-trie", "BPF_MAP_TYPE_LPM_TRIE", frozenset({"map-get", "map-lookup", "map-set", "map-delete"}), None, kernel_id=11),
        MapKind("ring-buf", "BPF_MAP_TYPE_RINGBUF", frozenset({"event-output"}), None, has_value=False, kernel_id=27,
                events="reserve", bytes=SizedInBytes(4096)),
        MapKind("perf-event-array", "BPF_MAP_TYPE_PERF_EVENT_ARRAY", frozenset({"event-output"}), None, has_value=False,
                kernel_id=4, events="copy"),
        MapKind("stack-trace", "BPF_MAP_TYPE_STACK_TRACE", frozenset({"get-stackid"}), None, has_value=False, kernel_id=7,
                summary="stacks recorded by get-stackid (127 frames each), read from user space"),
        # Redirect targets (redirect-map). devmap and cpumap values are the
        # kernel's struct bpf_devmap_val / bpf_cpumap_val (8 bytes, as aya
        # declares them): the ifindex (cpumap: queue size) in the low 32 bits,
        # an XDP program fd in the high 32 (0: none).
        MapKind("devmap", "BPF_MAP_TYPE_DEVMAP", frozenset({"redirect-map"}), "u32", kernel_id=14,
                value_required="u64", summary="slot -> interface (ifindex in the low 32 bits of the value)"),
        MapKind("devmap-hash", "BPF_MAP_TYPE_DEVMAP_HASH", frozenset({"redirect-map"}), "u32", kernel_id=25,
                value_required="u64", summary="u32 key -> interface (ifindex in the low 32 bits of the value)"),
        MapKind("cpumap", "BPF_MAP_TYPE_CPUMAP", frozenset({"redirect-map"}), "u32", kernel_id=16,
                value_required="u64", summary="CPU -> queue (queue size in the low 32 bits of the value)"),
        MapKind("xskmap", "BPF_MAP_TYPE_XSKMAP", frozenset({"redirect-map"}), "u32", kernel_id=17,
                value_required="u32", test_entries=False, summary="slot -> AF_XDP socket (set by its loader)"),
        MapKind("prog-array", "BPF_MAP_TYPE_PROG_ARRAY", frozenset({"tail-call"}), "u32", kernel_id=3,
                value_required="u32", test_entries=False,
                summary="slot -> program for tail-call (slots: the map's :programs, filled by the loader)"),
    ]
}

# Licenses the kernel treats as GPL-compatible (include/linux/license.h).
GPL_COMPATIBLE = ("GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL")

# --- integer types --------------------------------------------------------


@dataclass(frozen=True)
class IntInfo:
    bits: int
    signed: bool

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


INT_TYPES: dict[str, IntInfo] = {
    "u8": IntInfo(8, False),
    "u16": IntInfo(16, False),
    "u32": IntInfo(32, False),
    "u64": IntInfo(64, False),
    "i8": IntInfo(8, True),
    "i16": IntInfo(16, True),
    "i32": IntInfo(32, True),
    "i64": IntInfo(64, True),
}

SCALAR_TYPES = (*INT_TYPES, "bool")

# --- printk ---------------------------------------------------------------
# bpf_trace_printk: a literal format, at most 3 arguments, each conversion
# taking the argument types listed (the kernel reads a 32-bit value for the
# conversions without `l`, 64 bits with `l`/`ll`). `%%` prints a percent
# sign (kernels before 5.13 refuse a format holding it: the helper returns
# an error and prints nothing).
PRINTK_MAX_ARGS = 3
PRINTK_MAX_FORMAT = 128  # characters; the format is a string in .rodata
PRINTK_CONVERSIONS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("d", "i"), ("i8", "i16", "i32")),
    **dict.fromkeys(("u", "x"), ("u8", "u16", "u32", "bool")),
    **dict.fromkeys(("ld", "li", "lld", "lli"), ("i64",)),
    **dict.fromkeys(("lu", "lx", "llu", "llx"), ("u64",)),
}

UNSIGNED_BY_BYTES = {info.bits // 8: name for name, info in INT_TYPES.items() if not info.signed}

# --- packet headers (what `header` parses and `field` reads) ---------------

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_ARP = 0x0806
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
MAX_VLAN_TAGS = 2  # the L3 parse skips up to this many 802.1Q/802.1ad tags
# `(load H OFFSET T)`: the largest OFFSET past a header's end (the verifier
# needs a bound on a variable packet offset; a larger run-time offset is
# "not in the packet"). Covers a 1500-byte MTU's payload with room to spare.
MAX_LOAD_OFFSET = 4095
# IPv6 extension headers `header` skips on the way to L4 (ExtensionSpec):
# at most this many -- every kind of IPV6_EXTENSIONS in RFC 8200's order,
# destination options twice, is 5 -- ending at most this many bytes after
# the IPv6 header's start (a power of two less one: the walk masks its
# offset with it, so the verifier keeps one range for every path through
# the walk instead of one state per header count).
MAX_IPV6_EXTENSIONS = 5
MAX_IPV6_EXTENSION_END = 2047


@dataclass(frozen=True)
class HeaderFieldSpec:
    """`size` bytes at `offset` from the header start, big-endian on the
    wire, converted to host order, then `(v >> shift) & mask` when mask is
    set. `type` is the IR type the user sees (bool: mask != 0)."""

    name: str
    offset: int
    size: int  # 1, 2, 4 or 8
    type: str
    mask: int | None = None
    shift: int = 0
    # `(set-field! H :f X)` may write it. Not writable: what parsing or the
    # packet's framing depends on (versions, lengths, protocols, fragment
    # fields) and the checksums (kept right by every write).
    writable: bool = False
    # Part of the pseudo-header that L4 checksums cover (IP addresses).
    pseudo: bool = False


@dataclass(frozen=True)
class ExtensionSpec:
    """An IPv6 extension header (RFC 8200 4.) that L4 parsers skip: at
    least 8 bytes, the next header's number in its first byte; the fields
    are bits of its first 32-bit word."""

    name: str
    number: int  # the next-header value that announces it
    fields: dict[str, HeaderFieldSpec]
    next_protocol: str
    # (field, scale): (field + 1) * scale bytes long; None: exactly 8 bytes.
    length: tuple[str, int] | None = None
    fragment: str | None = None  # nonzero: a non-first fragment, no L4 header in it


@dataclass(frozen=True)
class HeaderSpec:
    name: str
    min_len: int  # bytes that must be in the packet before any field is read
    # How the header is reached: the outer header and the selector value
    # (ethertype for L3, IP protocol / next header for L4).
    via: tuple[tuple[str, int], ...]
    fields: dict[str, HeaderFieldSpec]
    # Where it sits: "l2" (the link header packet access starts with), "tag"
    # (stacked on L2, carries the next ethertype: VLAN), "l3" or "l4".
    role: str
    next_protocol: str | None = None  # field selecting what follows (ethertype, IP protocol)
    # (field, scale): the header is field * scale bytes long, at least
    # min_len (IPv4's ihl * 4); None: exactly min_len.
    length: tuple[str, int] | None = None
    fragment: str | None = None  # nonzero: a non-first fragment, no L4 header in it
    # (field, value): the L3 header is told apart by this field's value where
    # no L2 header says (cgroup-skb starts at L3: the IP version nibble).
    version: tuple[str, int] | None = None
    # The field holding this header's checksum; a write to any other field
    # updates it. For L4 headers with `pseudo_header` it also covers the IP
    # addresses (writes to `pseudo` fields of the IP header update it).
    checksum: str | None = None
    pseudo_header: bool = False
    # A checksum of 0 means "none" (UDP over IPv4): left 0; a computed 0 is
    # sent as 0xFFFF.
    zero_checksum: bool = False
    extensions: tuple[ExtensionSpec, ...] = ()  # skipped between this L3 header and L4


ROLES = ("l2", "tag", "l3", "l4")


def _fields(*specs: HeaderFieldSpec) -> dict[str, HeaderFieldSpec]:
    return {s.name: s for s in specs}


F = HeaderFieldSpec
_TCP_FLAGS = ("fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr")

# Fields are bits of the header's first 32-bit word (one read per header).
_EXT_NEXT = F("next-header", 0, 4, "u8", 0xFF, 24)
_EXT_LENGTH = _fields(_EXT_NEXT, F("len", 0, 4, "u8", 0xFF, 16))
IPV6_EXTENSIONS = (
    ExtensionSpec("ipv6-hop-by-hop", 0, _EXT_LENGTH, "next-header", ("len", 8)),
    ExtensionSpec("ipv6-routing", 43, _EXT_LENGTH, "next-header", ("len", 8)),
    ExtensionSpec("ipv6-dest-opts", 60, _EXT_LENGTH, "next-header", ("len", 8)),
    # Its second byte is reserved (ignored on reception): always 8 bytes.
    ExtensionSpec("ipv6-fragment", 44, _fields(_EXT_NEXT, F("frag-offset", 0, 4, "u16", 0x1FFF, 3)),
                  "next-header", fragment="frag-offset"),
)

W = True  # writable, for the table below
HEADERS: dict[str, HeaderSpec] = {
    h.name: h
    for h in [
        HeaderSpec("eth", 14, (), _fields(F("type", 12, 2, "u16")), "l2", next_protocol="type"),
        HeaderSpec("vlan", 4, (("eth", ETH_P_8021Q), ("eth", ETH_P_8021AD)), _fields(
            F("id", 0, 2, "u16", 0x0FFF, writable=W), F("pcp", 0, 2, "u8", 0x7, 13, writable=W), F("type", 2, 2, "u16"),
        ), "tag", next_protocol="type"),
        # IPv4: ihl >= 5 checked, header length ihl*4 bounds-checked before L4.
        HeaderSpec("ipv4", 20, (("eth", ETH_P_IP),), _fields(
            F("version", 0, 1, "u8", 0xF, 4), F("ihl", 0, 1, "u8", 0xF), F("tos", 1, 1, "u8", writable=W),
            F("total-len", 2, 2, "u16"), F("id", 4, 2, "u16", writable=W), F("frag-offset", 6, 2, "u16", 0x1FFF),
            F("df", 6, 2, "bool", 0x1, 14, writable=W), F("mf", 6, 2, "bool", 0x1, 13), F("ttl", 8, 1, "u8", writable=W),
            F("protocol", 9, 1, "u8"), F("checksum", 10, 2, "u16"),
            F("src", 12, 4, "u32", writable=W, pseudo=True), F("dst", 16, 4, "u32", writable=W, pseudo=True),
        ), "l3", next_protocol="protocol", length=("ihl", 4), fragment="frag-offset", version=("version", 4),
            checksum="checksum"),
        HeaderSpec("ipv6", 40, (("eth", ETH_P_IPV6),), _fields(
            F("version", 0, 1, "u8", 0xF, 4), F("payload-len", 4, 2, "u16"), F("next-header", 6, 1, "u8"),
            F("hop-limit", 7, 1, "u8", writable=W), F("src-hi", 8, 8, "u64", writable=W, pseudo=True),
            F("src-lo", 16, 8, "u64", writable=W, pseudo=True), F("dst-hi", 24, 8, "u64", writable=W, pseudo=True),
            F("dst-lo", 32, 8, "u64", writable=W, pseudo=True),
        ), "l3", next_protocol="next-header", version=("version", 6), extensions=IPV6_EXTENSIONS),
        # L4 over IPv4 only when the packet is not a non-first fragment.
        HeaderSpec("tcp", 20, (("ipv4", IPPROTO_TCP), ("ipv6", IPPROTO_TCP)), _fields(
            F("src-port", 0, 2, "u16", writable=W), F("dst-port", 2, 2, "u16", writable=W),
            F("seq", 4, 4, "u32", writable=W), F("ack-seq", 8, 4, "u32", writable=W),
            F("data-offset", 12, 1, "u8", 0xF, 4), F("flags", 13, 1, "u8", writable=W),
            *(F(flag, 13, 1, "bool", 0x1, bit, writable=W) for bit, flag in enumerate(_TCP_FLAGS)),
            F("window", 14, 2, "u16", writable=W), F("checksum", 16, 2, "u16"), F("urg-ptr", 18, 2, "u16", writable=W),
        ), "l4", length=("data-offset", 4), checksum="checksum", pseudo_header=True),
        HeaderSpec("udp", 8, (("ipv4", IPPROTO_UDP), ("ipv6", IPPROTO_UDP)), _fields(
            F("src-port", 0, 2, "u16", writable=W), F("dst-port", 2, 2, "u16", writable=W), F("len", 4, 2, "u16"),
            F("checksum", 6, 2, "u16"),
        ), "l4", checksum="checksum", pseudo_header=True, zero_checksum=True),
        HeaderSpec("icmp", 4, (("ipv4", IPPROTO_ICMP),), _fields(
            F("type", 0, 1, "u8", writable=W), F("code", 1, 1, "u8", writable=W), F("checksum", 2, 2, "u16"),
        ), "l4", checksum="checksum"),
        HeaderSpec("icmpv6", 4, (("ipv6", IPPROTO_ICMPV6),), _fields(
            F("type", 0, 1, "u8", writable=W), F("code", 1, 1, "u8", writable=W), F("checksum", 2, 2, "u16"),
        ), "l4", checksum="checksum", pseudo_header=True),
    ]
}


def field_bits(spec: HeaderFieldSpec) -> int:
    """How many bits a write to this field keeps: the mask's width, else
    the field's bytes (a bool is one bit)."""
    return spec.mask.bit_length() if spec.mask is not None else spec.size * 8


def pseudo_checked(l3: str) -> list[str]:
    """The L4 headers over `l3` whose checksum covers its addresses."""
    return [h.name for h in HEADERS.values() if h.pseudo_header and any(o == l3 for o, _ in h.via)]


def headers_with(*roles: str) -> list[str]:
    """Header names of these roles, in table order."""
    return [h.name for h in HEADERS.values() if h.role in roles]


# Headers before L3: not reachable where packet access starts at "l3".
L2_HEADERS = tuple(headers_with("l2", "tag"))

# --- test packet layers (what `defbpf-test` may build) ---------------------


@dataclass(frozen=True)
class LayerField:
    name: str
    kind: str  # "int", "mac", "ipv4", "ipv6", "hex", "flags"
    default: object = None


@dataclass(frozen=True)
class PacketLayer:
    name: str
    fields: dict[str, LayerField]
    # Other spellings of a field: the header field names programs read
    # (`(field t :dst-port)`) also work in test packets (`(tcp :dst-port 80)`).
    aliases: dict[str, str] = field(default_factory=dict)


def _layer(name: str, *fs: LayerField, aliases: dict[str, str] | None = None) -> PacketLayer:
    return PacketLayer(name, {f.name: f for f in fs}, aliases or {})


_PORT_ALIASES = {"src-port": "sport", "dst-port": "dport"}


L = LayerField
PACKET_LAYERS: dict[str, PacketLayer] = {
    p.name: p
    for p in [
        _layer("eth", L("src", "mac", "02:00:00:00:00:01"), L("dst", "mac", "02:00:00:00:00:02"), L("type", "int")),
        _layer("vlan", L("id", "int", 1), L("pcp", "int", 0), L("type", "int"), L("tpid", "int", ETH_P_8021Q)),
        _layer("ipv4", L("src", "ipv4", "10.0.0.1"), L("dst", "ipv4", "10.0.0.2"), L("ttl", "int", 64),
               L("tos", "int", 0), L("id", "int", 1), L("protocol", "int"), L("frag-offset", "int", 0),
               L("flags", "flags", ()), L("options", "hex", ""), L("ihl", "int"), L("total-len", "int")),
        _layer("ipv6", L("src", "ipv6", "fd00::1"), L("dst", "ipv6", "fd00::2"), L("hop-limit", "int", 64),
               L("next-header", "int"), L("payload-len", "int")),
        # IPv6 extension headers (tables.IPV6_EXTENSIONS): options padded to
        # a multiple of 8 bytes with Pad1/PadN; routing data as given.
        _layer("ipv6-hop-by-hop", L("next-header", "int"), L("options", "hex", "")),
        _layer("ipv6-dest-opts", L("next-header", "int"), L("options", "hex", "")),
        _layer("ipv6-routing", L("next-header", "int"), L("type", "int", 0), L("segments-left", "int", 0),
               L("data", "hex", "00000000")),
        _layer("ipv6-fragment", L("next-header", "int"), L("frag-offset", "int", 0), L("flags", "flags", ()),
               L("id", "int", 0)),
        _layer("tcp", L("sport", "int", 12345), L("dport", "int", 80), L("seq", "int", 0), L("ack-seq", "int", 0),
               L("flags", "flags", ()), L("window", "int", 65535), L("data-offset", "int"), aliases=_PORT_ALIASES),
        _layer("udp", L("sport", "int", 12345), L("dport", "int", 53), L("len", "int"), aliases=_PORT_ALIASES),
        _layer("icmp", L("type", "int", 8), L("code", "int", 0)),
        _layer("icmpv6", L("type", "int", 128), L("code", "int", 0)),
        _layer("arp", L("op", "int", 1), L("sender-ip", "ipv4", "10.0.0.1"), L("target-ip", "ipv4", "10.0.0.2")),
        _layer("raw", L("hex", "hex", "")),
    ]
}

# Width in bits of "int" layer fields (others: 32); the checker range-checks.
LAYER_FIELD_BITS = {
    ("eth", "type"): 16, ("vlan", "id"): 12, ("vlan", "pcp"): 3, ("vlan", "type"): 16, ("vlan", "tpid"): 16,
    ("ipv4", "ttl"): 8, ("ipv4", "tos"): 8, ("ipv4", "id"): 16, ("ipv4", "protocol"): 8,
    ("ipv4", "frag-offset"): 13, ("ipv4", "ihl"): 4, ("ipv4", "total-len"): 16,
    ("ipv6", "hop-limit"): 8, ("ipv6", "next-header"): 8, ("ipv6", "payload-len"): 16,
    ("ipv6-hop-by-hop", "next-header"): 8, ("ipv6-dest-opts", "next-header"): 8, ("ipv6-routing", "next-header"): 8,
    ("ipv6-routing", "type"): 8, ("ipv6-routing", "segments-left"): 8, ("ipv6-fragment", "next-header"): 8,
    ("ipv6-fragment", "frag-offset"): 13,
    ("tcp", "sport"): 16, ("tcp", "dport"): 16, ("tcp", "window"): 16, ("tcp", "data-offset"): 4,
    ("udp", "sport"): 16, ("udp", "dport"): 16, ("udp", "len"): 16,
    ("icmp", "type"): 8, ("icmp", "code"): 8, ("icmpv6", "type"): 8, ("icmpv6", "code"): 8,
    ("arp", "op"): 16,
}

TCP_FLAG_BITS = {flag: 1 << bit for bit, flag in enumerate(_TCP_FLAGS)}
IPV4_FLAG_BITS = {"df": 0x4000, "mf": 0x2000}
LAYER_FLAG_BITS = {"tcp": TCP_FLAG_BITS, "ipv4": IPV4_FLAG_BITS, "ipv6-fragment": {"mf": 0x1}}

# --- kernel lines and the first kernel of each feature ----------------------

# The kernel lines tatara-build pins and boots (tatara_build/vm/kernel_pins.json
# holds one Debian build of each). `:kernel` and `:kernels` name these; a
# longer version ("6.12.5") names its line.
KERNEL_LINES = ("5.10", "6.1", "6.12", "7.2")
# The kernel `test` boots, and whose types `check` uses, when a program promises none.
DEFAULT_KERNEL_LINE = "6.1"


@dataclass(frozen=True)
class Since:
    """The first mainline kernel with a feature, and how messages name it."""

    version: str
    what: str


# Every program kind, map kind and helper has an entry (a test checks), from
# the kernel's own history (include/uapi/linux/bpf.h, Documentation/bpf).
PROGRAM_KIND_SINCE: dict[str, Since] = {
    "socket-filter": Since("3.19", "socket-filter programs"),
    "kprobe": Since("4.1", "kprobe programs"),
    "tc": Since("4.1", "tc (cls_bpf) programs"),
    "tracepoint": Since("4.7", "tracepoint programs"),
    "xdp": Since("4.8", "XDP programs"),
    "perf-event": Since("4.9", "perf-event programs"),
    "cgroup-skb": Since("4.10", "cgroup-skb programs"),
    "lsm": Since("5.7", "BPF LSM programs"),
}
MAP_KIND_SINCE: dict[str, Since] = {
    "hash": Since("3.19", "hash maps"),
    "array": Since("3.19", "array maps"),
    "perf-event-array": Since("4.3", "perf-event arrays"),
    "per-cpu-hash": Since("4.6", "per-CPU hash maps"),
    "per-cpu-array": Since("4.6", "per-CPU array maps"),
    "stack-trace": Since("4.6", "stack-trace maps"),
    "lru-hash": Since("4.10", "LRU hash maps"),
    "lpm-trie": Since("4.11", "LPM trie maps"),
    "ring-buf": Since("5.8", "ring buffers (BPF_MAP_TYPE_RINGBUF)"),
    "prog-array": Since("4.2", "program arrays (BPF_MAP_TYPE_PROG_ARRAY)"),
    "devmap": Since("4.14", "device maps (BPF_MAP_TYPE_DEVMAP)"),
    "cpumap": Since("4.15", "CPU maps (BPF_MAP_TYPE_CPUMAP)"),
    "xskmap": Since("4.18", "AF_XDP socket maps (BPF_MAP_TYPE_XSKMAP)"),
    "devmap-hash": Since("5.4", "hashed device maps (BPF_MAP_TYPE_DEVMAP_HASH)"),
}
HELPER_SINCE: dict[str, Since] = {
    "get-prandom": Since("4.1", "helper `get-prandom` (bpf_get_prandom_u32)"),
    "get-current-cpu": Since("4.1", "helper `get-current-cpu` (bpf_get_smp_processor_id)"),
    "ktime-ns": Since("4.1", "helper `ktime-ns` (bpf_ktime_get_ns)"),
    "get-current-pid-tgid": Since("4.2", "helper `get-current-pid-tgid` (bpf_get_current_pid_tgid)"),
    "get-current-uid-gid": Since("4.2", "helper `get-current-uid-gid` (bpf_get_current_uid_gid)"),
    "current-comm": Since("4.2", "`(current-comm)` (bpf_get_current_comm)"),
    "ktime-boot-ns": Since("5.8", "helper `ktime-boot-ns` (bpf_ktime_get_boot_ns)"),
    "ktime-coarse-ns": Since("5.11", "helper `ktime-coarse-ns` (bpf_ktime_get_coarse_ns)"),
    "ktime-tai-ns": Since("6.1", "helper `ktime-tai-ns` (bpf_ktime_get_tai_ns)"),
    "get-smp-processor-id": Since("4.1", "helper `get-smp-processor-id` (bpf_get_smp_processor_id)"),
    "get-current-task": Since("4.8", "helper `get-current-task` (bpf_get_current_task)"),
    "get-numa-node-id": Since("4.10", "helper `get-numa-node-id` (bpf_get_numa_node_id)"),
    "get-current-cgroup-id": Since("4.18", "helper `get-current-cgroup-id` (bpf_get_current_cgroup_id)"),
    "jiffies64": Since("5.5", "helper `jiffies64` (bpf_jiffies64)"),
    "probe-read-user-str": Since("5.5", "`(probe-read-user-str PTR)` (bpf_probe_read_user_str)"),
    "probe-read-kernel-str": Since("5.5", "`(probe-read-kernel-str PTR)` (bpf_probe_read_kernel_str)"),
}
# Body forms whose code needs a newer verifier, by the IR's `form` name.
FORM_SINCE: dict[str, Since] = {
    "loop": Since("5.3", "bounded loops"),
    "core-read": Since("5.5", "core-read (bpf_probe_read_kernel with BTF CO-RE)"),
    "tail-call": Since("4.2", "tail calls (bpf_tail_call)"),
    "redirect": Since("4.4", "`redirect` (bpf_redirect; XDP from 4.14)"),
    "get-stackid": Since("4.6", "`get-stackid` (bpf_get_stackid)"),
    "adjust-head": Since("4.10", "`adjust-head` (bpf_xdp_adjust_head)"),
    "redirect-map": Since("4.14", "`redirect-map` (bpf_redirect_map; an empty slot's fallback action from 5.6)"),
    "adjust-tail": Since("4.18", "`adjust-tail` (bpf_xdp_adjust_tail)"),
}


def version_tuple(version: str) -> tuple[int, ...]:
    """"6.12.5" -> (6, 12, 5); compares kernel versions and lines."""
    return tuple(int(part) for part in version.split("."))


# BPF limits the checker enforces.
STACK_LIMIT = 512
# A ring-buf record is its value plus this header (BPF_RINGBUF_HDR_SZ),
# rounded up to 8 bytes; it must fit in the buffer (kernel/bpf/ringbuf.c).
RINGBUF_HEADER = 8
MAX_LOOP_ITERATIONS = 1 << 16
# A .tlisp source larger than this is refused before reading: real programs
# are a few KB (the examples are < 3 KB); reading + checking 4 MiB takes ~2 s.
MAX_SOURCE_BYTES = 4 << 20
# The longest name (programs, maps, …; after `-` -> `_`) the VM's loader
# pins and runs by symbol (vm/runner.py checks symbols against it): longer
# ones are rejected by `check` (exit 1), not found out in the VM (exit 5).
# The kernel keeps the first BPF_OBJ_NAME_LEN - 1 = 15 characters of a
# program's or map's name itself, which is harmless: we never look up by it.
MAX_NAME_LENGTH = 64
DEFAULT_MAX_INSNS = 1_000_000  # the kernel's own complexity limit
EEXIST = 17  # errno of a BPF_NOEXIST insert that lost the race to another CPU

# --- what the verifier pays for each form -------------------------------------
# The verifier walks a bounded loop once per iteration, so a loop costs
# iterations x body. Two limits end that walk: 1,000,000 processed
# instructions ("BPF program is too large") and 8,192 branches it has put
# aside to come back to ("The sequence of 8193 jumps is too complex"): every
# conditional it cannot decide (a map value's NULL check, a packet bounds
# check) sets one aside, and they stay pending until the path ends, i.e.
# after the last iteration. Numbers per evaluation of the form, measured with
# the C backend (`processed N insns` of 64- and 65536-iteration loops, Linux
# 6.18 and 6.1) and rounded down, so the estimate stays below what the kernel
# really counts: the checker only rejects what the kernel would reject.


@dataclass(frozen=True)
class VerifierCost:
    insns: int  # instructions the verifier processes
    branches: int = 0  # conditionals it sets aside until the path ends


VERIFIER_COSTS: dict[str, VerifierCost] = {
    "loop-iteration": VerifierCost(3),  # compare, increment, jump back
    "op": VerifierCost(1),  # arithmetic, compare, let, set!, field, ctx-field
    "call": VerifierCost(2),
    "map-get": VerifierCost(24, 2),  # lookup + NULL check
    "map-lookup": VerifierCost(22, 2),
    "map-add": VerifierCost(25, 2),  # arrays: lookup + atomic add in place
    "map-add-hash": VerifierCost(75, 8),  # lookup, insert, EEXIST retry
    "map-set": VerifierCost(10),
    "map-delete": VerifierCost(4),
    "event-output": VerifierCost(6),
    "core-read": VerifierCost(8),  # per hop: a probe read into a stack slot
    "header:eth": VerifierCost(5),
    "header:vlan": VerifierCost(5),
    "header:ipv4": VerifierCost(90, 10),  # Ethernet, VLAN, IHL, each bounds-checked
    "header:ipv6": VerifierCost(90, 10),
    # Above L3 the parse forks per IP version and header length: ~11,000
    # insns per iteration measured for a TCP parse inside a loop.
    "header:l4": VerifierCost(1000, 40),
}
MAX_PENDING_BRANCHES = 8192  # the kernel's BPF_COMPLEXITY_LIMIT_JMP_SEQ

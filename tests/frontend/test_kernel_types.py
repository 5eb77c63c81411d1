"""Probe arguments and kernel types: `(arg ctx N)`, `(tp-field ctx :f)`,
`(core-read PTR struct :f …)`. The BTF reader is tested on a small BTF
blob built here; the checker against the pinned kernels' own BTF (fetched
and indexed on first use, as `check` does for a user)."""

from __future__ import annotations

import struct

import pytest

from tatara_build import kernelbtf

from .helpers import checked, position, problems

# --- the BTF reader, on a blob built here ----------------------------------------------


def btf_blob() -> bytes:
    """int, unsigned char, struct inner {int a; int b;}, struct outer { struct
    inner in; union { int u1; int u2; }; int bf:3; struct outer *next;
    unsigned char flag; }, and bpf_lsm_file_open(struct outer *)."""
    strings = b"\0int\0unsigned char\0inner\0a\0b\0outer\0in\0u1\0u2\0bf\0next\0flag\0bpf_lsm_file_open\0"

    def off(name: str) -> int:
        return strings.index(b"\0" + name.encode() + b"\0") + 1

    def t(name, kind, vlen, size_type, kind_flag=0):
        return struct.pack("<III", off(name) if name else 0, (kind_flag << 31) | (kind << 24) | vlen, size_type)

    def m(name, type_id, offset):
        return struct.pack("<III", off(name) if name else 0, type_id, offset)

    types = b"".join([
        t("int", 1, 0, 4) + struct.pack("<I", (1 << 24) | 32),  # 1
        t("unsigned char", 1, 0, 1) + struct.pack("<I", 8),  # 2
        t("inner", 4, 2, 8) + m("a", 1, 0) + m("b", 1, 32),  # 3
        t("", 5, 2, 4) + m("u1", 1, 0) + m("u2", 1, 0),  # 4: anonymous union
        t("outer", 4, 5, 32, kind_flag=1) + m("in", 3, 0) + m("", 4, 64) + m("bf", 1, (3 << 24) | 96)
        + m("next", 6, 128) + m("flag", 2, 192),  # 5
        t("", 2, 0, 5),  # 6: struct outer *
        t("", 13, 1, 1) + struct.pack("<II", 0, 6),  # 7: int (struct outer *)
        t("bpf_lsm_file_open", 12, 1, 7),  # 8
    ])
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


@pytest.fixture(scope="module")
def toy():
    return kernelbtf.KernelTypes("9.9", kernelbtf.build_index(btf_blob()))


def test_the_index_flattens_anonymous_members_and_keeps_bitfields(toy):
    outer = toy.named("outer")
    assert outer.kind == "struct" and outer.size == 32
    assert list(outer.members) == ["in", "u1", "u2", "bf", "next", "flag"]
    assert outer.members["u2"].offset_bits == 64 and outer.members["bf"].bitfield == 3
    assert outer.members["next"].type == "ptr:outer" and outer.members["in"].type == "comp:inner"
    assert toy.lsm_hooks == {"file_open": 1}


def test_paths_resolve_through_embedded_structs_and_pointers(toy):
    (hop,) = kernelbtf.resolve_path(toy, "outer", ["in", "b"])
    assert (hop.root, hop.offset, kernelbtf.value_type(hop.type)) == ("outer", 4, "i32")
    first, second = kernelbtf.resolve_path(toy, "outer", ["next", "u2"])
    assert (first.offset, first.type, second.root, second.offset) == (16, "ptr:outer", "outer", 8)
    assert kernelbtf.value_type(kernelbtf.resolve_path(toy, "outer", ["flag"])[0].type) == "u8"
    # a bitfield: its first byte and bit, read as the unsigned integer that holds it
    (bf,) = kernelbtf.resolve_path(toy, "outer", ["bf"])
    assert (bf.offset, bf.bit, bf.steps[-1].bits, kernelbtf.value_type(bf.type)) == (12, 0, 3, "u8")


@pytest.mark.parametrize("fields, message", [
    (["in"], "`outer.in` is an embedded struct/union (inner) on kernel 9.9: name one of its fields after it"),
    (["bf", "x"], "`outer.bf` is a 3-bit bitfield on kernel 9.9: it is read last, and only an integer's"),
    (["in", "c"], "struct `inner` on kernel 9.9 has no field `c`"),
    (["flag", "x"], "`outer.flag` is int:1:u on kernel 9.9: there is nothing to read through it, so it must be the last field"),
])
def test_paths_that_do_not_resolve_say_why(toy, fields, message):
    with pytest.raises(kernelbtf.PathError) as err:
        kernelbtf.resolve_path(toy, "outer", fields)
    assert str(err.value) == message


def test_a_damaged_blob_is_refused():
    with pytest.raises(kernelbtf.KernelDataError):
        kernelbtf.build_index(b"\0" * 24)


# --- frontend shapes ------------------------------------------------------------------

KPROBE = dict(kind=":kprobe", target="tcp_v4_connect")


def kprobe(body: str, promise: str = "") -> str:
    return f"""\
(defbpf-map counts :kind :hash :key u32 :value u64 :max-entries 16)
(defbpf-program p :kind :kprobe :attach (:target "tcp_v4_connect") :uses-maps (counts) {promise})
(bpf-fn p (ctx)
  {body}
  (return :ok))
"""


@pytest.mark.parametrize("form, message", [
    ("(arg ctx x)", "the argument number must be an integer literal, got `x`"),
    ("(core-read (arg ctx 0) sock-x :a)", "expected a kernel struct, the kernel's C name"),
    ("(core-read (arg ctx 0) sock skc_daddr)", "expected a field of the kernel struct as a :keyword"),
    ("(core-read (arg ctx 0) sock)", "(core-read PTR struct :field :field …)"),
    ("(core-read (arg ctx 0) sock :a.b)", "expected a struct field, the kernel's C name"),
    ("(tp-field ctx prev_pid)", "expected the tracepoint field as a :keyword"),
])
def test_malformed_forms_are_errors_at_the_datum(form, message):
    found = problems(kprobe(f"(map-add counts 0 (u64 0)) {form}"))
    assert len(found) == 1 and message in found[0][0], found


# --- checked against the pinned kernels' BTF ------------------------------------------------


def test_reads_are_typed_by_the_kernels_fields():
    text = kprobe("(let ((a (core-read (arg ctx 0) sock :__sk_common :skc_daddr))"
                  "      (b (core-read (arg ctx 0) sock :__sk_common :skc_dport))"
                  "      (c (core-read (arg ctx 0) task_struct :real_parent :tgid))"
                  "      (d (core-read (arg ctx 0) task_struct :real_parent)))"
                  "  (map-add counts a (u64 b)))", ':kernels ("5.10" "6.1" "6.12" "7.2")')
    body = checked(text).functions[0].body[0]
    types = []
    while hasattr(body, "value") and hasattr(body, "name"):
        types.append(body.value.type.spell())
        body = body.body[0]
    assert types == ["u32", "u16", "i32", "u64"]
    # an element of an integer array, by index: bytes are u8 on every kernel
    elements = kprobe("(let ((c (core-read (arg ctx 0) task_struct :comm 15))) (map-add counts (u32 c) 1))",
                      ':kernels ("5.10" "6.1" "6.12" "7.2")')
    assert checked(elements).functions[0].body[0].value.type.spell() == "u8"


@pytest.mark.parametrize("body, where, message, notes", [
    ("(core-read (arg ctx 0) sock :__sk_common :skc_dadr)", "(core-read",
     "struct `sock_common` on kernel 6.1 has no field `skc_dadr`", ["did you mean `skc_daddr`?"]),
    ("(core-read (arg ctx 0) sock :sk_prot)", "(core-read",  # a kernel macro for __sk_common.skc_prot
     "struct `sock` on kernel 6.1 has no field `sk_prot`", ["did you mean `:__sk_common :skc_prot`?"]),
    ("(core-read (arg ctx 0) sokc :x)", "(core-read", "kernel 6.1 has no struct or union `sokc` in its BTF",
     ["did you mean `sock`?"]),
    ("(core-read (arg ctx 0) sock :__sk_common)", "(core-read",
     "`sock.__sk_common` is an embedded struct/union (sock_common) on kernel 6.1: name one of its fields after it", []),
    ("(core-read (arg ctx 0) task_struct :comm)", "(core-read",
     "`task_struct.comm` is an array (16 x 1 bytes) on kernel 6.1: read one element with its index after it, "
     "e.g. :comm 0", []),
    ("(core-read (arg ctx 0) task_struct :comm 16)", "(core-read",
     "index 16 is out of range: `task_struct.comm` has 16 elements on kernel 6.1", []),
    ("(core-read (arg ctx 0) task_struct :comm 1 :x)", "(core-read",
     "an array element is an integer: nothing can be read through `comm 1`", []),
    ("(core-read (arg ctx 0) task_struct :pid 0)", "(core-read",
     "`task_struct.pid` is int:4:s on kernel 6.1, not an array: an index (0) goes after an array field", []),
    ("(core-read (arg ctx 0) task_struct 0)", "0))",
     "expected a field of the kernel struct as a :keyword (or an index after an array field), got integer 0", []),
    ("(core-read (u32 0) sock :sk_mark)", "(u32 0)", "type mismatch: expected u64, found u32",
     ["convert explicitly: (u64 …)"]),
    ("(arg ctx 6)", "(arg", "argument 6 is out of range: kprobe programs read the probed function's arguments "
     "(x86_64 registers), numbered 0 to 5", []),
    ("(tp-field ctx :ret)", "(tp-field", "(tp-field …) reads tracepoint records; kprobe programs have none",
     ["read arguments with (arg ctx N)"]),
])
def test_kprobe_errors_name_the_kernel_and_the_closest_names(body, where, message, notes):
    text = kprobe(f"(let ((v {body})) (map-add counts 0 (u64 0)))")
    line, col = position(text, where)
    from tatara_build.check import check
    from tatara_build.errors import SourceError
    from tatara_build.frontend import parse

    with pytest.raises(SourceError) as err:
        check(parse(text, "t.tlisp"))
    (d,) = err.value.diagnostics
    assert (d.message, d.span.line, d.span.col, d.notes) == (message, line, col, notes)


def test_a_field_one_promised_kernel_lacks_is_an_error_naming_it():
    # task_struct.state became __state in 5.14
    text = kprobe("(let ((s (core-read (arg ctx 0) task_struct :__state))) (map-add counts s 1))",
                  ':kernels ("6.1" "5.10")')
    (found,) = problems(text)
    assert found[0] == "struct `task_struct` on kernel 5.10 has no field `__state` (promised by program `p`)"
    assert not problems(kprobe("(let ((s (core-read (arg ctx 0) task_struct :__state))) (map-add counts s 1))",
                               ':kernels ("6.1" "7.2")'))


def tp(target: str, body: str, kind: str = ":tracepoint", ret: str = ":ok") -> str:
    return f"""\
(defbpf-map counts :kind :hash :key u64 :value u64 :max-entries 16)
(defbpf-program p :kind {kind} :attach (:target "{target}") :uses-maps (counts) :kernels ("5.10" "7.2"))
(bpf-fn p (ctx)
  (map-add counts {body} 1)
  (return {ret}))
"""


def test_tracepoint_arguments_and_fields():
    assert not problems(tp("syscalls/sys_enter_openat", "(arg ctx 2)"))
    assert not problems(tp("raw_syscalls/sys_enter", "(arg ctx 5)"))
    assert not problems(tp("syscalls/sys_exit_openat", "(u64 (tp-field ctx :ret))"))
    assert not problems(tp("sched/sched_switch", "(u64 (tp-field ctx :next_pid))"))
    # DEFINE_EVENTs: the record of their event class, found in each kernel's image
    assert not problems(tp("sched/sched_wakeup", "(u64 (tp-field ctx :target_cpu))"))
    assert not problems(tp("sched/sched_process_exit", "(u64 (tp-field ctx :pid))"))
    assert not problems(tp("net/netif_receive_skb", "(u64 (tp-field ctx :len))"))


def test_a_data_loc_string_by_its_name_is_its_address_and_its_word_a_u32():
    from tatara_build import ir

    text = tp("sched/sched_process_exec", "(tp-field ctx :filename)") + \
        tp("sched/sched_process_exec", "(u64 (tp-field ctx :__data_loc_filename))").replace("counts", "c2").replace(
            "defbpf-program p ", "defbpf-program q ").replace("bpf-fn p ", "bpf-fn q ")
    module = checked(text)
    reads = [(n.field, n.type.spell()) for f in module.functions for n in ir.walk(f.body) if isinstance(n, ir.TpField)]
    assert reads == [("filename", "u64"), ("__data_loc_filename", "u32")]
    assert not problems(tp("file_open", "(arg ctx 0)", ":lsm", ":allow"))


@pytest.mark.parametrize("target, body, message, note", [
    ("syscalls/sys_enter_openat", "(arg ctx 6)", "argument 6 is out of range: tracepoint programs read the syscall's "
     "arguments (args[0..5]), numbered 0 to 5", None),
    ("sched/sched_switch", "(arg ctx 0)", "(arg ctx N) reads the syscall's arguments (args[0..5]); "
     "`sched/sched_switch` is not a syscall-entry tracepoint (syscalls/sys_enter_*)",
     "read the fields of this tracepoint by name: (tp-field ctx :field)"),
    ("sched/sched_switch", "(u64 (tp-field ctx :next_pdi))",
     "tracepoint `sched/sched_switch` has no field `next_pdi` on kernel 5.10", "did you mean `next_pid`?"),
    ("syscalls/sys_exit_openat", "(u64 (tp-field ctx :id))",
     "tracepoint `syscalls/sys_exit_openat` has no field `id` on kernel 5.10", None),
    ("syscalls/sys_enter_openat", "(tp-field ctx :flags)", "`syscalls/sys_enter_openat` is a syscall-entry "
     "tracepoint: read its arguments with (arg ctx N), N the syscall argument's position (e.g. openat's flags: "
     "(arg ctx 2))", None),
    ("sched/sched_wakup", "(u64 (tp-field ctx :pid))",
     "kernel 5.10 has no tracepoint `sched/sched_wakup` whose record tp-field can place (no `struct "
     "trace_event_raw_sched_wakup` in its BTF, and no event class of that name in its image)",
     "did you mean `sched/sched_wakeup`?"),
    ("sched/sched_wakeup", "(u64 (tp-field ctx :target_cpus))",
     "tracepoint `sched/sched_wakeup` has no field `target_cpus` on kernel 5.10", "did you mean `target_cpu`?"),
])
def test_tracepoint_errors(target, body, message, note):
    text = tp(target, body)
    from tatara_build.check import check
    from tatara_build.errors import SourceError
    from tatara_build.frontend import parse

    with pytest.raises(SourceError) as err:
        check(parse(text, "t.tlisp"))
    (d,) = err.value.diagnostics
    assert d.message == message
    assert note is None or note in d.notes


def test_lsm_arguments_are_bounded_by_the_hooks_arity_and_other_kinds_have_none():
    (found,) = problems(tp("file_open", "(arg ctx 1)", ":lsm", ":allow"))
    assert found[0] == ("argument 1 is out of range: LSM hook `file_open` takes 1 argument(s) on kernel 5.10, "
                        "numbered 0 to 0")
    (found,) = problems(tp("eth0", "(arg ctx 0)", ":xdp", ":xdp-pass"))
    assert found[0] == "xdp programs have no arguments to read with (arg …)"
    (found,) = problems(tp("eth0", "(core-read (u64 0) sock :sk_mark)", ":xdp", ":xdp-pass"))
    assert found[0].startswith("xdp programs cannot read kernel memory: core-read is for tracing kinds")

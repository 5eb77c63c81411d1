"""Kernel reads in both dialects: the C backend declares only the members
it reads, flavored and CO-RE relocatable, so one object serves every
promised kernel (the VM matrix loads connect-tracer and openat-watch on each
pinned kernel); the aya backend compiles in the offsets of the target
kernels' BTF, refuses kernels that disagree, and the manifest says which
kernels the object is tied to."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tatara_build import backends, check, frontend
from tatara_build.backends.base import layout_kernels
from tatara_build.errors import SourceError

from .helpers import CLANG_FLAGS

SOURCE = """\
(defbpf-map counts :kind :hash :key u64 :value u64 :max-entries 16)
(defbpf-program p :kind :kprobe :attach (:target "tcp_connect") :uses-maps (counts) {promise})
(bpf-fn p (ctx)
  (let ((sk (arg ctx 0)))
    (map-add counts (u64 (core-read sk sock :__sk_common :skc_dport)) 1)
    (map-add counts (u64 (core-read sk sock :__sk_common :skc_daddr)) 1)
    (map-add counts (u64 (core-read sk sock :{far})) 1)
    (map-add counts (u64 (core-read sk bpf_sock :mark)) 1))
  (return :ok))
"""


def module(promise: str = ':kernel "6.1"', far: str = "sk_socket :file :f_flags"):
    return check.check(frontend.parse(SOURCE.format(promise=promise, far=far), "reads.tlisp"))


def test_c_declares_only_the_members_read_with_a_flavor_and_relocations():
    text = backends.render(module(), "c")["reads.bpf.c"]
    assert "#include <bpf/bpf_core_read.h>" in text
    assert ("struct sock_common___tatara {\n    __u32 skc_daddr;\n    __u16 skc_dport;\n"
            "} __attribute__((preserve_access_index));") in text or \
           ("struct sock_common___tatara {\n    __u16 skc_dport;\n    __u32 skc_daddr;\n"
            "} __attribute__((preserve_access_index));") in text
    assert ("struct sock___tatara {\n    struct sock_common___tatara __sk_common;\n    void *sk_socket;\n"
            "} __attribute__((preserve_access_index));") in text
    # three reads for sk->sk_socket->file->f_flags, each relocated
    assert text.count("bpf_core_read(&") == 2 + 3 + 1
    assert "&((struct socket___tatara *)(unsigned long)p1)->file);" in text
    # bpf_sock is also a UAPI struct (linux/bpf.h): the flavor keeps the two apart
    assert "struct bpf_sock___tatara {" in text


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed")
def test_c_compiles_and_carries_core_relocations(tmp_path):
    [c_file] = backends.emit(module(':kernels ("5.10" "7.2")'), "c", tmp_path / "src")
    obj = tmp_path / "reads.o"
    done = subprocess.run(["clang", *CLANG_FLAGS, str(c_file), "-o", str(obj)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    data = obj.read_bytes()
    assert b".BTF.ext" in data and b"sock___tatara" in data


def test_aya_compiles_offsets_in_from_the_kernels_btf():
    main = backends.render(module(), "aya")["src/main.rs"]
    assert "read(p.wrapping_add(12) as *const u16)" in main  # skc_dport
    assert "let p1: u64 = unsafe { read(p.wrapping_add(624) as *const u64) }.unwrap_or(0);" in main  # 6.1's sk_socket
    assert layout_kernels(module(), "aya") == ["6.1"]
    assert layout_kernels(module(), "c") is None


def test_aya_refuses_promised_kernels_whose_offsets_differ():
    with pytest.raises(SourceError) as err:
        backends.render(module(':kernels ("5.10" "6.1")'), "aya")
    (d,) = err.value.diagnostics
    assert d.message.startswith("`sock.sk_socket.file.f_flags` is at byte offset 640+16+64 on kernel 5.10 but "
                                "624+16+64 on kernel 6.1: the aya backend compiles offsets in")
    assert (d.span.line, d.span.col) == (7, 26)
    # the same reads with stable offsets build for both
    both = module(':kernels ("5.10" "6.1")', far="__sk_common :skc_family")
    assert "src/main.rs" in backends.render(both, "aya")
    assert layout_kernels(both, "aya") == ["5.10", "6.1"]


TRACEPOINT = """\
(defbpf-map counts :kind :hash :key u64 :value u64 :max-entries 16)
(defbpf-program p :kind :tracepoint :attach (:target "sched/{event}") :uses-maps (counts) :kernels ({kernels}))
(bpf-fn p (ctx)
  (map-add counts (u64 (tp-field ctx :pid)) 1)
  (return :ok))
"""


def tracepoint(event: str, kernels: str):
    return check.check(frontend.parse(TRACEPOINT.format(event=event, kernels=kernels), "tp.tlisp"))


def test_a_define_event_is_read_through_its_event_class():
    """sched_wakeup has no struct of its own: its class's, relocated by CO-RE."""
    text = backends.render(tracepoint("sched_wakeup", '"5.10" "6.1" "6.12" "7.2"'), "c")["tp.bpf.c"]
    assert "((struct trace_event_raw_sched_wakeup_template___tatara *)ctx)->pid" in text
    assert layout_kernels(tracepoint("sched_wakeup", '"5.10" "7.2"'), "c") is None


def test_a_record_whose_struct_changes_between_kernels_has_its_offset_compiled_in():
    """sched_process_exit: its class's struct up to 6.12, its own on 7.2
    (whose class changed layout), pid at byte 24 in both."""
    module = tracepoint("sched_process_exit", '"5.10" "7.2"')
    text = backends.render(module, "c")["tp.bpf.c"]
    assert "*(__s32 *)((char *)ctx + 24)" in text and "trace_event_raw" not in text
    assert layout_kernels(module, "c") == ["5.10", "7.2"]
    same = tracepoint("sched_process_exit", '"5.10" "6.12"')
    assert "trace_event_raw_sched_process_template___tatara" in backends.render(same, "c")["tp.bpf.c"]
    assert layout_kernels(same, "c") is None


ENUMS = """\
(defbpf-map counts :kind :hash :key u64 :value u64 :max-entries 16)
(defbpf-program p :kind :kprobe :attach (:target "tcp_connect") :uses-maps (counts) :kernels ("5.10" "7.2"))
(bpf-fn p (ctx)
  (let ((state (core-read (arg ctx 0) sock :sk_socket :state)))
    (map-add counts (u64 state) 1))
  (return :ok))
"""


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed")
def test_an_enum_reads_as_the_unsigned_integer_of_its_size(tmp_path):
    """socket.state is enum socket_state (4 bytes): a u32. CO-RE matches an
    anonymous local enum with any kernel enum, so the C object declares one."""
    module = check.check(frontend.parse(ENUMS, "enums.tlisp"))
    (let,) = [n for n in module.functions[0].body if n.form == "let"]
    assert let.value.type.spell() == "u32"
    text = backends.render(module, "c")["enums.bpf.c"]
    assert "struct socket___tatara {\n    enum { socket___tatara__state = 0 } state;\n}" in text
    [c_file] = backends.emit(module, "c", tmp_path / "src")
    done = subprocess.run(["clang", *CLANG_FLAGS, str(c_file), "-o", str(tmp_path / "e.o")], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    one = check.check(frontend.parse(ENUMS.replace('"5.10" "7.2"', '"6.1"'), "enums.tlisp"))
    assert "read(p1.wrapping_add(0) as *const u32) }.unwrap_or(0)" in backends.render(one, "aya")["src/main.rs"]


BITFIELDS = """\
(defbpf-map counts :kind :hash :key u32 :value u64 :max-entries 16)
(defbpf-program p :kind :kprobe :attach (:target "tcp_v4_connect") :uses-maps (counts) :kernel "6.1")
(bpf-fn p (ctx)
  (map-add counts (u32 (core-read (arg ctx 0) sock :sk_kern_sock)) 1)
  (return :ok))
"""


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed")
def test_a_bitfield_is_relocated_in_c_and_shifted_and_masked_in_aya(tmp_path):
    """sock.sk_kern_sock is bit 1 of byte 512 on 6.1."""
    module = check.check(frontend.parse(BITFIELDS, "bits.tlisp"))
    text = backends.render(module, "c")["bits.bpf.c"]
    assert "struct sock___tatara {\n    __u8 sk_kern_sock : 1;\n}" in text
    assert "BPF_CORE_READ_BITFIELD_PROBED(((struct sock___tatara *)(unsigned long)p), sk_kern_sock);" in text
    [c_file] = backends.emit(module, "c", tmp_path / "src")
    done = subprocess.run(["clang", *CLANG_FLAGS, str(c_file), "-o", str(tmp_path / "b.o")], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    main = backends.render(module, "aya")["src/main.rs"]
    assert "((unsafe { read(p.wrapping_add(512) as *const u8) }.unwrap_or(0) >> 1) & 1) as u8" in main

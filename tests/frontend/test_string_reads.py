"""String reads, `(probe-read-user-str PTR)` and `(probe-read-kernel-str
PTR)`: accepted only as the value of an (array u8 N) struct field, typed by
that field, in tracing kinds; every misuse is one message at the form."""

from __future__ import annotations

import pytest

from tatara_build import ir, tables

from .helpers import checked, position, problems

HEAD = """\
(defbpf-struct ev (pid u32) (name (array u8 64)) (comm (array u8 16)))
(defbpf-struct wide (words (array u32 4)))
(defbpf-map ring :kind :ring-buf :max-entries 4096)
(defbpf-map perf :kind :perf-event-array :max-entries 4)
(defbpf-map names :kind :hash :key u32 :value ev :max-entries 16)
"""


def prog(body: str, kind: str = ":tracepoint", target: str = "syscalls/sys_enter_openat") -> str:
    return HEAD + (f'(defbpf-program p :kind {kind} :attach (:target "{target}") :uses-maps (ring perf names))\n'
                   f"(bpf-fn p (ctx)\n{body})\n")


@pytest.mark.parametrize("text", [
    prog("(event-output ring (make ev :name (probe-read-user-str (arg ctx 1)) :comm (current-comm))) (return :ok)"),
    prog("(event-output perf (make ev :name (probe-read-user-str (arg ctx 1)))) (return :ok)"),
    prog("(map-set names (u32 1) (make ev :name (probe-read-kernel-str (arg ctx 0)))) (return :ok)", ":kprobe",
         "do_sys_openat2"),
    prog("(event-output ring (make ev :comm (probe-read-kernel-str (call get-current-task)))) (return :allow)",
         ":lsm", "file_open"),
])
def test_accepted(text):
    assert problems(text) == []


def test_the_read_takes_the_type_of_the_field_it_fills():
    module = checked(prog("(event-output ring (make ev :name (probe-read-user-str (arg ctx 1)) "
                          ":comm (probe-read-user-str (arg ctx 1)))) (return :ok)"))
    reads = [n for n in ir.walk(module.functions[0].body) if isinstance(n, ir.Call)]
    assert [(r.helper, r.type.spell()) for r in reads] == [("probe-read-user-str", "array:u8:64"),
                                                   ("probe-read-user-str", "array:u8:16")]


USAGE = "write (make STRUCT … :field (probe-read-user-str PTR)) with :field an (array u8 N)"
REJECTED = [
    # text, message, the snippet it points at
    (prog("(event-output ring (make ev :pid (probe-read-user-str (arg ctx 1)))) (return :ok)"),
     "(probe-read-user-str PTR) copies a string into the (array u8 N) struct field it is the value of; here u32 is "
     "needed", "(probe-read-user-str (arg"),
    (prog("(let ((s (probe-read-user-str (arg ctx 1)))) (return :ok))"),
     "(probe-read-user-str PTR) copies a string into the (array u8 N) struct field it is the value of; here its "
     "size is unknown", "(probe-read-user-str (arg"),
    (prog("(event-output ring (probe-read-user-str (arg ctx 1))) (return :ok)"),
     "(probe-read-user-str PTR) takes its size from the (array u8 N) struct field it fills; an event record of its "
     "own has no size", "(probe-read-user-str (arg"),
    (prog("(event-output ring (make wide :words (probe-read-user-str (arg ctx 1)))) (return :ok)"),
     "(probe-read-user-str PTR) fills a byte array, (array u8 N); this field is array:u32:4", "(probe-read-user-str"),
    (prog("(event-output ring (make ev :name (probe-read-user-str (u32 1)))) (return :ok)"),
     "type mismatch: expected u64, found u32", "(u32 1)"),
    (prog("(event-output ring (make ev :name (probe-read-user-str))) (return :ok)"),
     "wrong number of arguments to `probe-read-user-str`: expected (probe-read-user-str PTR)", "(probe-read-user-str)"),
    (prog("(event-output ring (make ev :name (probe-read-kernel-str (u64 0)))) (return :xdp-pass)", ":xdp", "eth0"),
     "helper `probe-read-kernel-str` is not available to xdp programs", "(probe-read-kernel-str"),
]


@pytest.mark.parametrize("text, message, snippet", REJECTED, ids=[r[1][:70] for r in REJECTED])
def test_rejected_at_the_form(text, message, snippet):
    line, col = position(text, snippet)
    found = problems(text)
    assert found[:1] == [(message, line, col)]
    assert len(found) == 1


def test_the_message_says_how_to_write_it():
    from tatara_build.check import check
    from tatara_build.errors import SourceError
    from tatara_build.frontend import parse
    with pytest.raises(SourceError) as err:
        check(parse(prog("(let ((s (probe-read-user-str (arg ctx 1)))) (return :ok))"), "t.tlisp"))
    assert USAGE in err.value.diagnostics[0].notes


def test_a_kernel_older_than_the_helper_is_named(monkeypatch):
    """Pinned lines are all >= 5.10; with 5.4 pinned the read (5.5) is caught at its form."""
    monkeypatch.setattr(tables, "KERNEL_LINES", ("5.4", *tables.KERNEL_LINES))
    text = prog("(event-output perf (make ev :name (probe-read-user-str (arg ctx 1)))) (return :ok)")
    text = text.replace("(ring perf names))", '(ring perf names) :kernels ("5.4" "6.1"))')
    line, col = position(text, "(probe-read-user-str (arg")
    assert ("kernel 5.4 (promised by program `p`) lacks `(probe-read-user-str PTR)` (bpf_probe_read_user_str): "
            "it needs Linux 5.5 or newer", line, col) in problems(text)

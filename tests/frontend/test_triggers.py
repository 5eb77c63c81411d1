"""`defbpf-test … :trigger (…)`: tracing programs are tested by attaching
them in the VM and doing syscalls there. What may be written, and every
misuse as one message at its form."""

from __future__ import annotations

import pytest

from .helpers import checked, position, problems

HEAD = """\
(defbpf-map seen :kind :hash :key u32 :value u64 :max-entries 16)
(defbpf-program opens :kind :tracepoint :attach (:target "syscalls/sys_enter_openat") :uses-maps (seen))
(bpf-fn opens (ctx) (map-add seen (u32 1) 1) (return :ok))
(defbpf-program conns :kind :kprobe :attach (:target "tcp_v4_connect") :uses-maps (seen))
(bpf-fn conns (ctx) (map-add seen (u32 2) 1) (return :ok))
(defbpf-program guard :kind :lsm :attach (:target "file_open") :uses-maps (seen))
(bpf-fn guard (ctx) (map-add seen (u32 3) 1) (return :allow))
(defbpf-program pass :kind :xdp :attach (:target "eth0") :uses-maps (seen))
(bpf-fn pass (ctx) (return :xdp-pass))
(defbpf-program sampler :kind :perf-event :attach (:target "cpu-clock") :uses-maps (seen))
(bpf-fn sampler (ctx) (return :ok))
"""


def test_trigger_actions_are_kept_in_order():
    module = checked(HEAD + '(defbpf-test t :program opens :trigger ((open "/tmp/a") (open "/tmp/b-c.d+e" 65) '
                            '(connect 9)) :expect-maps ((seen 1 2)))\n'
                            "(defbpf-test u :program conns :trigger ((connect 65535)))\n"
                            '(defbpf-test v :program guard :trigger ((open "/init")))\n')
    t, u, v = module.tests
    assert [(a.action, a.path, a.flags, a.port) for a in t.trigger] == [
        ("open", "/tmp/a", 0, None), ("open", "/tmp/b-c.d+e", 65, None), ("connect", None, 0, 9)]
    assert (t.cases, u.trigger[0].port, v.trigger[0].path) == ([], 65535, "/init")


ONE = HEAD + "(defbpf-test t :program {program} {rest})\n"
REJECTED = [
    # program, rest of the test, message, the snippet it points at
    ("opens", "", "defbpf-test needs one of :cases (packets the program is run on) or :trigger (actions that fire a "
     "tracing program in the VM)", "(defbpf-test t"),
    ("pass", ':trigger ((open "/a")) :cases ((a :packet ((eth)) :expect :xdp-pass))',
     "defbpf-test needs one of :cases (packets the program is run on) or :trigger (actions that fire a tracing "
     "program in the VM)", "(defbpf-test t"),
    ("opens", ":trigger ()", 'expected :trigger (ACTION …), each (open "PATH" [FLAGS]) or (connect PORT)', "())"),
    ("opens", ':trigger ((exec "/bin/true"))',
     'expected a trigger action, (open "PATH" [FLAGS]) or (connect PORT); got a list `(exec …)`', '(exec "'),
    ("opens", ':trigger ((open "tmp/a"))',
     "invalid path to open 'tmp/a': an absolute path of letters, digits and _ . + - /, at most 200 characters",
     '"tmp/a"'),
    ("opens", ':trigger ((open "/tmp/a b"))',
     "invalid path to open '/tmp/a b': an absolute path of letters, digits and _ . + - /, at most 200 characters",
     '"/tmp/a b"'),
    ("opens", ':trigger ((open "/tmp/a" -1))', "open flags must be between 0 and 2147483647, got -1", "-1"),
    ("conns", ":trigger ((connect 0))", "port must be between 1 and 65535, got 0", "0))"),
    ("conns", ":trigger ((connect))", "wrong number of arguments to `connect`: expected (connect PORT)", "(connect)"),
    ("pass", ':trigger ((open "/a"))',
     "`:trigger` fires kprobe, tracepoint, lsm programs attached in the VM; `pass` is a program of kind xdp",
     "(defbpf-test t"),
    ("sampler", ':trigger ((open "/a"))',
     "`:trigger` fires kprobe, tracepoint, lsm programs attached in the VM; `sampler` is a program of kind perf-event",
     "(defbpf-test t"),
    ("opens", ":cases ((a :packet ((eth)) :expect :ok))",
     "tracepoint programs cannot be run on test packets (BPF_PROG_TEST_RUN)", "(defbpf-test t"),
    ("opens", ':trigger ((open "/a")) :expect-maps ((other 1 1))',
     "expected map `other` is not used by program `opens` (nor by a program it tail-calls)", "(other 1 1)"),
]


@pytest.mark.parametrize("program, rest, message, snippet", REJECTED, ids=[r[2][:60] for r in REJECTED])
def test_rejected_at_the_form(program, rest, message, snippet):
    text = ONE.format(program=program, rest=rest)
    line, col = position(text, snippet)
    assert problems(text) == [(message, line, col)]


def test_a_tracing_program_with_packet_cases_is_told_about_trigger():
    from tatara_build.check import check
    from tatara_build.errors import SourceError
    from tatara_build.frontend import parse

    with pytest.raises(SourceError) as err:
        check(parse(ONE.format(program="conns", rest=":cases ((a :packet ((eth)) :expect :ok))"), "t.tlisp"))
    assert err.value.diagnostics[0].notes == [
        'fire it in the VM instead: :trigger ((open "/tmp/x")) or :trigger ((connect 80))']


def test_a_trigger_on_a_packet_program_suggests_cases_and_on_other_kinds_suggests_nothing():
    from tatara_build.check import check
    from tatara_build.errors import SourceError
    from tatara_build.frontend import parse

    def notes(program: str) -> list[list[str]]:
        with pytest.raises(SourceError) as err:
            check(parse(ONE.format(program=program, rest=':trigger ((open "/a"))'), "t.tlisp"))
        return [d.notes for d in err.value.diagnostics]

    assert notes("pass") == [["give it :cases with packets instead"]]
    assert notes("sampler") == [[]]


def test_every_tests_error_is_reported_not_only_the_last_triggers():
    text = (HEAD + "(defbpf-test t :program nope :cases ((a :packet ((eth)) :expect :xdp-pass)))\n"
            + '(defbpf-test u :program pass :trigger ((open "/a")))\n')
    assert [m for m, *_ in problems(text)] == [
        "test `t` names unknown program `nope`",
        "`:trigger` fires kprobe, tracepoint, lsm programs attached in the VM; `pass` is a program of kind xdp"]

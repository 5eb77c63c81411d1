"""`:kernel` / `:kernels`: the kernels a program promises. Each names a
pinned line, and a feature one of them lacks is a check error at the form
that uses it, naming the kernel and the feature (tables' *_SINCE)."""

import pytest

from tatara_build import tables
from tatara_build.check.kernels import promised

from .helpers import checked, position, problems

SOURCE = """\
(defbpf-map counts :kind :hash :key u32 :value u64 :max-entries 16)
(defbpf-map events :kind :ring-buf :max-entries 4096)
(defbpf-program p :kind :xdp :attach (:target "eth0") :uses-maps (counts events) {promise})
(bpf-fn p (ctx)
  {body}
  (return :xdp-pass))
"""


def source(promise: str, body: str = "(map-add counts 0 1)") -> str:
    return SOURCE.format(promise=promise, body=body)


def test_every_kind_map_and_helper_has_a_first_kernel():
    assert set(tables.PROGRAM_KIND_SINCE) == set(tables.PROGRAM_KINDS)
    assert set(tables.MAP_KIND_SINCE) == set(tables.MAP_KINDS)
    assert set(tables.HELPER_SINCE) == set(tables.HELPERS)
    for since in [*tables.PROGRAM_KIND_SINCE.values(), *tables.MAP_KIND_SINCE.values(),
                  *tables.HELPER_SINCE.values(), *tables.FORM_SINCE.values()]:
        assert tables.version_tuple(since.version) >= (3, 18) and since.what


def test_a_helper_newer_than_a_promised_kernel_is_an_error_at_its_call():
    text = source(':kernels ("5.10" "6.1" "6.12.5")', "(let ((t (call ktime-tai-ns))) (map-add counts 0 t))")
    line, col = position(text, "(call ktime-tai-ns)")
    assert problems(text) == [(
        "kernel 5.10 (promised by program `p`) lacks helper `ktime-tai-ns` (bpf_ktime_get_tai_ns): "
        "it needs Linux 6.1 or newer", line, col)]
    coarse = source(':kernel "5.10"', "(let ((t (call ktime-coarse-ns))) (map-add counts 0 t))")
    assert [m for m, *_ in problems(coarse)] == [
        "kernel 5.10 (promised by program `p`) lacks helper `ktime-coarse-ns` (bpf_ktime_get_coarse_ns): "
        "it needs Linux 5.11 or newer"]
    # promised only on kernels that have it: fine
    assert problems(source(':kernels ("6.1" "7.2")', "(let ((t (call ktime-tai-ns))) (map-add counts 0 t))")) == []
    # no promise: nothing to hold the program to (the verifier of the kernel it is tested on speaks)
    assert problems(source("", "(let ((t (call ktime-tai-ns))) (map-add counts 0 t))")) == []


def test_map_kinds_program_kinds_and_forms_are_checked_on_older_lines(monkeypatch):
    """Pinned lines are all >= 5.10 today; with an older line pinned, a ring
    buffer (5.8), a BPF LSM program (5.7) and a bounded loop (5.3) are caught."""
    monkeypatch.setattr(tables, "KERNEL_LINES", ("4.19", *tables.KERNEL_LINES))
    text = source(':kernels ("4.19" "6.1")', "(event-output events (u64 1))")
    line, col = position(text, "(event-output events (u64 1))")
    assert ("kernel 4.19 (promised by program `p`) lacks ring buffers (BPF_MAP_TYPE_RINGBUF): it needs Linux 5.8 "
            "or newer", line, col) in problems(text)
    loop = source(':kernel "4.19"', "(loop (i 0 4) (map-add counts 0 1))")
    assert [m for m, *_ in problems(loop) if "bounded loops" in m] == [
        "kernel 4.19 (promised by program `p`) lacks bounded loops: it needs Linux 5.3 or newer"]
    lsm = """\
(defbpf-program guard :kind :lsm :attach (:target "file_open") :kernels ("4.19"))
(bpf-fn guard (ctx) (return :allow))
"""
    assert [m for m, *_ in problems(lsm)] == [
        "kernel 4.19 (promised by program `guard`) lacks BPF LSM programs: it needs Linux 5.7 or newer"]


def test_promised_kernels_must_be_pinned_lines():
    assert promised(checked(source(':kernel "6.12.5" :kernels ("5.10" "6.12")')).programs[0]) == ["5.10", "6.12"]
    for promise, bad in ((':kernel "6.13"', ":kernel '6.13'"), (':kernels ("6.1" "4.4.1")', ":kernels '4.4.1'")):
        messages = [m for m, *_ in problems(source(promise))]
        assert len(messages) == 1 and messages[0].startswith(bad) and "no pinned kernel of line" in messages[0]
    assert [m for m, *_ in problems(source(':kernels ("6.1" "6.1.5")'))] == [
        "kernel line 6.1 is listed twice in :kernels of `p`"]


@pytest.mark.parametrize("promise, message", [
    (':kernels "6.1"', 'expected a list of kernel versions, e.g. :kernels ("5.10" "6.1"), got'),
    (":kernels ()", "expected a list of kernel versions"),
    (':kernels ("six")', "invalid :kernels 'six'"),
])
def test_malformed_kernels_option(promise, message):
    assert any(message in m for m, *_ in problems(source(promise)))

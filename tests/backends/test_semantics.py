"""Integer semantics are the same in both backends and match the model the
language promises: wrap-around arithmetic, division and remainder by zero
give 0, shift amounts masked to width-1, signed/unsigned comparisons as
typed, C-style casts. Each case is a socket-filter program whose return
value the kernel reports through BPF_PROG_TEST_RUN; operands depend on the
packet length so no compiler can fold them away."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tatara_build import check, frontend, tables
from tatara_build.backends import emit

from . import hostbpf
from .helpers import CLANG_FLAGS

N = 20  # skb->len, `n` in every case
ETH_HLEN = 14  # a socket filter's skb starts after the Ethernet header


def wrap(value: int, t: str) -> int:
    info = tables.INT_TYPES[t]
    value &= (1 << info.bits) - 1
    return value - (1 << info.bits) if info.signed and value >> (info.bits - 1) else value


def trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


# (name, type of n, expression over n, expected value from the model)
CASES = [
    ("add-wraps-u8", "u8", "(+ n 240)", wrap(N + 240, "u8")),
    ("sub-wraps-u32", "u32", "(- n 21)", wrap(N - 21, "u32")),
    ("div-by-zero", "u32", "(/ 7 (- n 20))", 0),
    ("rem-by-zero", "u32", "(% 7 (- n 20))", 0),
    ("sdiv-truncates", "i32", "(/ (- 0 n) 3)", trunc_div(-N, 3)),
    ("srem-sign-of-dividend", "i32", "(% (- 0 n) 3)", -N - 3 * trunc_div(-N, 3)),
    ("sdiv-negative-divisor", "i32", "(/ n -3)", trunc_div(N, -3)),
    ("sdiv-by-zero", "i64", "(/ n (- n 20))", 0),
    ("shl-masks-amount-u8", "u8", "(<< 1 (- n 11))", wrap(1 << ((N - 11) & 7), "u8")),
    ("shr-arithmetic-i16", "i16", "(>> (- 0 n) 2)", (-N) >> 2),
    ("mul-wraps-u16", "u16", "(* n 3300)", wrap(N * 3300, "u16")),
    ("shl-masks-amount-u64", "u64", "(<< 1 (+ n 44))", 1 << ((N + 44) & 63)),
    ("shr-masks-amount-u32", "u32", "(>> 4294967295 (+ n 12))", 0xFFFFFFFF >> ((N + 12) & 31)),
    ("signed-compare", "i32", "(i64 (< (- 0 n) 1))", 1),
    ("unsigned-compare", "u32", "(i64 (< (- 0 n) 1))", 0),
    ("cast-truncates-and-sign-extends", "u32", "(i8 (+ n 180))", wrap(N + 180, "i8")),
    ("i8-min-div-minus-one", "i8", "(/ (- (- 0 n) 108) -1)", wrap(128, "i8")),
]


def source_text() -> str:
    out = []
    for i, (name, t, expr, _) in enumerate(CASES):
        out.append(f"(defbpf-program e{i} :kind :socket-filter :license \"GPL\")")
        out.append(f"(bpf-fn e{i} (skb) (let ((n ({t} (ctx-field skb :len)))) (return (i64 {expr}))))")
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    path = tmp_path_factory.mktemp("sem") / "semantics.tlisp"
    path.write_text(source_text())
    return check.check(frontend.load(path))


def c_object(module, tmp: Path) -> Path:
    [c_file] = emit(module, "c", tmp)
    obj = tmp / "semantics.o"
    subprocess.run(["clang", *CLANG_FLAGS, str(c_file), "-o", str(obj)], check=True)
    return obj


def aya_object(module, tmp: Path) -> Path:
    from tatara_build.compile import BuildOptions, compile_generated

    emit(module, "aya", tmp / "crate")
    compile_generated(tmp / "crate", "semantics", tmp / "out",
                    BuildOptions(backend="aya", vendor_dir=Path(os.environ["TATARA_VENDOR_DIR"])))
    return tmp / "out" / "semantics.o"


def check_all(obj: Path) -> None:
    failures = []
    with hostbpf.loaded(obj) as (root, _):
        for i, (name, _, expr, expected) in enumerate(CASES):
            got = hostbpf.run(root, f"e{i}", bytes(ETH_HLEN + N))
            if got != expected & 0xFFFFFFFF:  # the kernel reports a u32
                failures.append(f"{name}: {expr} gave {got}, expected {expected & 0xFFFFFFFF}")
    assert not failures, "\n".join(failures)


@pytest.mark.skipif(hostbpf.available() is not None, reason=str(hostbpf.available()))
def test_c_semantics(module, tmp_path):
    check_all(c_object(module, tmp_path))


@pytest.mark.slow
@pytest.mark.skipif(hostbpf.available() is not None or "TATARA_VENDOR_DIR" not in os.environ,
                    reason="needs root, bpftool and TATARA_VENDOR_DIR (aya's crates)")
def test_aya_semantics(module, tmp_path):
    check_all(aya_object(module, tmp_path))

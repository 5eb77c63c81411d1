"""Random integer expressions (seeded, so reproducible) compiled by the C
backend and run on the host kernel must equal a small Python model of the
language's integer semantics. Complements test_semantics' named cases."""

from __future__ import annotations

import os
import random
import subprocess

import pytest

from tatara_build import check, frontend, tables
from tatara_build.backends import emit

from . import hostbpf
from .helpers import CLANG_FLAGS
from .test_semantics import ETH_HLEN, N, trunc_div, wrap

TYPES = ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"]
ARITH = {"+": "add", "-": "sub", "*": "mul", "/": "div", "%": "rem", "&": "and", "|": "or", "^": "xor",
         "<<": "shl", ">>": "shr"}
COMPARE = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
           ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}


def apply(op: str, a: int, b: int, t: str) -> int:
    bits = tables.INT_TYPES[t].bits
    if op == "div":
        return 0 if b == 0 else wrap(trunc_div(a, b), t)
    if op == "rem":
        return 0 if b == 0 else wrap(a - b * trunc_div(a, b), t)
    if op == "shl":
        return wrap(a << (b & (bits - 1)), t)
    if op == "shr":
        return wrap(a >> (b & (bits - 1)), t)
    return wrap({"add": a + b, "sub": a - b, "mul": a * b, "and": a & b, "or": a | b, "xor": a ^ b}[op], t)


def gen(rng: random.Random, t: str, depth: int) -> tuple[str, int]:
    """(source text, model value) of a random expression of type t."""
    info = tables.INT_TYPES[t]
    choice = rng.random() if depth > 0 else rng.random() * 0.4
    if choice < 0.2:
        return f"({t} n)", wrap(N, t)
    if choice < 0.4:
        value = rng.choice([0, 1, 2, info.max, info.min, rng.randint(info.min, info.max)])
        return f"({t} {value})", value
    if choice < 0.75:
        sym = rng.choice(list(ARITH))
        (left, a), (right, b) = gen(rng, t, depth - 1), gen(rng, t, depth - 1)
        return f"({sym} {left} {right})", apply(ARITH[sym], a, b, t)
    if choice < 0.9:
        src = rng.choice(TYPES)
        inner, v = gen(rng, src, depth - 1)
        return f"({t} {inner})", wrap(v, t)
    sym = rng.choice(list(COMPARE))
    src = rng.choice(TYPES)
    (left, a), (right, b) = gen(rng, src, depth - 1), gen(rng, src, depth - 1)
    return f"({t} ({sym} {left} {right}))", int(COMPARE[sym](a, b))


def cases(seed: int, count: int = 40) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    return [gen(rng, rng.choice(TYPES), 3) for _ in range(count)]


def source(exprs: list[tuple[str, int]]) -> str:
    out = []
    for i, (text, _) in enumerate(exprs):
        out.append(f'(defbpf-program r{i} :kind :socket-filter :license "GPL")')
        out.append(f"(bpf-fn r{i} (skb) (let ((n (ctx-field skb :len))) (return (i64 {text}))))")
    return "\n".join(out) + "\n"


@pytest.mark.skipif(hostbpf.available() is not None, reason=str(hostbpf.available()))
@pytest.mark.parametrize("seed", list(range(1, 11)))
def test_random_expressions_match_the_model(seed, tmp_path):
    exprs = cases(seed)
    path = tmp_path / "random.tlisp"
    path.write_text(source(exprs))
    [c_file] = emit(check.check(frontend.load(path)), "c", tmp_path / "gen")
    obj = tmp_path / "random.o"
    subprocess.run(["clang", *CLANG_FLAGS, str(c_file), "-o", str(obj)], check=True)
    failures = []
    with hostbpf.loaded(obj) as (root, _):
        for i, (text, expected) in enumerate(exprs):
            got = hostbpf.run(root, f"r{i}", bytes(ETH_HLEN + N))
            if got != expected & 0xFFFFFFFF:
                failures.append(f"{text}: kernel {got}, model {expected & 0xFFFFFFFF}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("seed", list(range(1, 31)))
def test_random_expressions_are_rustfmt_clean(seed, tmp_path):
    from .helpers import rustfmt

    exe = rustfmt()
    if exe is None:
        pytest.skip("rustfmt not available")
    path = tmp_path / "random.tlisp"
    path.write_text(source(cases(seed)))
    emit(check.check(frontend.load(path)), "aya", tmp_path / "crate")
    done = subprocess.run([exe, "--edition", "2024", "--check", str(tmp_path / "crate" / "src" / "main.rs")],
                          capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(hostbpf.available() is not None or "TATARA_VENDOR_DIR" not in os.environ,
                    reason="needs root, bpftool and TATARA_VENDOR_DIR (aya's crates)")
def test_random_expressions_match_the_model_in_aya(tmp_path):
    from .test_semantics import aya_object

    exprs = cases(1)
    path = tmp_path / "random.tlisp"
    path.write_text(source(exprs))
    obj = aya_object(check.check(frontend.load(path)), tmp_path)
    failures = []
    with hostbpf.loaded(obj) as (root, _):
        for i, (text, expected) in enumerate(exprs):
            got = hostbpf.run(root, f"r{i}", bytes(ETH_HLEN + N))
            if got != expected & 0xFFFFFFFF:
                failures.append(f"{text}: kernel {got}, model {expected & 0xFFFFFFFF}")
    assert not failures, "\n".join(failures)

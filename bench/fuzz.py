"""Fuzz the front half and both emitters at scale: at least 10,000 inputs
(token soup from the language's vocabulary, mutated examples, and hostile
shapes: huge, deep, binary, control characters, odd line endings) through
reader -> forms -> checker -> C and aya emitters, every error rendered
(token soup goes into a program's body 60% of the time, to reach the checker).
Anything but a TataraError is a crash: the goal is 0.

    .venv/bin/python bench/fuzz.py                 # 10,000 inputs, seed 12
    .venv/bin/python bench/fuzz.py --count 50000 --seed 7

Prints inputs run, how far they got, distinct errors and crashes (with the
first few crashing inputs' tracebacks); exit 1 when anything crashed.
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tatara_build.backends import render  # noqa: E402
from tatara_build.check import check  # noqa: E402
from tatara_build.errors import TataraError  # noqa: E402
from tatara_build.frontend import body, forms, parse  # noqa: E402

SOURCES = sorted((REPO / "examples").glob("*.tlisp")) + sorted((REPO / "tests").rglob("*.tlisp"))


def _good(path: Path) -> bool:
    """Seeds are sources that check: the bad fixtures would seed the
    vocabulary with tokens the reader refuses before anything else runs."""
    try:
        check(parse(path.read_text(), str(path)))
        return True
    except (TataraError, UnicodeDecodeError):
        return False


TEXTS = [p.read_text() for p in SOURCES if _good(p)]
CODE = [re.sub(r";[^\n]*", "", t) for t in TEXTS]
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[()]|[^\s()]+')
VOCABULARY = sorted(
    {*forms.DECLARATIONS, *body.BODY_FORMS, *body.COMPARE_OPS, *body.FOLDING_OPS, *body.PAIR_OPS,
     *body.SCALAR_TYPES}
    | {t for text in CODE for t in TOKEN.findall(text) if t not in "()"}
    | {"0", "-1", "255", "65536", "0xffffffffffffffff", "18446744073709551616", "-9223372036854775809", "#t", "#f",
       "ctx", "offsetof", "tc-gen", "license", "panic", "barrier-var", "log", "index", "a" * 300}
)
# Rarer: tokens the reader itself must refuse.
HOSTILE_TOKENS = [":", "'", "`", ",", ",@", '"\\q"', '"x', "\x1b[31m", "\u2028", "\u202e", "\r", "\f", "\0", "#",
                  "0x", "--", "-"]
HOSTILE_CHARS = ["\0", "\x1b", "\x07", "\r", "\f", "\v", "\u2028", "\u2029", "\u202e", "\ufeff", "\ud800",
                 "\U0001f600", "\x7f", "\t", '"', "\\", ";", "(", ")", "'"]


def soup(rng: random.Random) -> str:
    out, depth = [], 0
    wrapped = rng.random() < 0.6  # inside a program's body, so it reaches the checker and the emitters
    for _ in range(rng.randint(1, 120)):
        roll = rng.random()
        if roll < 0.22:
            out.append("(")
            depth += 1
        elif roll < 0.42 and depth:
            out.append(")")
            depth -= 1
        elif roll < 0.423:
            out.append(rng.choice(HOSTILE_TOKENS))
        else:
            out.append(rng.choice(VOCABULARY))
    if wrapped or rng.random() < 0.8:
        out += [")"] * depth
    text = " ".join(out)
    return rng.choice(BODY_TEMPLATES).format(body=text) if wrapped else text


BODY_TEMPLATES = [
    """(defbpf-map hits :kind :array :key u32 :value u64 :max-entries 4)
(defbpf-map table :kind :hash :key u32 :value u64 :max-entries 16)
(defbpf-program p :kind :{kind} :attach (:target "eth0") :license "GPL" :uses-maps (hits table))
(bpf-fn p (ctx) {{body}} (return :{ret}))""".format(kind=kind, ret=ret)
    for kind, ret in (("xdp", "xdp-pass"), ("tc", "tc-act-ok"))
]


def mutate(rng: random.Random) -> str:
    text = rng.choice(CODE)
    for _ in range(rng.choice([1, 1, 1, 2, 3, 6])):
        tokens = TOKEN.findall(text)
        if not tokens:
            break
        op = rng.randrange(7)
        # Mostly an atom: a deleted paren only tests the reader's one error.
        atoms = [k for k, t in enumerate(tokens) if t not in "()"]
        i = rng.choice(atoms) if atoms and rng.random() < 0.85 else rng.randrange(len(tokens))
        if op == 0:
            del tokens[i]
        elif op == 1:
            tokens.insert(i, rng.choice(VOCABULARY + HOSTILE_TOKENS[:3]))
        elif op == 2:
            tokens.insert(i, tokens[rng.randrange(len(tokens))])
        elif op == 3:
            j = rng.randrange(len(tokens))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == 4:
            tokens[i] = rng.choice(VOCABULARY)
        elif op == 5:
            pos = rng.randrange(len(text) + 1)
            text = text[:pos] + rng.choice(HOSTILE_CHARS) + text[pos:] if rng.random() < 0.3 else text
            continue
        else:
            pos = rng.randrange(len(text))
            text = text[:pos] + text[pos + 1:]
            continue
        text = " ".join(tokens)
    return text


def hostile(rng: random.Random) -> str:
    base = rng.choice(TEXTS)
    shape = rng.randrange(9)
    if shape == 0:  # deep
        n = rng.choice([60, 63, 64, 65, 100, 1000, 5000])
        return "(" * n + "x" + ")" * rng.choice([n, n - 1, 0])
    if shape == 1:  # huge: many forms
        return base * rng.randint(20, 80)
    if shape == 2:  # binary
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 4000))).decode("latin-1")
    if shape == 3:  # control characters sprinkled through a real program
        chars = list(base)
        for _ in range(rng.randint(1, 40)):
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(HOSTILE_CHARS))
        return "".join(chars)
    if shape == 4:  # line endings
        return base.replace("\n", rng.choice(["\r", "\r\n", "\f", "\u2028", "\v", "\n\r"]))
    if shape == 5:  # a long token
        return f"(defbpf-map {'m' * rng.choice([64, 200, 10_000, 300_000])} :kind :array)"
    if shape == 6:  # long list
        return "(" + " ".join(str(rng.randrange(1 << 64)) for _ in range(rng.randint(1000, 20000))) + ")"
    if shape == 7:  # truncated program
        return base[: rng.randrange(len(base))]
    return "".join(rng.choice(HOSTILE_CHARS + ["x", " ", "1"]) for _ in range(rng.randint(1, 500)))


def normalise(message: str) -> str:
    """One bucket per kind of error: names, numbers and quoted text folded."""
    message = message.splitlines()[0]
    message = re.sub(r"`[^`]*`", "`…`", message)
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    return re.sub(r"-?\b(0x[0-9a-f]+|\d+)\b", "N", message)[:160]


def run_one(text: str, stages: collections.Counter, errors: collections.Counter) -> str | None:
    """None, or the traceback of a crash."""
    try:
        module = parse(text, "fuzz.tlisp")
        stages["read+forms"] += 1
        module = check(module)
        stages["checked"] += 1
        for backend in ("c", "aya"):
            try:
                render(module, backend)
                stages[f"emitted {backend}"] += 1
            except TataraError as err:
                err.render(text)
                errors[f"{backend}: {normalise(err.diagnostics[0].message)}"] += 1
    except TataraError as err:
        rendered = err.render(text)
        if "\x1b" in rendered or "\x07" in rendered:
            return "control character written raw into a message:\n" + rendered[:400]
        errors[normalise(err.diagnostics[0].message)] += 1
    except RecursionError:
        return traceback.format_exc(limit=4)
    except Exception:
        return traceback.format_exc()
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--show", type=int, default=3, help="crashing inputs to print")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    generators = [("soup", soup, 0.50), ("mutated", mutate, 0.42), ("hostile", hostile, 0.08)]
    stages: collections.Counter = collections.Counter()
    errors: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    crashes: list[tuple[str, str]] = []
    started = time.monotonic()
    for _ in range(args.count):
        roll, acc = rng.random(), 0.0
        for kind, make, weight in generators:
            acc += weight
            if roll < acc:
                break
        text = make(rng)
        kinds[kind] += 1
        crash = run_one(text, stages, errors)
        if crash:
            crashes.append((text, crash))
    seconds = time.monotonic() - started
    print(f"inputs run: {args.count} ({', '.join(f'{k} {n}' for k, n in kinds.items())}) in {seconds:.1f} s, "
          f"seed {args.seed}")
    print("reached: " + ", ".join(f"{k} {stages[k]}" for k in ("read+forms", "checked", "emitted c", "emitted aya")))
    print(f"distinct errors: {len(errors)} (kinds of error message; top 10 below)")
    for message, n in errors.most_common(10):
        print(f"  {n:6}  {message}")
    print(f"tracebacks: {len(crashes)}")
    for text, crash in crashes[: args.show]:
        print("---- input (first 300 chars):", repr(text[:300]))
        print(crash)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())

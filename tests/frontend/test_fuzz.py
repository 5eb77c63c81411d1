"""Property: reader + forms + checker never raise anything but TataraError,
whatever the input; every diagnostic has a span and renders; accepted input
is fully typed and round-trips through JSON.

Two generators, 1,200 examples each per run (2,400 in all): random token
soup built from the language's own vocabulary (so it reaches the forms and
the checker, not just the reader), and the examples mutated by deleting,
inserting, duplicating, swapping and replacing characters and tokens.
"""

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tatara_build import ir
from tatara_build.check import check
from tatara_build.errors import TataraError
from tatara_build.frontend import body, forms, parse

from .helpers import program

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [p.read_text() for p in sorted((REPO / "examples").glob("*.tlisp"))]
# Mutating comments proves little: mutate the examples without them.
CODE = [re.sub(r";[^\n]*", "", text) for text in EXAMPLES]
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[()]|[^\s()]+')

VOCABULARY = sorted(
    {*forms.DECLARATIONS, *body.BODY_FORMS, *body.COMPARE_OPS, *body.FOLDING_OPS, *body.PAIR_OPS, *body.SCALAR_TYPES}
    | {t for text in CODE for t in TOKEN.findall(text) if t not in "()"}
    | {"0", "-1", "255", "65536", "0xffffffffffffffff", "18446744073709551616", "#t", "#f", ":", "'", ",@", '"\\q"', '"x'}
)
SETTINGS = settings(max_examples=1200, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def exercise(text: str) -> None:
    try:
        module = check(parse(text, "fuzz.tlisp"))
    except TataraError as err:
        assert err.diagnostics
        for d in err.diagnostics:
            assert d.span is not None and d.message
        err.render(text)
        return
    text = ir.to_json(module)
    again = ir.from_json(text)  # validated: the frontend's unvalidated nodes must agree
    assert again == module and ir.to_json(again) == text


tokens = st.one_of(st.sampled_from(VOCABULARY), st.sampled_from(["(", ")", "(", ")"]), st.text(max_size=3))
token_soup = st.lists(tokens, max_size=60).map(" ".join)
# Balanced trees headed by real names get past the reader into forms/check.
BROKEN = {":", "'", ",@", '"\\q"', '"x', "18446744073709551616"}
CLEAN = sorted(set(VOCABULARY) - BROKEN)
HEADS = sorted({*body.BODY_FORMS, *body.COMPARE_OPS, *body.FOLDING_OPS, *body.PAIR_OPS, *body.SCALAR_TYPES})
atoms = st.one_of(
    st.sampled_from(CLEAN),
    st.sampled_from(["ctx", "x", "i", "tcp", "counts", "arr", "events", ":xdp-pass", ":tcp", ":dst-port", "u32", "#t"]),
    st.integers(-(2**63), 2**64 - 1).map(str),
)


# Usual argument counts, so most random bodies get past the arity checks.
ARGS = {"return": 1, "not": 1, "break": 0, "set!": 2, "cast": 2, "header": 2, "field": 2, "ctx-field": 2,
        "map-get": 2, "map-lookup": 2, "map-delete": 2, "map-set": 3, "map-add": 3, "event-output": 2, "if": 3}


def trees(heads):
    def node(inner):
        def build(head):
            n = ARGS.get(head, 2 if head in HEADS else None)
            size = st.just(n) if n is not None else st.integers(0, 5)
            return size.flatmap(lambda k: st.lists(inner, min_size=k, max_size=k)).map(
                lambda args: "(" + " ".join([head, *args]) + ")"
            )

        return st.sampled_from(heads).flatmap(build)

    return st.recursive(atoms, node, max_leaves=30)


declarations = st.lists(
    st.tuples(st.sampled_from(sorted(forms.DECLARATIONS)), st.sampled_from(CLEAN), st.lists(trees(CLEAN), max_size=8)).map(
        lambda t: "(" + " ".join([t[0], t[1], *t[2]]) + ")"
    ),
    min_size=1,
    max_size=5,
).map("\n".join)
# Random bodies inside a valid program exercise the checker's rules.
bodies = st.tuples(st.sampled_from([":xdp", ":tc", ":kprobe", ":cgroup-skb"]), st.lists(trees(HEADS), min_size=1, max_size=4)).map(
    lambda t: program(" ".join(t[1]), kind=t[0], target="egress" if t[0] == ":cgroup-skb" else "eth0")
)
random_input = st.one_of(token_soup, declarations, bodies)


@SETTINGS
@given(random_input)
def test_random_input_only_raises_tatara_errors(text):
    exercise(text)


@st.composite
def mutated_example(draw):
    text = draw(st.sampled_from(CODE))
    for _ in range(draw(st.integers(1, 4))):
        by_token = draw(st.booleans())
        parts = TOKEN.findall(text) if by_token else list(text)
        if not parts:
            break
        i = draw(st.integers(0, len(parts) - 1))
        j = draw(st.integers(0, len(parts) - 1))
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "swap", "replace"]))
        if op == "delete":
            del parts[i : i + draw(st.integers(1, 3))]
        elif op == "insert":
            parts.insert(i, draw(tokens))
        elif op == "duplicate":
            parts.insert(j, parts[i])
        elif op == "swap":
            parts[i], parts[j] = parts[j], parts[i]
        else:
            parts[i] = draw(tokens)
        text = (" " if by_token else "").join(parts)
    return text


@SETTINGS
@given(mutated_example())
def test_mutated_examples_only_raise_tatara_errors(text):
    exercise(text)


def test_unmutated_examples_are_accepted():
    for text in EXAMPLES:
        exercise(text)
        check(parse(text, "example.tlisp"))

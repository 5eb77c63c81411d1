"""Declaration checks (check/__init__.py): maps, programs, pairing, policies, duplicates; each
with its exact message, where it points, and the neighbouring input that is accepted."""

from __future__ import annotations

import pytest

from tatara_build.check import check
from tatara_build.errors import SourceError
from tatara_build.frontend import parse

from .helpers import position, problems

PASS = '(defbpf-program p :kind :xdp :attach (:target "eth0"){opts})\n(bpf-fn p (ctx) (return :xdp-pass))\n'


def messages(text: str) -> list[str]:
    return [m for m, _, _ in problems(text)]


def notes(text: str) -> list[list[str]]:
    with pytest.raises(SourceError) as err:
        check(parse(text, "t.tlisp"))
    return [d.notes for d in err.value.diagnostics]


@pytest.mark.parametrize("decl, expected", [
    ("(defbpf-map m :kind :hash :value u64 :max-entries 1)", ["hash map `m` needs :key (e.g. :key u32)"]),
    ("(defbpf-map m :kind :hash :key u32 :max-entries 1)", ["hash map `m` needs :value (e.g. :value u32)"]),
    ("(defbpf-map m :kind :hash :max-entries 1)",
     ["hash map `m` needs :key (e.g. :key u32)", "hash map `m` needs :value (e.g. :value u32)"]),
    ("(defbpf-map m :kind :array :key u64 :value u64 :max-entries 1)",
     ["array map `m` is indexed by u32; write :key u32"]),
    ("(defbpf-map m :kind :array :key u32 :value u64 :max-entries 1)", []),
    ("(defbpf-map m :kind :array :value u64 :max-entries 1)", ["array map `m` needs :key (e.g. :key u32)"]),
    ("(defbpf-map m :kind :ring-buf :value u32 :max-entries 4096)", []),
    ("(defbpf-map m :kind :stack-trace :value u32 :max-entries 4)", ["stack-trace map `m` takes no :key or :value"]),
    ("(defbpf-map m :kind :ring-buf :max-entries 4096)", []),
    ("(defbpf-map m :kind :ring-buf :max-entries 1048576)", []),
    ("(defbpf-map m :kind :ring-buf :max-entries 2048)",
     ["ring-buf `m`: :max-entries is its size in bytes, a power of two of at least 4096"]),
    ("(defbpf-map m :kind :ring-buf :max-entries 12288)",
     ["ring-buf `m`: :max-entries is its size in bytes, a power of two of at least 4096"]),
    ("(defbpf-map m :kind :ring-buf :max-entries 4097)",
     ["ring-buf `m`: :max-entries is its size in bytes, a power of two of at least 4096"]),
])
def test_map_declarations(decl, expected):
    text = decl + "\n" + PASS.format(opts="")
    found = problems(text)
    assert [m for m, _, _ in found] == expected
    assert all((ln, c) == (1, 1) for _, ln, c in found)


def test_program_attach_rules():
    assert messages('(defbpf-program p :kind :xdp)\n(bpf-fn p (ctx) (return :xdp-pass))\n') == [
        'xdp program `p` needs :attach (:target "…"): the network interface to attach to']
    assert messages('(defbpf-program p :kind :kprobe)\n(bpf-fn p (ctx) (return :ok))\n') == [
        'kprobe program `p` needs :attach (:target "…"): the kernel function to probe']
    text = '(defbpf-program p :kind :cgroup-skb :attach (:target "up"))\n(bpf-fn p (c) (return :allow))\n'
    ((message, line, col),) = problems(text)
    assert message == "cgroup-skb attach target must be \"ingress\" or \"egress\", got 'up'"
    assert (line, col) == position(text, "(:target")
    for target in ("ingress", "egress"):
        assert messages(text.replace('"up"', f'"{target}"')) == []


def test_a_program_using_maps_needs_a_gpl_compatible_license():
    decl = "(defbpf-map m :kind :array :key u32 :value u64 :max-entries 1)\n"
    text = decl + PASS.format(opts=' :license "BSD" :uses-maps (m)')
    assert messages(text) == ["program `p` uses maps, which needs a GPL-compatible :license, got 'BSD'"]
    assert notes(text)[0][0].startswith("GPL-compatible: GPL")
    for licence in ("GPL", "Dual MIT/GPL", "GPL v2"):
        assert messages(decl + PASS.format(opts=f' :license "{licence}" :uses-maps (m)')) == [], licence
    assert messages(PASS.format(opts=' :license "BSD"')) == []  # no maps, any licence


def test_maps_and_programs_share_one_namespace_and_duplicates_point_at_the_second():
    text = ("(defbpf-map p :kind :array :key u32 :value u64 :max-entries 1)\n" + PASS.format(opts="")
            + "(bpf-fn p (ctx) (return :xdp-drop))\n")
    found = problems(text)
    assert [m for m, _, _ in found] == [
        "duplicate map, program, const, function or struct name `p` (first defined at t.tlisp:1:1)",
        "duplicate bpf-fn name `p` (first defined at t.tlisp:3:1)",
    ]
    assert [ln for _, ln, _ in found] == [2, 4]


def test_duplicate_policies_and_tests_are_named_by_what_they_are():
    base = ("(defbpf-map m :kind :array :key u32 :value u64 :max-entries 1)\n" + PASS.format(opts=" :uses-maps (m)"))
    text = base + "(defbpf-policy pol :programs (p) :maps (m))\n" * 2
    assert messages(text) == ["duplicate policy name `pol` (first defined at t.tlisp:4:1)"]
    test = "(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)))\n"
    assert messages(base + test * 2) == ["duplicate test name `t` (first defined at t.tlisp:4:1)"]


def test_policy_rules():
    base = ("(defbpf-map m :kind :array :key u32 :value u64 :max-entries 1)\n"
            "(defbpf-map n :kind :array :key u32 :value u64 :max-entries 1)\n" + PASS.format(opts=" :uses-maps (m n)"))
    assert messages(base + "(defbpf-policy pol :programs (p) :maps (m n))\n") == []
    text = base + "(defbpf-policy pol :programs (p) :maps (m))\n"
    assert messages(text) == ["program `p` uses map(s) n not allowed by policy `pol`"]
    assert notes(text) == [["add them to the policy's :maps, or drop them from p's :uses-maps"]]
    assert messages(base + "(defbpf-policy pol :programs (p p) :maps (m n m))\n") == [
        "policy `pol` lists `p` twice", "policy `pol` lists `m` twice"]
    assert messages(base + "(defbpf-policy pol :programs (p q) :maps (m n z))\n") == [
        "policy `pol` lists unknown program `q`", "policy `pol` lists unknown map `z`"]
    assert messages(base + "(defbpf-policy pol :programs () :maps ())\n") == []


def test_pairing_of_programs_and_bodies():
    text = '(defbpf-program q :kind :xdp :attach (:target "lo"))\n(bpf-fn r (c) (return :xdp-pass))\n'
    found = problems(text)
    assert [m for m, _, _ in found] == [
        "program `q` has no body: add (bpf-fn q (ctx) …)",
        "bpf-fn `r` has no (defbpf-program r :kind …) declaring its kind",
    ]
    assert [ln for _, ln, _ in found] == [1, 2]


def test_an_unknown_uses_maps_entry_names_the_map():
    text = PASS.format(opts=" :uses-maps (ghost)")
    assert messages(text) == ["program `p` uses undeclared map `ghost`"]


def test_an_accepted_module_comes_back_typed():
    text = PASS.format(opts="")
    module = check(parse(text, "t.tlisp"))
    assert module.functions[0].body[0].type.spell() == "never"


@pytest.mark.parametrize("uses, body, expected", [
    ("(ghost)", "(return :xdp-pass)", ["program `p` uses undeclared map `ghost`"]),
    ("()", "(map-add ghost (u32 0) (u64 1)) (return :xdp-pass)", ["unknown map `ghost`"]),
])
def test_an_unknown_map_with_promised_kernels_is_one_error_not_a_crash(uses, body, expected):
    text = (f'(defbpf-program p :kind :xdp :attach (:target "eth0") :kernels ("5.10" "6.1") :uses-maps {uses})\n'
            f"(bpf-fn p (ctx) {body})\n")
    assert messages(text) == expected


def test_an_lpm_trie_keyed_by_a_signed_integer_is_refused_at_its_declaration():
    decl = "(defbpf-map m :kind :lpm-trie :key {key} :value u64 :max-entries 4)\n"
    text = "\n" + decl.format(key="i32") + PASS.format(opts=" :uses-maps (m)")
    assert problems(text) == [("lpm-trie `m` is keyed by an address: use an unsigned :key (u32 for IPv4) or "
                               ":key-size 16 (IPv6)", 2, 1)]
    assert problems("\n" + decl.format(key="u32") + PASS.format(opts=" :uses-maps (m)")) == []


def test_a_bad_license_shared_by_every_program_is_one_error_at_the_first():
    text = "\n" + PASS.format(opts=' :license "GPL!"') + PASS.format(opts=' :license "GPL!"').replace(" p ", " q ")
    assert problems(text) == [("license `GPL!` must be 1 to 64 characters among letters, digits, space and . / + -",
                               2, 1)]


def test_an_unknown_struct_field_type_suggests_the_closest_struct():
    """The suggestion is one note (it was once printed one character per line)."""
    text = "(defbpf-struct flow (a u32))\n(defbpf-struct s (a flw))\n" + PASS.format(opts="")
    assert problems(text) == [("unknown type `flw`: a field is an integer type (u8, u16, u32, u64, i8, i16, i32, i64), "
                               "(array u8 16) or a defbpf-struct", *position(text, "(a flw)"))]
    assert notes(text) == [["did you mean `flow`?"]]

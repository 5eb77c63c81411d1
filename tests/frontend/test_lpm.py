"""lpm-trie keys: prefix length (host order) + address in network order, as
libbpf and aya users write them; `(lpm-key BITS ADDR)` in programs, text
prefixes in tests; the checker's rules and the bytes the VM compares."""

from __future__ import annotations

import pytest

from tatara_build import ir, mapdata
from tatara_build.vm import results, runner

from .helpers import checked, position, problems

MAPS = """\
(defbpf-map v4 :kind :lpm-trie :key u32 :value u8 :max-entries 16)
(defbpf-map v6 :kind :lpm-trie :key-size 16 :value u32 :max-entries 16)
(defbpf-map h :kind :hash :key u32 :value u64 :max-entries 16)
(defbpf-program p :kind :xdp :attach (:target "eth0") :uses-maps (v4 v6 h))
"""


def source(body: str, tests: str = "") -> str:
    return MAPS + f"(bpf-fn p (ctx) {body} (return :xdp-pass))\n" + tests


def decl(kind: str = "lpm-trie", key: str | None = "u32", key_size: int | None = None, value: str = "u8") -> ir.MapDecl:
    return ir.MapDecl(name="m", kind=kind, key=key, key_size=key_size, value=value, max_entries=4)


def test_key_bytes_are_prefix_length_then_network_order():
    assert mapdata.key_bytes(decl(), "10.1.2.0/24") == bytes([24, 0, 0, 0, 10, 1, 2, 0])
    assert mapdata.key_bytes(decl(), "10.1.2.3/24") == bytes([24, 0, 0, 0, 10, 1, 2, 0])  # host bits cleared
    assert mapdata.key_bytes(decl(), "10.1.2.3") == bytes([32, 0, 0, 0, 10, 1, 2, 3])
    assert mapdata.key_bytes(decl(), 0x0A010203) == bytes([32, 0, 0, 0, 10, 1, 2, 3])  # integer: full prefix
    six = mapdata.key_bytes(decl(key=None, key_size=16, value="u32"), "2001:db8::/32")
    assert six == bytes([32, 0, 0, 0, 0x20, 0x01, 0x0D, 0xB8]) + bytes(12)
    assert mapdata.key_bytes(decl("hash", "i16"), -2) == b"\xfe\xff"
    assert mapdata.key_size(decl()) == 8 and mapdata.key_size(decl(key=None, key_size=16)) == 20


@pytest.mark.parametrize("key, message", [
    ("10.1.2.0/33", "not an IPv4 prefix"),
    ("2001:db8::/32", "not an IPv4 prefix"),
    ("10.1.2", "not an IPv4 prefix"),
    (1 << 32, "does not fit"),
])
def test_bad_test_keys(key, message):
    assert message in mapdata.key_problem(decl(), key)


def test_dumped_keys_compare_with_bits_past_the_prefix_cleared():
    stored = bytes([24, 0, 0, 0, 10, 1, 2, 77])  # the program inserted (lpm-key 24 10.1.2.77)
    assert mapdata.canonical_key(decl(), stored) == mapdata.key_bytes(decl(), "10.1.2.0/24")


def test_lpm_programs_and_test_keys_check():
    text = source("(map-set v4 (lpm-key 24 (u32 1)) 1) (map-set v6 (lpm-key 48 (u64 1) (u64 2)) 3) "
                  "(if-let (x (map-lookup v6 (lpm-key 128 (u64 1) (u64 2)))) (map-set h 0 (u64 x))) "
                  "(map-delete v4 (u32 7)) (map-add h 1 (map-get h 2))",
                  '(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) '
                  ':expect-maps ((v4 "10.1.2.0/24" 1) (v6 "2001:db8::/32" 3) (v4 167838211 0)))')
    module = checked(text)
    assert [m.key_size for m in module.maps] == [None, 16, None]
    assert [e.key for e in module.tests[0].expect_maps] == ["10.1.2.0/24", "2001:db8::/32", 167838211]


@pytest.mark.parametrize("body, message, snippet", [
    ("(map-set h (lpm-key 24 (u32 1)) 1)", "(lpm-key …) is a key of lpm-trie maps", "(lpm-key 24"),
    ("(map-set v4 (lpm-key 33 (u32 1)) 1)", "prefix of 33 bits is longer than the 32-bit", "33"),
    ("(map-set v6 (u64 1) 1)", "16-byte (IPv6) keys", "(u64 1) 1)"),
    ("(map-set v6 (lpm-key 64 (u64 1)) 1)", "write (lpm-key PREFIX HI LO)", "(lpm-key 64"),
    ("(map-set v4 (lpm-key 8 (u64 1)) 1)", "expected u32, found u64", "(u64 1)) 1)"),
    ("(let ((k (lpm-key 8 (u32 1)))) (map-set v4 k 1))", "only the key of an lpm-trie map operation", "(lpm-key 8"),
])
def test_lpm_key_errors(body, message, snippet):
    text = source(body)
    found = problems(text)
    assert any(message in m for m, _, _ in found), found
    line, col = position(text, snippet)
    assert any(message in m and (ln, c) == (line, col) for m, ln, c in found), found


@pytest.mark.parametrize("decl_text, message", [
    ("(defbpf-map x :kind :hash :key-size 16 :value u8 :max-entries 4)", ":key-size 16 is only for lpm-trie"),
    ("(defbpf-map x :kind :lpm-trie :key i32 :value u8 :max-entries 4)", "use an unsigned :key"),
    ("(defbpf-map x :kind :lpm-trie :key-size 3 :value u8 :max-entries 4)", "1, 2, 4 or 8 bytes (16: lpm-trie"),
])
def test_lpm_declaration_errors(decl_text, message):
    found = problems(decl_text + "\n")
    assert any(message in m for m, _, _ in found), found


@pytest.mark.parametrize("expect, message", [
    ('(v4 "2001:db8::/32" 1)', "not an IPv4 prefix"),
    ('(v6 "10.0.0.0/8" 1)', "not an IPv6 prefix"),
    ('(h "10.0.0.0/8" 1)', "has integer keys"),
    ('(v4 "10.0.0.0/8" 1) (v4 "10.9.0.0/8" 2)', "is expected twice"),
    ('(v4 "10.0.0.0/8" 256)', "does not fit the map's value type u8"),
])
def test_expect_map_key_errors(expect, message):
    text = source("", f"(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-maps ({expect}))")
    found = problems(text)
    assert any(message in m for m, _, _ in found), found


def test_vm_map_check_reads_the_lpm_entry():
    dump = ('[{"key":["0x18","0x00","0x00","0x00","0x0a","0x01","0x02","0x4d"],"value":["0x01"]},'
            '{"key":["0x20","0x00","0x00","0x00","0x0a","0x01","0x02","0x4d"],"value":["0xff"]}]')
    d = decl()
    jobs = [runner.MapJob(0, "t", "v4", key, value, "v4", key_bytes=mapdata.key_bytes(d, key), lpm=True, value_type="u8")
            for key, value in (("10.1.2.0/24", 1), ("10.1.2.77/32", 255), ("10.1.0.0/16", 0))]
    steps = results.steps(f"@@BEGIN dump 0 v4\n{dump}\n@@END 0\n")
    assert [(c.key, c.got, c.passed) for c in runner._map_checks(jobs, steps)] == [
        ("10.1.2.0/24", 1, True), ("10.1.2.77/32", 255, True), ("10.1.0.0/16", 0, True)]


def test_vm_map_check_decodes_signed_values():
    dump = '[{"key":["0x01","0x00","0x00","0x00"],"value":["0xfe","0xff","0xff","0xff"]}]'
    job = runner.MapJob(0, "t", "m", 1, -2, "m", key_bytes=b"\x01\x00\x00\x00", value_type="i32")
    (check,) = runner._map_checks([job], results.steps(f"@@BEGIN dump 0 m\n{dump}\n@@END 0\n"))
    assert (check.got, check.passed) == (-2, True)


def test_pin_path_from_json_ir_is_refused_by_the_checker():
    from tatara_build.check import check
    from tatara_build.errors import SourceError

    module = ir.Module(file="t.tlisp", source_sha256="0" * 64,
                       maps=[ir.MapDecl(name="m", kind="hash", key="u32", value="u64", max_entries=4, pin_path="/sys/fs/bpf/m")])
    with pytest.raises(SourceError, match="pin_path is not supported"):
        check(module)


@pytest.mark.parametrize("kind, body, ok", [
    (":cgroup-skb", "(return (i32 1))", True),
    (":cgroup-skb", "(return (i32 2))", False),
    (":cgroup-skb", "(let ((v (i32 1))) (return v))", False),
    (":lsm", "(return (i32 -13))", True),
    (":lsm", "(return (i32 1))", False),
    (":tc", "(let ((v (i32 9))) (return v))", True),
])
def test_return_values_stay_in_the_range_the_verifier_checks(kind, body, ok):
    """Found by the generated-program property test: a cgroup-skb program
    returning 2 passed the checker and failed the verifier."""
    target = {":cgroup-skb": "ingress", ":lsm": "file_open", ":tc": "eth0"}[kind]
    text = f'(defbpf-program p :kind {kind} :attach (:target "{target}") :license "GPL")\n(bpf-fn p (ctx) {body})\n'
    found = problems(text)
    assert (not found) if ok else any("may only return values in" in m for m, _, _ in found), found

"""Declaration shapes (frontend/forms.py, shapes.py): every malformed form gets one message at
the datum that is wrong, with its notes (suggestions, the options it knows); the largest
accepted values sit next to the first refused ones."""

from __future__ import annotations

import pytest

from tatara_build.errors import SourceError
from tatara_build.frontend import parse

PIN_PATH = '`:pin-path` is not supported: the object cannot carry a pin path in either backend, so maps are pinned by the program that loads them'
PIN_NOTES = ['after loading: `bpftool map pin id ID /sys/fs/bpf/NAME`, libbpf bpf_map__pin(map, path) (or bpf_object_open_opts.pin_root_path), aya `map.pin(path)`']

BAD = [
    ('42',
     'expected a declaration such as (defbpf-map …), got integer 42', 1, []),
    ('()',
     'expected a declaration such as (defbpf-map …), got a list', 1, []),
    ('(defbpf-mpa m)',
     'unknown top-level form `defbpf-mpa`', 2, ['did you mean `defbpf-map`?', 'known: defbpf-struct, defbpf-map, defbpf-program, defbpf-policy, bpf-fn, defbpf-test, defbpf-const, defbpf-func']),
    ('(frobnicate m)',
     'unknown top-level form `frobnicate`', 2, ['known: defbpf-struct, defbpf-map, defbpf-program, defbpf-policy, bpf-fn, defbpf-test, defbpf-const, defbpf-func']),
    ('(defbpf-map)',
     '`defbpf-map` needs a name', 1, []),
    ('(defbpf-map m :kind :hash :key u32 :value u64)',
     'defbpf-map needs `:max-entries`', 1, []),
    ('(defbpf-map m :kind :hash :key u32 :value u64 :max-entries 0)',
     ':max-entries must be between 1 and 4294967295, got 0', 60, []),
    ('(defbpf-map m :kind :hash :key u32 :value u64 :max-entries 4294967296)',
     ':max-entries must be between 1 and 4294967295, got 4294967296', 60, []),
    ('(defbpf-map m :kind :hsah :key u32 :value u64 :max-entries 1)',
     'unknown map kind `:hsah`', 21, ['did you mean `hash`?', 'known: hash, lru-hash, per-cpu-hash, array, per-cpu-array, lpm-trie, ring-buf, perf-event-array, stack-trace, devmap, devmap-hash, cpumap, xskmap, prog-array']),
    ('(defbpf-map m :kind hash :key u32 :value u64 :max-entries 1)',
     'expected map kind as a :keyword, got `hash`', 21, []),
    ('(defbpf-map m :kind :hash :key U128 :value u64 :max-entries 1)',
     'expected an integer type (u8, u16, u32, u64, i8, i16, i32, i64) or a defbpf-struct name for :key, got `U128`',
     32, []),
    ('(defbpf-map m :kind :hash :key u32 :key-size 4 :value u64 :max-entries 1)',
     'give either :key or :key-size, not both', 46, []),
    ('(defbpf-map m :kind :hash :key-size 3 :value u64 :max-entries 1)',
     ':key-size must be 1, 2, 4 or 8 bytes (16: lpm-trie IPv6 keys), got 3', 37, []),
    ('(defbpf-map m :kind :hash :key-size 17 :value u64 :max-entries 1)',
     ':key-size must be between 1 and 16, got 17', 37, []),
    ('(defbpf-map m :kind :hash :key-size 8 :value-size 9 :max-entries 1)',
     ':value-size must be between 1 and 8, got 9', 51, []),
    ('(defbpf-map m :kind :hash :key-size 8 :value-size 16 :max-entries 1)',
     ':value-size must be between 1 and 8, got 16', 51, []),
    ('(defbpf-map m :kind :hash :key u32 :value-size 0 :max-entries 1)',
     ':value-size must be between 1 and 8, got 0', 48, []),
    ('(defbpf-map m :kind :hash :key u32 :value u64 :max-entries 1 :max-entries 2)',
     'option `:max-entries` given twice', 62, []),
    ('(defbpf-map m :kind :hash :key u32 :value u64 :max-entries)',
     'option `:max-entries` needs a value', 47, []),
    ('(defbpf-map m :kind :hash :key u32 :value u64 :max-entires 1)',
     'unknown option `:max-entires` for defbpf-map', 47, ['did you mean `max-entries`?', 'options: :kind :key :value :key-size :value-size :max-entries :pin-path :programs']),
    ('(defbpf-map m :kind :hash :key u32 :value u64 max-entries 1)',
     'expected a :keyword option, got `max-entries`', 47, ['options: :kind :key :value :key-size :value-size :max-entries :pin-path :programs']),
    # :pin-path is refused whatever the path (no object can carry one): at its value
    ('(defbpf-map m :kind :hash :key u32 :value u64 :max-entries 1 :pin-path "relative/x")', PIN_PATH, 72, PIN_NOTES),
    ('(defbpf-map m :kind :hash :key u32 :value u64 :max-entries 1 :pin-path "/sys/fs/bpf/x y")', PIN_PATH, 72, PIN_NOTES),
    ('(defbpf-map m :kind :hash :key u8 :value i64 :max-entries 1 :pin-path "/sys/fs/bpf/a.b/c_d-e")', PIN_PATH, 71, PIN_NOTES),
    ('(defbpf-map "m" :kind :hash :key u32 :value u64 :max-entries 1)',
     'expected map name, got a string', 13, []),
    ('(defbpf-program p :attach (:target "eth0"))',
     'defbpf-program needs `:kind`', 1, []),
    ('(defbpf-program p :kind :xdp :attach "eth0")',
     'expected :attach (:target "…"), got a string', 38, []),
    ('(defbpf-program p :kind :xdp :attach (:target "eth 0"))',
     "invalid attach target 'eth 0': use only [A-Za-z0-9_./:-] (at most 128)", 47, []),
    ('(defbpf-program p :kind :tc :attach (:target "eth0" :direction :sideways))',
     'attach direction must be "ingress" or "egress"', 64, []),
    ('(defbpf-program p :kind :tc :attach (:target "eth0" :direction 1))',
     'attach direction must be "ingress" or "egress"', 64, []),
    ('(defbpf-program p :kind :tc :attach (:target "eth0" :direction (egress)))',
     'attach direction must be "ingress" or "egress"', 64, []),
    ('(defbpf-program p :kind :xdp :attach (:target "eth0" :colour 1))',
     'unknown option `:colour` for :attach', 54, ['options: :target :direction']),
    ('(defbpf-program p :kind :xdp :license "GPL\\"x")',
     'invalid :license \'GPL"x\': printable ASCII without quotes or backslashes', 39, []),
    ('(defbpf-program p :kind :xdp :kernel "6")',
     'invalid :kernel \'6\': a kernel version such as "6.1" or "6.12.5"', 38, []),
    ('(defbpf-program p :kind :xdp :max-insns 0)',
     ':max-insns must be between 1 and 1000000, got 0', 41, []),
    ('(defbpf-program p :kind :xdp :max-insns 1000001)',
     ':max-insns must be between 1 and 1000000, got 1000001', 41, []),
    ('(defbpf-program p :kind :xdp :uses-maps m)',
     'expected a list of map names, e.g. (a b), got `m`', 41, []),
    ('(defbpf-program p :kind :xdp :uses-maps (m 1))',
     'expected map name, got integer 1', 44, []),
    ('(defbpf-policy pol :description "a\\\\b")',
     "invalid :description 'a\\\\b': printable ASCII without quotes or backslashes", 33, []),
    ('(defbpf-policy pol :programs p)',
     'expected a list of program names, e.g. (a b), got `p`', 30, []),
    ('(bpf-fn f (ctx))',
     'expected (bpf-fn name (ctx) body…)', 1, []),
    ('(bpf-fn f ctx (return :xdp-pass))',
     'a bpf-fn takes exactly one parameter, the context: (bpf-fn name (ctx) body…)', 11, []),
    ('(bpf-fn f (a b) (return :xdp-pass))',
     'a bpf-fn takes exactly one parameter, the context: (bpf-fn name (ctx) body…)', 11, []),
    ('(bpf-fn f () (return :xdp-pass))',
     'a bpf-fn takes exactly one parameter, the context: (bpf-fn name (ctx) body…)', 11, []),
    ('(defbpf-test t :program p)',
     'defbpf-test needs one of :cases (packets the program is run on) or :trigger (actions that fire a tracing '
     'program in the VM)', 1, []),
    ('(defbpf-test t :program p :cases ())',
     'expected :cases ((name :packet (…) :expect :action) …)', 34, []),
    ('(defbpf-test t :program p :cases x)',
     'expected :cases ((name :packet (…) :expect :action) …)', 34, []),
    ('(defbpf-test t :program p :cases ((a :expect :xdp-pass)))',
     'a test case needs exactly one of :packet or :packet-hex', 35, []),
    ('(defbpf-test t :program p :cases ((a :packet ((eth)) :packet-hex "00" :expect :xdp-pass)))',
     'a test case needs exactly one of :packet or :packet-hex', 35, []),
    ('(defbpf-test t :program p :cases ((a :packet () :expect :xdp-pass)))',
     'expected :packet ((eth) (ipv4) …)', 46, []),
    ('(defbpf-test t :program p :cases ((a :packet ((eht)) :expect :xdp-pass)))',
     'unknown packet layer `eht`', 48, ['did you mean `eth`?', 'known: eth, vlan, ipv4, ipv6, ipv6-hop-by-hop, '
                                           'ipv6-dest-opts, ipv6-routing, ipv6-fragment, tcp, udp, icmp, icmpv6, arp, raw']),
    ('(defbpf-test t :program p :cases ((a :packet (eth) :expect :xdp-pass)))',
     'expected a packet layer such as (tcp :dport 80), got `eth`', 47, []),
    ('(defbpf-test t :program p :cases ((a :packet ((eth :src #t)) :expect :xdp-pass)))',
     'expected an integer, a string or a list of flags, got a boolean', 57, []),
    ('(defbpf-test t :program p :cases ((a :packet-hex "0" :expect :xdp-pass)))',
     "invalid :packet-hex '0': an even number of hex digits", 50, []),
    ('(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass :truncate 65536)))',
     ':truncate must be between 0 and 65535, got 65536', 82, []),
    ('(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass :repeat 0)))',
     ':repeat must be between 1 and 1000000, got 0', 80, []),
    ('(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass :repeat 1000001)))',
     ':repeat must be between 1 and 1000000, got 1000001', 80, []),
    ('(defbpf-test t :program p :cases ((a :packet ((eth)) :expect xdp-pass)))',
     'expected :expect as a :keyword, got `xdp-pass`', 62, []),
    ('(defbpf-test t :program p :cases (a))',
     'expected a test case (name :packet (…) :expect :action), got `a`', 35, []),
    ('(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-maps x)',
     'expected :expect-maps ((map key value) …)', 87, []),
    ('(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-maps ((m 1)))',
     'expected (map key value)', 88, []),
    ('(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-maps ((m "10.0.0.0/8x" 1)))',
     'invalid :expect-maps key \'10.0.0.0/8x\': an address prefix such as "10.1.2.0/24" or "2001:db8::/32"', 91, []),
    ('(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-maps ((m 1 #t)))',
     'expected an integer for the value, got a boolean', 93, []),
]
GOOD = [
    '(defbpf-map m :kind :hash :key u32 :value u64 :max-entries 4294967295)',
    '(defbpf-program p :kind :tc :attach (:target "eth0" :direction "egress"))',
    '(defbpf-program p :kind :xdp :kernel "6.12.5")',
    '(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass)) :expect-maps ((m "10.0.0.0/8" 1)))',
]

# strings pasted into generated code: the longest accepted and the first refused
GOOD += [
    '(defbpf-program p :kind :xdp :attach (:target "' + "a" * 128 + '"))',
    '(defbpf-program p :kind :xdp :license "' + "G" * 256 + '")',
    '(defbpf-program p :kind :xdp :max-insns 1000000 :kernel "6.1")',
    "(defbpf-map m :kind :hash :key-size 1 :value-size 8 :max-entries 1)",
    "(defbpf-map m :kind :lpm-trie :key-size 16 :value u32 :max-entries 1)",
    '(defbpf-test t :program p :cases ((a :packet ((eth)) :expect :xdp-pass :truncate 65535 :repeat 1000000)))',
    '(defbpf-test t :program p :cases ((a :packet-hex "" :expect :xdp-pass :truncate 0 :repeat 1)))',
    '(defbpf-policy pol :description "ok" :programs (p q) :maps ())',
]
BAD += [
    ('(defbpf-struct 1 (a u32))', 'expected struct name, got integer 1', 16, []),
    ('(defbpf-program p :kind :xdp :license GPL)', 'expected a string for :license, got `GPL`', 39, []),
    ('(bpf-fn "p" (ctx) (return :xdp-pass))', 'expected function name, got a string', 9, []),
    ('(defbpf-test t :program p :cases ((a :packet-hex "00" :expect :xdp-tx :expect-packet-hex "abc")))',
     "invalid :expect-packet-hex 'abc': an even number of hex digits", 90, []),

    ('(defbpf-program p :kind :xdp :attach (:target "' + "a" * 129 + '"))',
     "invalid attach target '" + "a" * 129 + "': use only [A-Za-z0-9_./:-] (at most 128)", 47, []),
    ('(defbpf-program p :kind :xdp :license "' + "G" * 257 + '")',
     "invalid :license '" + "G" * 257 + "': printable ASCII without quotes or backslashes", 39, []),
]


def diagnostics(text: str):
    try:
        parse(text + "\n", "t.tlisp")
    except SourceError as err:
        return [(d.message, d.span.line, d.span.col, d.notes) for d in err.diagnostics]
    return []


@pytest.mark.parametrize("text, message, col, notes", BAD, ids=[b[1][:60] for b in BAD])
def test_each_malformed_declaration_has_one_message_at_the_wrong_datum(text, message, col, notes):
    assert diagnostics(text) == [(message, 1, col, notes)]


@pytest.mark.parametrize("text", GOOD)
def test_well_formed_neighbours_are_accepted(text):
    assert diagnostics(text) == []


def test_errors_of_several_top_level_forms_are_all_reported_in_order():
    text = "(defbpf-map)\n(defbpf-map m :kind :hsah :max-entries 1)\n42\n(bpf-fn f (ctx) (return :xdp-pass))\n"
    found = diagnostics(text)
    assert [(m.split("`")[0], ln) for m, ln, _, _ in found] == [("", 1), ("unknown map kind ", 2),
                                                                ("expected a declaration such as (defbpf-map …), got integer 42", 3)]


def test_declarations_land_in_the_module_with_their_values():
    module = parse(
        "(defbpf-map m :kind :hash :key-size 2 :value-size 8 :max-entries 7)\n"
        "(defbpf-map w :kind :lpm-trie :key-size 16 :value u32 :max-entries 3)\n"
        '(defbpf-program p :kind :tc :attach (:target "eth0" :direction :egress) :license "Dual MIT/GPL" '
        ':uses-maps (m w) :kernel "6.6" :max-insns 4096)\n'
        '(defbpf-policy pol :description "d" :programs (p) :maps (m))\n'
        "(bpf-fn p (c) (return :tc-act-ok))\n"
        "(defbpf-test t :program p :cases ((a :packet ((eth) (tcp :flags (syn ack) :dport 22)) :expect :tc-act-ok "
        ':truncate 20 :repeat 3) (b :packet-hex "00ff" :expect :tc-act-shot)) :expect-maps ((m 1 2) (w "10.0.0.0/8" 5)))\n',
        "t.tlisp",
    )
    m, w = module.maps
    assert (m.name, m.kind, m.key, m.value, m.max_entries, m.pin_path) == ("m", "hash", "u16", "u64", 7, None)
    assert (w.key, w.key_size, w.value) == (None, 16, "u32")
    (p,) = module.programs
    assert (p.kind, p.attach.target, p.attach.direction, p.license, p.uses_maps, p.kernel, p.max_insns) == (
        "tc", "eth0", "egress", "Dual MIT/GPL", ["m", "w"], "6.6", 4096)
    assert (module.policies[0].description, module.policies[0].programs, module.policies[0].maps) == ("d", ["p"], ["m"])
    assert module.functions[0].ctx == "c"
    (t,) = module.tests
    a, b = t.cases
    assert [(layer.kind, layer.fields) for layer in a.layers] == [("eth", {}), ("tcp", {"flags": ["syn", "ack"], "dport": 22})]
    assert (a.expect, a.truncate, a.repeat, b.packet_hex, b.expect, b.layers) == ("tc-act-ok", 20, 3, "00ff", "tc-act-shot", [])
    assert [(e.map, e.key, e.value) for e in t.expect_maps] == [("m", 1, 2), ("w", "10.0.0.0/8", 5)]


def test_expect_packet_hex_is_kept_as_written():
    module = parse('(defbpf-program p :kind :xdp :attach (:target "eth0"))\n(bpf-fn p (ctx) (return :xdp-pass))\n'
                   '(defbpf-test t :program p :cases ((a :packet-hex "0011" :expect :xdp-tx :expect-packet-hex "AAbb")))\n',
                   "t.tlisp")
    case = module.tests[0].cases[0]
    assert (case.packet_hex, case.expect_packet_hex) == ("0011", "AAbb")

"""`:maps-before ((MAP KEY VALUE) …)` in defbpf-test: entries written into
the maps before the cases run, with :expect-maps' key/value syntax (integer
keys, lpm prefixes as text) and the same checks."""

from __future__ import annotations

from tatara_build import mapdata

from .helpers import checked, position, problems, program

LPM = '(defbpf-map nets :kind :lpm-trie :key u32 :value u32 :max-entries 16)\n'


def with_test(seeds: str, maps: str = "(counts arr nets)") -> str:
    body = program("(return :xdp-pass)").replace(":uses-maps (counts arr events)", f":uses-maps {maps}")
    return LPM + body + f"(defbpf-test t :program p :maps-before ({seeds}) :cases ((c :packet ((eth)) :expect :xdp-pass)))\n"


def test_seeds_parse_into_the_ir_with_expect_maps_syntax():
    module = checked(with_test('(counts 7 100) (arr 3 1) (nets "10.1.2.0/24" 5)'))
    (test,) = module.tests
    assert [(s.map, s.key, s.value) for s in test.maps_before] == [("counts", 7, 100), ("arr", 3, 1), ("nets", "10.1.2.0/24", 5)]
    nets = next(m for m in module.maps if m.name == "nets")
    assert mapdata.key_bytes(nets, test.maps_before[2].key) == bytes([24, 0, 0, 0, 10, 1, 2, 0])


def test_seed_mistakes_are_reported_at_the_entry():
    text = with_test('(events 0 1) (arr 4 1) (counts 7 1) (counts 7 2) (nets "10.1.2.0/33" 1) (arr 0 -1)',
                     "(counts arr nets events)")
    found = problems(text)
    messages = [m for m, *_ in found]
    assert messages[0] == "ring-buf map `events` has no key/value contents to compare"
    assert "key 4 is beyond :max-entries 4 of `arr`" in messages
    assert "`counts` key 7 is written twice" in messages
    assert any("'10.1.2.0/33' is not an IPv4 prefix" in m for m in messages)
    assert "value -1 does not fit the map's value type u64" in messages
    assert (found[0][1], found[0][2]) == position(text, "(events 0 1)")


def test_a_seeded_map_must_be_used_by_the_program():
    text = with_test("(counts 1 1)", "(arr nets)")
    assert [m for m, *_ in problems(text)] == ["seeded map `counts` is not used by program `p` (nor by a program it tail-calls)"]

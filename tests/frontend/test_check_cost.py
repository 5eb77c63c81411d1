"""The loop budget: a loop is an error at its span when the verifier would
walk more than the program's budget of instructions, or set aside more than
8,192 branches, on its iterations (tables.VERIFIER_COSTS). The numbers in the
accepted cases are loops the verifier accepted when they were measured."""

from __future__ import annotations

import pytest

from tatara_build import tables

from .helpers import position, problems, program


def loop(n: int, body: str, ret: str = "(return :xdp-pass)") -> str:
    return program(f"(loop (i 0 {n}) {body}) {ret}")


def test_65536_map_adds_are_too_many_instructions_and_too_many_branches_at_the_loop():
    text = loop(65536, "(map-add arr 0 1)")
    found = problems(text)
    assert [m.split(",", 1)[0] for m, *_ in found] == ["this loop runs 65", "this loop runs 65"]
    assert "costs the verifier at least 1,8" in found[0][0] and "complexity limit of 1,000,000" in found[0][0]
    assert "131,072 branches" in found[1][0] and "limit of 8,192" in found[1][0]
    assert {(line, col) for _, line, col in found} == {position(text, "(loop")}


def test_loops_the_verifier_accepts_pass():
    # measured: 4096 array map-adds (114,371 insns), 65536 Ethernet parses
    # (~891,000 insns), 65536 map-sets and deletes
    assert problems(loop(4096, "(map-add arr i 1)")) == []
    assert problems(loop(65536, "(map-set arr 0 (u64 i))")) == []
    assert problems(loop(65536, "(map-delete counts i)")) == []
    eth = ("(let ((h (u32 0))) (loop (i 0 65536) (if-let (e (header ctx :eth)) (set! h (+ h (u32 (field e :type))))))"
           " (if (= h 7) (return :xdp-drop))) (return :xdp-pass)")
    assert problems(program(eth)) == []


def test_a_tcp_parse_in_a_loop_forks_per_ip_version_and_is_refused_early():
    text = loop(1024, "(if-let (t (header ctx :tcp)) (map-set arr 0 (u64 (field t :dst-port))))")
    found = problems(text)
    assert found and all("this loop runs 1,024 times" in m for m, *_ in found)


def test_max_insns_is_the_budget_when_given():
    text = (program("(loop (i 0 64) (map-add arr 0 1)) (return :xdp-pass)")
            .replace(":uses-maps (counts arr events)", ":uses-maps (counts arr events) :max-insns 1000"))
    ((message, line, col),) = problems(text)
    assert "over this program's :max-insns of 1,000" in message and (line, col) == position(text, "(loop")
    assert problems(text.replace(":max-insns 1000", ":max-insns 5000")) == []


def test_nested_loops_multiply_and_the_outer_loop_is_blamed():
    text = program("(loop (i 0 512) (loop (j 0 256) (map-set arr 0 (u64 j)))) (return :xdp-pass)")
    ((message, line, col),) = problems(text)
    assert "runs 512 times" in message and (line, col) == position(text, "(loop (i")
    cost = tables.VERIFIER_COSTS
    per_inner = cost["map-set"].insns + cost["loop-iteration"].insns  # (u64 j) is free
    assert f"at least {512 * (256 * per_inner + cost['loop-iteration'].insns):,}" in message


def test_a_loop_with_a_break_is_counted_once_and_if_arms_by_the_dearer_one():
    assert problems(loop(65536, "(if (= i 3) (break)) (map-add arr 0 1)")) == []
    dearer = loop(65536, "(if (= i 3) (map-add arr 0 1) (map-set arr 0 1))")
    assert len(problems(dearer)) == 2


def test_two_loops_over_budget_name_the_dearer_one_and_the_total():
    budget = ":uses-maps (counts arr events) :max-insns 1000"
    two = program("(loop (i 0 64) (map-add arr 0 1)) (loop (j 0 64) (map-add arr 0 1)) (return :xdp-pass)")
    assert problems(two.replace(":uses-maps (counts arr events)", budget)) == [
        ("this loop runs 64 times and costs the verifier at least 1,792 instructions (all loops of `p`: 3,584), "
         "over this program's :max-insns of 1,000", 6, 1)]
    one = problems(loop(64, "(map-add arr 0 1)").replace(":uses-maps (counts arr events)", budget))
    assert [m for m, *_ in one] == ["this loop runs 64 times and costs the verifier at least 1,792 instructions, "
                                    "over this program's :max-insns of 1,000"]


def test_each_cost_error_says_what_to_do_about_it():
    from tatara_build.check import check
    from tatara_build.errors import SourceError
    from tatara_build.frontend import parse

    with pytest.raises(SourceError) as err:
        check(parse(loop(65536, "(map-add arr 0 1)"), "t.tlisp"))
    assert [d.notes for d in err.value.diagnostics] == [
        ["the verifier walks every iteration of a bounded loop: run fewer iterations or do less per iteration"],
        ["look maps up and parse headers before the loop, or run fewer iterations"]]

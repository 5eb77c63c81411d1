"""Checker rules at their exact boundaries, each with its own failing input and message:
512 bytes of stack (and scopes giving their bytes back), 65,536 loop iterations, integer
ranges, shift widths, :uses-maps, and where each message points."""

from __future__ import annotations

import pytest

from .helpers import position, problems, program


def lets(n: int, body: str, prefix: str = "v") -> str:
    bindings = " ".join(f"({prefix}{i} (u64 {i}))" for i in range(n))
    return f"(let ({bindings}) {body})"


def stack_errors(text: str) -> list[tuple[str, int, int]]:
    return [p for p in problems(text) if "stack use" in p[0]]


def test_exactly_512_bytes_of_stack_is_accepted_and_513_is_not():
    assert problems(program(lets(64, "(return :xdp-pass)"))) == []
    text = program(lets(65, "(return :xdp-pass)"))
    ((message, line, col),) = stack_errors(text)
    assert message == "estimated stack use of `p` reaches 520 bytes here, over the BPF limit of 512"
    assert (line, col) == position(text, "(v64 ")


def test_stack_is_reported_once_at_the_first_binding_over_the_limit():
    text = program(lets(80, "(return :xdp-pass)"))
    ((message, line, col),) = stack_errors(text)
    assert "reaches 520 bytes" in message and (line, col) == position(text, "(v64 ")


def test_a_let_gives_its_stack_back_when_its_body_ends():
    # two blocks of 40 variables one after the other need 320 bytes, not 640
    body = f"(begin {lets(40, '(u32 0)', 'a')} {lets(40, '(return :xdp-pass)', 'b')})"
    assert problems(program(body)) == []
    nested = lets(40, lets(40, "(return :xdp-pass)", "b"), "a")
    assert "reaches 520 bytes" in stack_errors(program(nested))[0][0]


def test_a_loop_variable_takes_a_slot_while_the_loop_runs_and_gives_it_back():
    loop = "(loop (i 0 4) (if (= i 2) (break)))"
    assert problems(program(lets(63, f"(begin {loop} (return :xdp-pass))"))) == []
    assert stack_errors(program(lets(64, f"(begin {loop} (return :xdp-pass))")))
    # 8 loops in a row at the limit: each gives its slot back
    assert problems(program(lets(63, f"(begin {loop * 8} (return :xdp-pass))"))) == []


def test_map_key_and_value_temporaries_count_only_while_the_op_runs():
    set_op = "(map-set counts (u32 1) (u64 2))"  # key + value: 16 bytes
    assert problems(program(lets(62, f"(begin {set_op} {set_op} {set_op} (return :xdp-pass))"))) == []
    text = program(lets(63, f"(begin {set_op} (return :xdp-pass))"))
    ((message, line, col),) = stack_errors(text)
    assert "reaches 520 bytes" in message and (line, col) == position(text, "(map-set")
    get_op = "(map-get counts (u32 1))"  # key only: 8 bytes
    assert problems(program(lets(63, f"(begin {get_op} {get_op} {get_op} (return :xdp-pass))"))) == []
    assert stack_errors(program(lets(64, f"(begin {get_op} (return :xdp-pass))")))
    lookup = "(if-let (v (map-lookup counts (u32 1))) (map-set counts (u32 1) v))"
    assert problems(program(lets(62, f"(begin {lookup} {lookup} (return :xdp-pass))"))) == []
    delete = "(map-delete counts (u32 1))"
    assert problems(program(lets(63, f"(begin {delete} {delete} (return :xdp-pass))"))) == []
    assert stack_errors(program(lets(64, f"(begin {delete} (return :xdp-pass))")))
    out = "(event-output events (u64 1))"
    assert problems(program(lets(63, f"(begin {out} {out} (return :xdp-pass))"))) == []
    assert stack_errors(program(lets(64, f"(begin {out} (return :xdp-pass))")))


@pytest.mark.parametrize("end, ok", [(65536, True), (65537, False)])
def test_exactly_65536_loop_iterations_is_the_limit(end, ok):
    text = program(f"(loop (i 0 {end}) (map-set arr 0 1)) (return :xdp-pass)")
    found = problems(text)
    if ok:
        assert found == []
    else:
        assert found == [(f"loop runs {end} times, over the limit of 65536", *position(text, "(loop"))]


def test_loop_bounds_are_u32_and_an_empty_range_is_fine():
    assert problems(program("(loop (i 7 7) (break)) (return :xdp-pass)")) == []
    assert problems(program("(loop (i 4294967290 4294967295) (break)) (return :xdp-pass)")) == []
    text = program("(loop (i 1 4294967296) (break)) (return :xdp-pass)")
    assert [m for m, _, _ in problems(text)] == ["loop bounds must be u32 values (0 to 4294967295)"]
    text = program("(loop (i 5 4) (break)) (return :xdp-pass)")
    assert [m for m, _, _ in problems(text)] == ["loop end 4 is below its start 5"]
    text = program("(loop (i 100000 165537) (break)) (return :xdp-pass)")
    assert [m for m, _, _ in problems(text)] == ["loop runs 65537 times, over the limit of 65536"]


@pytest.mark.parametrize("ty, low, high", [("u8", 0, 255), ("i8", -128, 127), ("u16", 0, 65535),
                                           ("i32", -(2**31), 2**31 - 1), ("u64", 0, 2**64 - 1)])
def test_integer_literals_fit_their_type_exactly_to_the_ends(ty, low, high):
    for value in (low, high):
        assert problems(program(f"(let ((x ({ty} {value}))) (return :xdp-pass))")) == [], value
    for value in (low - 1, high + 1):
        if value > 2**64 - 1:
            continue  # the reader's own range (i64 min to u64 max)
        text = program(f"(let ((x ({ty} {value}))) (return :xdp-pass))")
        assert [m for m, _, _ in problems(text)] == [f"integer {value} does not fit in {ty} ({low} to {high})"]


@pytest.mark.parametrize("ty, bits", [("u8", 8), ("u32", 32), ("i64", 64)])
@pytest.mark.parametrize("op", ["<<", ">>"])
def test_shift_amounts_stay_below_the_width(ty, bits, op):
    assert problems(program(f"(let ((x ({op} ({ty} 1) {bits - 1}))) (return :xdp-pass))")) == []
    assert problems(program(f"(let ((x ({op} ({ty} 1) 0))) (return :xdp-pass))")) == []
    text = program(f"(let ((x ({op} ({ty} 1) {bits}))) (return :xdp-pass))")
    assert [m for m, _, _ in problems(text)] == [f"shift amount {bits} is out of range for {ty}"]


def test_a_map_used_in_the_body_must_be_listed_in_uses_maps():
    text = ("(defbpf-map counts :kind :hash :key u32 :value u64 :max-entries 16)\n"
            "(defbpf-map spare :kind :array :key u32 :value u64 :max-entries 4)\n"
            '(defbpf-program p :kind :xdp :attach (:target "eth0") :uses-maps (counts))\n'
            "(bpf-fn p (ctx) (map-add spare (u32 0) (u64 1)) (return :xdp-pass))\n")
    ((message, line, col),) = problems(text)
    assert message == "map `spare` is not listed in :uses-maps of program `p`"
    assert (line, col) == position(text, "(map-add spare")
    from tatara_build.check import check
    from tatara_build.errors import SourceError
    from tatara_build.frontend import parse

    with pytest.raises(SourceError) as err:
        check(parse(text, "t.tlisp"))
    assert err.value.diagnostics[0].notes == ["add it: :uses-maps (counts spare)"]
    for op in ("(map-get spare (u32 0))", "(map-set spare (u32 0) (u64 1))",
               "(if-let (v (map-lookup spare (u32 0))) (u32 0) (u32 1))"):
        body = text.replace("(map-add spare (u32 0) (u64 1))", op)
        assert [m for m, _, _ in problems(body)] == ["map `spare` is not listed in :uses-maps of program `p`"], op


def test_a_map_listed_twice_in_uses_maps_is_an_error():
    text = program("(return :xdp-pass)").replace(":uses-maps (counts arr events)", ":uses-maps (counts arr counts events)")
    assert [m for m, _, _ in problems(text)] == ["map `counts` is listed twice in :uses-maps"]


def test_errors_come_out_in_source_order():
    text = program("(return :xdp-pass)") + "(bpf-fn orphan (c) (return :xdp-pass))\n"
    text = text.replace("(bpf-fn p (ctx)\n(return :xdp-pass)", "(bpf-fn p (ctx)\n(call wat) (return :xdp-dorp)")
    found = problems(text)
    assert [m.split("`")[0] for m, _, _ in found] == ["unknown helper ", "unknown return action ", "bpf-fn "]
    assert [(ln, c) for _, ln, c in found] == sorted((ln, c) for _, ln, c in found)


def test_a_map_lookup_key_counts_on_the_stack_where_the_lookup_is():
    lookup = "(if-let (v (map-lookup counts (u32 1))) (u32 0) (u32 1))"
    assert problems(program(lets(63, f"(begin {lookup} {lookup} (return :xdp-pass))"))) == []
    text = program(lets(64, f"(begin {lookup} (return :xdp-pass))"))
    ((message, line, col),) = stack_errors(text)
    assert "reaches 520 bytes" in message and (line, col) == position(text, "(map-lookup")


def test_after_a_map_op_the_stack_is_back_to_what_it_was_not_to_the_op_alone():
    get_op = "(map-get counts (u32 1))"
    text = program(lets(63, f"(begin {get_op} (let ((y (u64 1))) (let ((z (u64 2))) (return :xdp-pass))))"))
    ((message, line, col),) = stack_errors(text)
    assert "reaches 520 bytes" in message and (line, col) == position(text, "(let ((z")


def test_a_struct_value_takes_its_c_size_rounded_up_to_8_byte_slots():
    """63 u64 slots (504 bytes) and a 12-byte struct: 16 bytes more, 520 in all; an 8-byte
    struct fills the stack to exactly 512."""
    head = "(defbpf-struct twelve (a u32) (b u8) (c u32))\n(defbpf-struct eight (a u32) (b u32))\n"
    over = head + program(lets(63, "(let ((x (make twelve :a 1))) (return :xdp-pass))"))
    assert [m for m, *_ in stack_errors(over)] == [
        "estimated stack use of `p` reaches 520 bytes here, over the BPF limit of 512"]
    assert problems(head + program(lets(63, "(let ((x (make eight :a 1))) (return :xdp-pass))"))) == []


LPM_MAPS = ("(defbpf-map six :kind :lpm-trie :key-size 16 :value u32 :max-entries 4)\n"
            "(defbpf-map four :kind :lpm-trie :key u32 :value u32 :max-entries 4)\n")


def with_lpm_maps(body: str, head: str = "") -> str:
    return head + LPM_MAPS + program(body).replace("(counts arr events)", "(counts arr events four six)")


def test_a_64_byte_struct_and_lpm_keys_take_their_own_slots_past_504_bytes():
    """After 63 u64 slots: a 64-byte struct takes 64 more (568); an IPv6 lpm key (a 4-byte
    prefix length and 16 address bytes) 24 (528); an IPv4 one 8, which fits exactly."""
    big = with_lpm_maps(lets(63, "(let ((x (make big))) (return :xdp-pass))"), "(defbpf-struct big (a (array u64 8)))\n")
    v6 = with_lpm_maps(lets(63, "(if (> (map-get six (lpm-key 64 (u64 1) (u64 2))) 0) (return :xdp-drop)) "
                                "(return :xdp-pass)"))
    v4 = with_lpm_maps(lets(63, "(if (> (map-get four (lpm-key 24 (u32 1))) 0) (return :xdp-drop)) (return :xdp-pass)"))
    over = "estimated stack use of `p` reaches {} bytes here, over the BPF limit of 512"
    assert [m for m, *_ in stack_errors(big)] == [over.format(568)]
    assert [m for m, *_ in stack_errors(v6)] == [over.format(528)]
    assert problems(v4) == []


def test_a_map_value_pointer_takes_one_8_byte_slot():
    text = program(lets(63, "(if-let (v (map-lookup counts (u32 1))) (return :xdp-drop)) (return :xdp-pass)"))
    assert problems(text) == []  # 504 + 8: exactly 512

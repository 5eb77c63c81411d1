"""The guest console parser (vm/results.py) on outputs a real run produces and the edge cases
around them: an object holding two programs (each keeps its own log and verdict; in bpftool -d's
form, which nix/vm_check.py still parses), timings, bpftool's JSON with entries it does not key."""

from __future__ import annotations

import json

from tatara_build.vm import results, runner

from .test_vm_unit import HASH_DUMP, LOAD_OK, SHOW, console

REJECT_LOG = """func#0 @0
0: R1=ctx(off=0,imm=0) R10=fp0
0: (61) r2 = *(u32 *)(r1 +4)
1: (71) r0 = *(u8 *)(r2 +0)
invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)
R2 offset is outside of the packet
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0"""

TWO_PROGRAMS = f"""libbpf: sec 'xdp': found program 'first' at insn offset 0 (0 bytes), code size 10 insns (80 bytes)
libbpf: sec 'xdp': found program 'second' at insn offset 10 (80 bytes), code size 10 insns (80 bytes)
libbpf: prog 'first': -- BEGIN PROG LOAD LOG --
verification time 11 usec
stack depth 8
processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 1
-- END PROG LOAD LOG --
libbpf: prog 'second': -- BEGIN PROG LOAD LOG --
{REJECT_LOG}
-- END PROG LOAD LOG --
libbpf: prog 'second': failed to load: -13
libbpf: failed to load object '/job/o0.o'
Error: failed to load object file"""


def test_every_program_of_one_object_keeps_its_own_log_and_failure():
    logs = results.load_logs(TWO_PROGRAMS)
    assert sorted(logs) == ["first", "second"]
    assert (logs["first"].program, logs["first"].failed) == ("first", False)
    assert (logs["second"].program, logs["second"].failed) == ("second", True)
    assert logs["second"].text == REJECT_LOG
    assert "stack depth 8" in logs["first"].text and "stack depth" not in logs["second"].text
    assert results.log_stats(logs["first"].text) == {"verified_insns": 7, "total_states": 1, "peak_states": 1,
                                                     "stack_depth": 8, "verification_time_us": 11}
    assert results.log_stats(logs["second"].text) == {"verified_insns": 2, "total_states": 0, "peak_states": 0}
    assert results.program_names(TWO_PROGRAMS) == ["first", "second"]


def test_a_rejected_second_program_is_reported_with_its_log_and_the_first_is_not_blamed(tmp_path):
    obj = tmp_path / "o.o"
    obj.write_bytes(b"\x7fELF")
    steps = results.steps(console(("load 0 o0.o", TWO_PROGRAMS, 255)))
    got = runner._object_result(0, runner.ObjectJob(obj, {}), steps)
    assert not got.loaded
    verdicts = {p.program: (p.verdict, p.verifier_log) for p in got.programs}
    assert verdicts == {"first": ("not-loaded", None), "second": ("rejected", REJECT_LOG)}
    assert got.loader_output is None  # the verifier log explains it
    second = next(p for p in got.programs if p.program == "second")
    assert second.verified_insns == 2


def test_a_log_without_failure_line_is_not_a_rejection(tmp_path):
    obj = tmp_path / "o.o"
    obj.write_bytes(b"x")
    output = TWO_PROGRAMS.replace("libbpf: prog 'second': failed to load: -13\n", "")
    got = runner._object_result(0, runner.ObjectJob(obj, {}), results.steps(console(("load 0 o0.o", output, 255))))
    assert [p.verdict for p in got.programs] == ["not-loaded", "not-loaded"]
    assert got.loader_output.endswith("Error: failed to load object file")


def test_step_bodies_keep_their_text_and_timings_are_guest_seconds():
    raw = "@@BEGIN run 0 p p0.bin 1 0\n  Xdp said: Return value: 2, duration: 5ns  \n\n@@END 0 10.50 10.75\n"
    (step,) = results.steps(raw)
    assert step.output == "  Xdp said: Return value: 2, duration: 5ns  "
    assert (step.kind, step.args, step.rc, step.seconds) == ("run", ["0", "p", "p0.bin", "1", "0"], 0, 0.25)
    (untimed,) = results.steps("@@BEGIN show 0 x\nX\n@@END 3\n")
    assert (untimed.output, untimed.rc, untimed.seconds) == ("X", 3, None)


def test_console_noise_before_a_marker_and_between_blocks_is_ignored():
    text = ("[    1.5] random: crng init done\n"
            "[    1.6] @@BEGIN dump 0 hits\n" + HASH_DUMP + "\n@@END 0 1.00 1.01\n"
            "kernel chatter outside any block\n@@END 9\n"
            "@@BEGIN show 0 p\n" + SHOW + "\n@@END 0 1.01 1.02\n")
    found = results.steps(text)
    assert [(s.kind, s.args, s.rc) for s in found] == [("dump", ["0", "hits"], 0), ("show", ["0", "p"], 0)]
    assert results.map_entries(found[0].output) == {80: 4}
    assert found[1].output == SHOW


def test_inspect_items_without_a_pinned_path_are_skipped_and_the_rest_are_usable():
    batch = json.dumps([{"error": "bpftool: something"}, {"command": ["prog", "show", "id", "7"], "output": {}},
                        {"command": ["map", "dump", "pinned", "/sys/fs/bpf/0/m/hits"], "output": json.loads(HASH_DUMP)},
                        {"command": ["prog", "show", "pinned", "/sys/fs/bpf/0/x/odd"], "output": {}}])
    steps = results.steps(console(("inspect", batch, 0)))
    assert [(s.kind, s.args, s.rc) for s in steps] == [("dump", ["0", "hits"], 0)]
    checks = runner._map_checks([runner.MapJob(0, "t", "hits", 80, 4)], steps)
    assert [(c.got, c.passed) for c in checks] == [(4, True)]
    assert results.steps(console(("inspect", "not json", 0))) == []


def test_map_dump_entries_without_a_key_do_not_hide_later_entries():
    dump = json.dumps([{"error": "lookup failed"},
                       {"key": ["0x01", "0x00", "0x00", "0x00"], "value": ["0xff", "0xff", "0xff", "0xff"]},
                       {"key": ["0x02", "0x00", "0x00", "0x00"]},
                       {"key": ["0x00", "0x01"], "values": [{"cpu": 0, "value": ["0x01"]}, {"cpu": 1, "value": ["0x02"]}]}])
    assert results.map_entries(dump) == {1: 0xFFFFFFFF, 256: 3}
    assert results.map_entries("Error: can't dump") is None
    assert results.map_entries("[]") == {}


def test_return_values_large_and_negative_and_every_batched_run():
    assert results.prog_run("Return value: 4294967295, duration: 12ns") == (4294967295, 12)
    assert results.prog_run("Return value: -1, duration (average): 3 ns") == (-1, 3)
    assert results.prog_run("Error: run failed") is None
    runs = "Return value: 2, duration (average): 7ns\nReturn value: 18446744073709551615, duration (average): 9ns\n"
    assert results.prog_runs(runs) == [(2, 7), (18446744073709551615, 9)]
    assert results.prog_show("not json") == {}
    assert results.prog_show('{"bytes_xlated": 8}') == {"xlated_bytes": 8, "jited_bytes": None}


def test_subprograms_in_text_are_not_entry_programs_and_names_are_not_repeated():
    output = ("libbpf: sec '.text': found program 'helper' at insn offset 0\n"
              "libbpf: sec 'tc': found program 'ingress' at insn offset 0\n"
              "libbpf: sec 'tc': found program 'ingress' at insn offset 0\n"
              "libbpf: sec 'xdp/frags': found program 'egress' at insn offset 9\n")
    assert results.program_names(output) == ["ingress", "egress"]


def test_pinned_programs_are_read_from_the_pins_listing_only():
    listing = ("/sys/fs/bpf/0/p/drop_syn\n/sys/fs/bpf/12/p/other_prog\n/sys/fs/bpf/0/m/syn_drops\n"
               "/sys/fs/bpf/1/p/nested/deeper\n  /sys/fs/bpf/2/p/indented\nnot a path\n/sys/fs/bpf/3/p/last")
    found = results.steps(console(("pins", listing, 0)))
    assert results.pinned_programs(found) == {("0", "drop_syn"), ("12", "other_prog"), ("3", "last")}
    assert results.pinned_programs(results.steps(console(("pins", "", 0)))) == set()
    assert results.pinned_programs(results.steps(console(("load 0 o0.o", LOAD_OK, 0)))) is None


def test_map_dump_keeps_raw_bytes_and_skips_only_the_entries_it_cannot_read():
    dump = json.dumps([{"error": "lookup failed"}, "not an entry",
                       {"key": ["0x0a", "0x00"], "value": ["0x01", "0x02"]},
                       {"key": ["0x0b", "0x00"], "values": [{"cpu": 0, "value": ["0x03"]}, {"cpu": 1, "value": ["0x04"]}]},
                       {"key": ["0x0c", "0x00"]}])
    assert results.map_dump(dump) == [(b"\x0a\x00", [b"\x01\x02"]), (b"\x0b\x00", [b"\x03", b"\x04"]), (b"\x0c\x00", [])]
    assert results.map_dump('{"key": []}') is None and results.map_dump("Error: no such map") is None


def test_drained_records_are_filed_under_their_object_and_map_symbol():
    output = ("EVENT /sys/fs/bpf/0/m/exec_events 0a0b0c0d\n"
              "EVENT /sys/fs/bpf/1/m/exec_events -\n"
              "LOST /sys/fs/bpf/0/m/perf_out 3\n"
              "error: /sys/fs/bpf/2/m/ring.buf: cannot open\n"
              "EVENT /sys/fs/bpf/0/m/exec_events ff\n")
    streams = results.drained_streams(output)
    assert {key: (s.object, s.map, s.records, s.lost, s.error) for key, s in streams.items()} == {
        (0, "exec_events"): (0, "exec_events", ["0a0b0c0d", "ff"], 0, None),
        (1, "exec_events"): (1, "exec_events", [""], 0, None),
        (0, "perf_out"): (0, "perf_out", [], 3, None),
        (2, "ring.buf"): (2, "ring.buf", [], 0, "cannot open"),
    }


def test_packet_outputs_are_keyed_by_case_number():
    output = "out 0 \nout 7 0a0bff\nout 12 00\nnot out 3 ff\nout x ab\n"
    assert results.packet_outputs(output) == {"0": b"", "7": b"\x0a\x0b\xff", "12": b"\x00"}

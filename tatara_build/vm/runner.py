"""One VM boot for a whole invocation: every object is loaded through the
target kernel's verifier, every packet test case runs with
BPF_PROG_TEST_RUN (`:repeat N` runs it N times: the maps see every run, and
the kernel reports the average ns per run), then the maps are dumped."""

from __future__ import annotations

import difflib
import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import eventdata, mapdata, packets, structs, tables
from ..errors import VmError
from . import initramfs, qemu, results, snapshot, sourcemap
from .guest import DONE, SAFE_TOKEN
from .kernels import Kernel, sha256_file
from .results import CaseResult, EventCheck, KernelInfo, MapCheck, ObjectResult, ProgramResult, Verification

# Kinds whose attach target the guest looks up on the booted kernel, with
# how many leading characters the kernel's names must share with a missing
# target to be listed as suggestions.
CHECKED_TARGETS = {"kprobe": 4, "tracepoint": 3, "lsm": 2}
DEFAULT_TIMEOUT = 180.0  # seconds; TCG boots in ~3 s, the rest is BPF work
_IDENT = re.compile(rf"^[A-Za-z_][A-Za-z0-9_]{{0,{tables.MAX_NAME_LENGTH - 1}}}$")


@dataclass
class ObjectJob:
    path: Path
    max_insns: dict[str, int] = field(default_factory=dict)  # by ELF symbol
    default_max_insns: int = tables.DEFAULT_MAX_INSNS
    generated: list[Path] = field(default_factory=list)  # its generated sources, for failure mapping
    source: Path | None = None  # the .tlisp it was built from (to show the failing form's line)
    # ELF symbol -> (kind, attach target) of programs whose target the booted
    # kernel must have (kprobe functions, tracepoints, LSM hooks).
    targets: dict[str, tuple[str, str]] = field(default_factory=dict)
    # `:maps-before` entries written before any case runs: (map symbol, key
    # bytes, value bytes). bpftool writes a per-CPU map's value on every CPU
    # (the guest has one).
    seeds: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    # Ring buffers and perf-event arrays (map symbols) whose records the
    # cases produce: read while the cases run, reported in Verification.events.
    events: list[str] = field(default_factory=list)
    # `:expect-events` of its tests: the records each map gets during each
    # test's own cases (the guest's tool reads them around those cases).
    expect_events: list[EventJob] = field(default_factory=list)
    # prog-array slots filled with the seeds: (map symbol, key bytes, program symbol)
    slots: list[tuple[str, bytes, str]] = field(default_factory=list)
    # `:trigger` tests, run after every packet case
    triggers: list[TriggerJob] = field(default_factory=list)

    # `:consts`: (file offset, bytes) written into a copy of the object's
    # .rodata before it goes into the guest, as libbpf's skeleton writes the
    # rodata map's initial value; the built object is never changed.
    patches: list[tuple[int, bytes]] = field(default_factory=list)
    consts: dict[str, int] = field(default_factory=dict)  # name -> value the patches set (for reports)

    def data(self) -> bytes:
        data = bytearray(self.path.read_bytes())
        for offset, value in self.patches:
            assert 0 <= offset and offset + len(value) <= len(data), "cases.jobs places patches inside .rodata"
            data[offset:offset + len(value)] = value
        return bytes(data)

    @property
    def label(self) -> str:
        """The object's path; a copy with `:consts` gets them appended: `x.o[limit=3]`."""
        if not self.consts:
            return str(self.path)
        return f"{self.path}[{','.join(f'{k}={v}' for k, v in self.consts.items())}]"


@dataclass
class EventJob:
    test: str
    map: str  # ELF name of the map (the pin name)
    name: str  # as the source writes it
    type: str  # the record type (checker's spelling)
    expected: list = field(default_factory=list)  # values as the test writes them (eventdata)
    layouts: dict = field(default_factory=dict)  # struct layouts, for struct records


@dataclass
class TriggerJob:
    """A `:trigger` test: attach `program` (a pinned ELF symbol) as `kind`
    at `target`, do `actions` (tatara-guest act's argument words), detach."""

    test: str
    program: str
    kind: str
    target: str
    actions: list[str]
    count: int  # how many actions


@dataclass
class CaseJob:
    object_index: int
    test: str
    case: str
    program: str  # ELF symbol of the program (the pin name)
    packet: bytes
    expect: str
    expect_value: int
    repeat: int = 1
    kind: str = ""  # the program's kind
    reads_packet: bool = False  # its body parses headers (direct packet access)
    expect_packet: bytes | None = None  # `:expect-packet`: what test-run must leave (data_out)


@dataclass
class MapJob:
    object_index: int
    test: str
    map: str  # ELF name of the map (the pin name)
    key: int | str  # as the user wrote it (lpm: "10.1.2.0/24")
    value: int
    name: str = ""  # as the user wrote it (`syn-drops`), for reports
    # The key as the kernel stores it (mapdata.key_bytes); None: an integer
    # key, matched against the dumped key read as little-endian.
    key_bytes: bytes | None = None
    lpm: bool = False  # compare keys with the bits past the prefix cleared
    value_type: str | None = None  # decode values as this type (None: unsigned)
    # Struct values: the map (its value type names the struct) and every
    # struct's layout; `value` is then the test's (make …), compared on the
    # fields it names (mapdata.matches).
    decl: object = None
    layouts: dict | None = None


def run(objects: list[ObjectJob], kernel: Kernel, cases: list[CaseJob] = (), maps: list[MapJob] = (),
        *, timeout: float = DEFAULT_TIMEOUT, accel: str = "auto") -> Verification:
    plan, payload = _plan(objects, list(cases), list(maps))  # payload includes /job/runs
    boot = snapshot.boot_job(kernel, payload + [("job/plan", 0o100644, plan.encode())], timeout=timeout, accel=accel)
    if DONE not in boot.console:
        lines = boot.console.splitlines()
        panic = next((line for line in lines if "Kernel panic" in line), None)  # above the stack dump
        tail = "\n".join(lines[-qemu.TAIL_LINES:])
        raise VmError(f"the VM stopped before finishing its plan ({boot.accel})"
                      + (f": {panic.strip()}" if panic else "") + f"; console tail:\n{tail}")
    steps = results.steps(boot.console)
    pinned = results.pinned_programs(steps)
    found_targets = results.attach_targets(steps)
    object_results = [_object_result(i, job, steps, pinned, found_targets) for i, job in enumerate(objects)]
    case_results = _case_results(list(cases), steps)
    if failed := results.seed_error(steps):  # the cases ran on maps without their :maps-before
        for result in case_results:
            result.passed, result.error = False, f"writing :maps-before failed: {failed}"
    map_checks = _map_checks(list(maps), steps)
    streams = results.events(steps, _event_maps(objects))
    event_checks = _event_checks(objects, list(cases), steps)
    triggers = _trigger_results(objects, steps)
    _skip_untestable(list(cases), case_results, [*map_checks, *event_checks], kernel)
    verified = all(o.loaded and all(p.verdict == "accepted" for p in o.programs) for o in object_results)
    passed = (verified and all(c.passed or c.skipped for c in case_results) and all(t.passed for t in triggers)
              and all(m.passed or m.skipped for m in [*map_checks, *event_checks]))
    load_steps = [s.seconds for s in steps if s.kind == "load" and s.seconds is not None]
    return Verification(
        kernel=KernelInfo(name=kernel.name, package=kernel.package, version=kernel.version, sha256=kernel.sha256),
        accel=boot.accel, boot_seconds=round(boot.seconds, 3),
        guest_ready_seconds=round(boot.ready_seconds, 3) if boot.ready_seconds else None,
        load_seconds=round(sum(load_steps), 3) if load_steps else None,
        objects=object_results, cases=case_results, maps=map_checks, events=streams, event_checks=event_checks,
        triggers=triggers,
        verified=verified, passed=passed,
    )


def _plan(objects: list[ObjectJob], cases: list[CaseJob], maps: list[MapJob] = ()) -> tuple[str, list[initramfs.Entry]]:
    """The guest's plan and the files it names. Every token is ours (indexes,
    file names) or an ELF symbol checked against a C identifier pattern."""
    lines, payload = [], []
    for i, job in enumerate(objects):
        payload.append((f"job/o{i}.o", 0o100644, job.data()))
    # one guest process for all loads (each object still in a child of its own)
    payload.append(("job/loads", 0o100644, "".join(f"{i} o{i}.o\n" for i in range(len(objects))).encode()))
    lines += ["loads", "pins"]
    lines += _target_lines(objects, payload)
    lines += _seed_lines(objects, payload)
    lines += _case_lines(objects, cases, payload)
    lines += _trigger_lines(objects, payload)
    if any(case.expect_packet is not None for case in cases):
        lines.append("outs")
    lines += _inspect_lines(objects, maps, payload)
    assert all(SAFE_TOKEN.match(tok) for line in lines for tok in line.split())
    return "\n".join(lines) + "\n", payload


def _check_symbols(symbols) -> None:
    for symbol in symbols:
        if not _IDENT.match(symbol):
            raise VmError(f"map symbol {symbol!r} is not a C identifier")


def _target_lines(objects: list[ObjectJob], payload: list) -> list[str]:
    """`targets`: the attach targets the guest checks exist on its kernel."""
    targets = sorted({t for job in objects for t in job.targets.values() if t[0] in CHECKED_TARGETS})
    for kind, target in targets:
        if not re.fullmatch(tables.ATTACH_TARGET_SYNTAX[kind][0], target):
            raise VmError(f"{kind} attach target {target!r} is not {tables.ATTACH_TARGET_SYNTAX[kind][1]}")
    if not targets:
        return []
    payload.append(("job/targets", 0o100644, "".join(f"{k} {t} {t[:CHECKED_TARGETS[k]]}\n" for k, t in targets).encode()))
    return ["targets"]


def _seed_lines(objects: list[ObjectJob], payload: list) -> list[str]:
    """`seeds`: map entries written before the cases (:maps-before, prog-array slots)."""
    seeds = []
    for i, job in enumerate(objects):
        for symbol, key, value in job.seeds:
            _check_symbols([symbol])
            seeds.append(f"{i} {symbol} {key.hex()} {value.hex()}\n")
        for symbol, key, program in job.slots:
            if not (_IDENT.match(symbol) and _IDENT.match(program)):
                raise VmError(f"prog-array slot {symbol!r} -> {program!r} is not C identifiers")
            seeds.append(f"{i} {symbol} {key.hex()} @{program}\n")
    if not seeds:
        return []
    payload.append(("job/seeds", 0o100644, "".join(seeds).encode()))
    return ["seeds"]


def _case_lines(objects: list[ObjectJob], cases: list[CaseJob], payload: list) -> list[str]:
    """The packet runs; with event expectations, each with readers on its object's event maps."""
    _check_symbols([symbol for _, symbol in _event_maps(objects)]
                   + [e.map for job in objects for e in job.expect_events])
    if not any(job.expect_events for job in objects):
        return _runs(cases, payload)
    pins = {i: list(dict.fromkeys([*job.events, *(e.map for e in job.expect_events)])) for i, job in enumerate(objects)}
    return _event_runs(cases, {i: [f"/sys/fs/bpf/{i}/m/{m}" for m in maps_] for i, maps_ in pins.items()}, payload)


def _inspect_lines(objects: list[ObjectJob], maps: list[MapJob], payload: list) -> list[str]:
    """`inspect`: each object's programs shown, the expected maps dumped."""
    payload.append(("job/events", 0o100644, "".join(f"/sys/fs/bpf/{i}/m/{m}\n" for i, m in _event_maps(objects)).encode()))
    # Only the maps a test expects are dumped: a ring buffer or perf-event
    # array cannot be, and its error would end the inspect batch.
    dumps = list(dict.fromkeys((m.object_index, m.map) for m in maps))
    _check_symbols([symbol for _, symbol in dumps])
    payload.append(("job/dumps", 0o100644, "".join(f"{i} {m}\n" for i, m in dumps).encode()))
    return ["inspect", *(f"show {i}" for i in range(len(objects))), *(f"dump {i} {m}" for i, m in dumps)]


def _triggers(objects: list[ObjectJob]) -> list[tuple[int, TriggerJob]]:
    """(object index, job) of every `:trigger` test, in plan order."""
    return [(i, t) for i, job in enumerate(objects) for t in job.triggers]


_ACTION_WORD = re.compile(r"open|connect|[0-9]{1,10}|" + tables.TRIGGER_PATH.pattern)


def _trigger_lines(objects: list[ObjectJob], payload: list) -> list[str]:
    """`trigger K`: attach, act and detach, with readers on the object's
    event maps around it. The words go in files (a target and a path hold
    `/`, which plan tokens may not): /job/attachK `PIN KIND TARGET`,
    /job/triggerK the action words, /job/teventsK the event map pins."""
    lines = []
    for k, (i, t) in enumerate(_triggers(objects)):
        syntax = tables.ATTACH_TARGET_SYNTAX.get(t.kind)
        if t.kind not in tables.TRIGGER_KINDS or not syntax or not re.fullmatch(syntax[0], t.target):
            raise VmError(f"cannot attach a {t.kind} program at {t.target!r} in the VM")
        if not _IDENT.match(t.program) or not all(_ACTION_WORD.fullmatch(w) for w in t.actions):
            raise VmError(f"trigger of {t.program!r} has words the guest cannot take: {t.actions}")
        pins = [f"/sys/fs/bpf/{i}/m/{m}" for m in dict.fromkeys([*objects[i].events,
                                                                 *(e.map for e in objects[i].expect_events)])]
        payload += [(f"job/attach{k}", 0o100644, f"/sys/fs/bpf/{i}/p/{t.program} {t.kind} {t.target}\n".encode()),
                    (f"job/trigger{k}", 0o100644, " ".join(t.actions).encode()),
                    (f"job/tevents{k}", 0o100644, " ".join(pins).encode())]
        lines.append(f"trigger {k}")
    return lines


def _trigger_results(objects: list[ObjectJob], steps: list[results.Step]) -> list[results.TriggerResult]:
    ran = {s.args[0]: s for s in steps if s.kind == "trigger" and s.args}
    out = []
    for k, (_, t) in enumerate(_triggers(objects)):
        actions, error = results.trigger_outcome(ran.get(str(k)), t.count)
        out.append(results.TriggerResult(test=t.test, program=t.program, attach=f"{t.kind} {t.target}",
                                         actions=actions, error=error, passed=error is None))
    return out


def _event_maps(objects: list[ObjectJob]) -> list[tuple[int, str]]:
    """(object index, map symbol) of every event map to read, in order."""
    return list(dict.fromkeys((i, symbol) for i, job in enumerate(objects) for symbol in job.events))


def _run_line(n: int, case: CaseJob, payload: list) -> tuple[str, str]:
    """Case n's packet file; its fallback plan line and its batch command."""
    if not _IDENT.match(case.program):
        raise VmError(f"program symbol {case.program!r} is not a C identifier")
    payload.append((f"job/p{n}.bin", 0o100644, case.packet))
    out = case.expect_packet is not None  # keep test-run's data_out (the `outs` step prints it)
    return (f"run {case.object_index} {case.program} p{n}.bin {case.repeat} {n}" + (" out" if out else ""),
            f"prog run pinned /sys/fs/bpf/{case.object_index}/p/{case.program} data_in /job/p{n}.bin"
            + (f" data_out /tmp/o{n}.bin" if out else "") + f" repeat {case.repeat}")


def _runs(cases: list[CaseJob], payload: list) -> list[str]:
    """Every case in one bpftool batch (`run` lines: its fallback)."""
    lines, batch = ["runs"] if cases else [], []
    for n, case in enumerate(cases):
        line, command = _run_line(n, case, payload)
        lines.append(line)
        batch.append(command)
    payload.append(("job/runs", 0o100644, "".join(f"{b}\n" for b in batch).encode()))
    return lines


def _event_runs(cases: list[CaseJob], event_pins: dict[int, list[str]], payload: list) -> list[str]:
    """With events expected: the cases of each test (in order) as a batch of
    their own, run by the guest's tool between opening readers on the
    object's event maps and draining them, so each test sees the records
    its own cases sent (and a perf-event array has its reader before the
    program runs). `runs-events K FIRST`: batch K holds cases FIRST…"""
    lines: list[str] = []
    segments: list[list[int]] = []
    for n, case in enumerate(cases):
        if not segments or (cases[segments[-1][0]].object_index, cases[segments[-1][0]].test) != (case.object_index, case.test):
            segments.append([])
        segments[-1].append(n)
    for k, members in enumerate(segments):
        pins = event_pins.get(cases[members[0]].object_index, [])
        payload.append((f"job/events{k}", 0o100644, " ".join(pins).encode()))
        run_lines, batch = [], []
        for n in members:
            line, command = _run_line(n, cases[n], payload)
            run_lines.append(line)
            batch.append(command)
        payload.append((f"job/runs{k}", 0o100644, "".join(f"{b}\n" for b in batch).encode()))
        lines += [f"runs-events {k} {members[0]}", *run_lines]
    return lines


def _event_checks(objects: list[ObjectJob], cases: list[CaseJob], steps: list[results.Step]) -> list[EventCheck]:
    """Each test's expected events against what its batch's drain printed."""
    drained: dict[tuple[int, str], dict] = {}  # (object, test) -> its batch's streams
    triggers = _triggers(objects)
    for step in steps:
        if step.kind == "runs-events" and len(step.args) == 2 and int(step.args[1]) < len(cases):
            case = cases[int(step.args[1])]
            drained[(case.object_index, case.test)] = results.drained_streams(step.output)
        if step.kind == "trigger" and step.args and int(step.args[0]) < len(triggers):
            i, t = triggers[int(step.args[0])]
            drained[(i, t.test)] = results.drained_streams(step.output)
    out = []
    for i, job in enumerate(objects):
        for e in job.expect_events:
            check = EventCheck(test=e.test, map=e.name, symbol=e.map,
                               expected=[eventdata.show_expected(e.type, v) for v in e.expected], passed=False)
            found = drained.get((i, e.test))
            stream = (found or {}).get((i, e.map))
            if found is None:
                check.error = "the test's cases (or trigger) did not run"
            elif stream is not None and stream.error:
                check.error = stream.error
            else:
                got = [bytes.fromhex(r) for r in (stream.records if stream else [])]
                check.got = [eventdata.show(e.type, r, e.layouts) for r in got]
                check.diff = eventdata.diff(e.type, e.expected, got, e.layouts)
                if stream is not None and stream.lost:
                    check.diff.append(f"the kernel lost {stream.lost} record(s) (perf buffer full)")
                check.passed = not check.diff
            out.append(check)
    return out


def _object_result(index: int, job: ObjectJob, steps: list[results.Step],
                   pinned: set[tuple[str, str]] | None = None,
                   targets: dict[tuple[str, str], tuple[str, list[str]]] | None = None) -> ObjectResult:
    """`pinned`: (object index, program) pairs the guest found pinned after
    all loads (None: the boot listed none, trust the load step alone)."""
    load = next((s for s in steps if s.kind == "load" and s.args[0] == str(index)), None)
    output = load.output if load else ""
    logs = results.load_logs(output)
    shows = {s.args[1]: s.output for s in steps if s.kind == "show" and s.args[0] == str(index)}
    programs = []
    for name in results.program_names(output):
        budget = job.max_insns.get(name, job.default_max_insns)
        log = logs.get(name)
        stats = results.log_stats(log.text) if log else {}
        if name in shows:
            verdict = "accepted"
            stats.update({k: v for k, v in results.prog_show(shows[name]).items() if v is not None})
            if stats.get("verified_insns", 0) > budget:
                verdict = "over-budget"
        else:
            verdict = "rejected" if log and log.failed else "not-loaded"
        result = ProgramResult(program=name, verdict=verdict, max_insns=budget, **stats)
        if verdict == "rejected" and log:
            result.verifier_log = log.text
            if where := sourcemap.failing_line(log.text):
                result.failing_source = where[0]
                if span := sourcemap.tlisp_span(job.generated, *where) or sourcemap.last_span_in_log(log.text):
                    result.failing_span = sourcemap.with_file(span, job.source)
                    result.failing_tlisp = sourcemap.source_line(span, job.source)
        if name in job.targets and (found := (targets or {}).get(job.targets[name])) and found[0] == "missing":
            kind, target = job.targets[name]
            close = difflib.get_close_matches(target, found[1], n=3, cutoff=0.6)
            result.attach_error = (f"{kind} target {target!r} does not exist on this kernel"
                                   + (f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""))
            if result.verdict == "accepted":
                result.verdict = "no-attach-target"
        programs.append(result)
    # Loaded means the loader said no error and every entry program it found
    # is pinned: what is really in the kernel, not a batch's exit code.
    names = results.program_names(output)
    loaded = (load is not None and load.rc == 0
              and (pinned is None or all((str(index), name) in pinned for name in names)))
    explained = any(p.verifier_log for p in programs)  # else show what the loader said
    tail = None if loaded or explained else "\n".join(output.splitlines()[-40:]) or "(no output from the loader)"
    sha256 = hashlib.sha256(job.data()).hexdigest() if job.patches else sha256_file(job.path)
    return ObjectResult(path=job.label, sha256=sha256, loaded=loaded, programs=programs,
                        loader_output=tail, consts=job.consts or None)


def _case_results(cases: list[CaseJob], steps: list[results.Step]) -> list[CaseResult]:
    """Case N's output: the batch's N-th result, else its own `run` step."""
    batched: dict[int, tuple[int, int]] = {}
    for s in steps:
        if s.kind == "runs" or (s.kind == "runs-events" and len(s.args) == 2):
            first = int(s.args[1]) if s.kind == "runs-events" else 0
            batched.update({first + k: r for k, r in enumerate(results.prog_runs(s.output))})
    runs = {s.args[4]: s for s in steps if s.kind == "run" and len(s.args) == 5}
    outputs = results.packet_outputs(next((s.output for s in steps if s.kind == "outs"), ""))
    out = []
    for n, case in enumerate(cases):
        result = CaseResult(test=case.test, case=case.case, program=case.program, expect=case.expect,
                            expect_value=case.expect_value, repeat=case.repeat, passed=False)
        step = runs.get(str(n))
        parsed = batched.get(n) or (results.prog_run(step.output) if step else None)
        if parsed is None:
            result.error = (step.output.strip().splitlines() or ["no output"])[-1] if step else "not run"
        else:
            result.got, result.ns_per_packet = parsed[0], float(parsed[1])
            result.passed = _as_signed32(result.got) == _as_signed32(case.expect_value)
        if case.expect_packet is not None:
            _compare_packet(result, case.expect_packet, outputs.get(str(n)))
        out.append(result)
    return out


def _compare_packet(result: CaseResult, expected: bytes, got: bytes | None) -> None:
    """`:expect-packet`: the packet test-run left must be these bytes."""
    result.expected_packet = expected.hex()
    if got is None:
        result.passed = False
        result.error = result.error or "test-run returned no packet (data_out)"
        return
    result.got_packet = got.hex()
    if got != expected:
        result.passed = False
        result.packet_diff = packets.describe_diff(expected, got)


def _skip_untestable(cases: list[CaseJob], case_results: list[CaseResult], map_checks: list[MapCheck | EventCheck],
                     kernel: Kernel) -> None:
    """A case this kernel's test-run cannot show (its kind gets no packet
    pointers there, and the program reads headers) is reported as skipped
    with the reason, not as a wrong verdict; so are its test's map checks."""
    skipped_tests = set()
    for job, result in zip(cases, case_results):
        if job.reads_packet and job.kind in kernel.no_packet_test_run:
            result.skipped = (f"kernel {kernel.name}: BPF_PROG_TEST_RUN gives {job.kind} programs no packet "
                              "data, so header parsing cannot be tested here")
            skipped_tests.add(job.test)
    for check in map_checks:
        if check.test in skipped_tests:
            check.skipped = f"test {check.test} has cases this kernel cannot run"


def _as_signed32(value: int) -> int:
    """bpftool prints the 32-bit return value; actions may be negative (TC)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >> 31 else value


def _map_checks(maps: list[MapJob], steps: list[results.Step]) -> list[MapCheck]:
    dumps = {(s.args[0], s.args[1]): s for s in steps if s.kind == "dump"}
    out = []
    for job in maps:
        step = dumps.get((str(job.object_index), job.map))
        entries = results.map_dump(step.output) if step and step.rc == 0 else None
        if job.decl is not None and structs.struct_name(job.decl.value):
            out.append(_struct_check(job, entries))
            continue
        got = None if entries is None else sum(
            (sum(_map_value(job, v) for v in values) for key, values in entries if _key_matches(job, key)), 0)
        out.append(MapCheck(test=job.test, map=job.name or job.map, symbol=job.map, key=job.key,
                            expected=job.value, got=got, passed=got == job.value))
    return out


def _struct_check(job: MapJob, entries) -> MapCheck:
    """A struct value: the entry's per-CPU copies summed field by field,
    compared on the fields the test names."""
    found = next((values for key, values in entries or [] if _key_matches(job, key)), None)
    got = None if found is None else mapdata.total(job.decl, found, job.layouts)
    passed = entries is not None and mapdata.matches(job.decl, job.value, got, job.layouts)
    return MapCheck(test=job.test, map=job.name or job.map, symbol=job.map, key=mapdata.show_key(job.key),
                    expected=mapdata.show_value(job.decl, job.value, job.layouts),
                    got=None if got is None else mapdata.show_value(job.decl, got, job.layouts), passed=passed)


def _key_matches(job: MapJob, raw: bytes) -> bool:
    if job.key_bytes is None:
        return int.from_bytes(raw, "little") == job.key
    return (mapdata.canonical_lpm_key(raw) if job.lpm else raw) == job.key_bytes


def _map_value(job: MapJob, raw: bytes) -> int:
    return mapdata.decode_value(job.value_type, raw) if job.value_type else int.from_bytes(raw, "little")

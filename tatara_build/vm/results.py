"""What one VM run found, as pydantic models (they go into the manifest and
`--json`), and the parser of the guest's console output."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

Verdict = Literal["accepted", "rejected", "over-budget", "not-loaded", "no-attach-target"]


class KernelInfo(BaseModel):
    name: str
    package: str | None = None
    version: str | None = None
    sha256: str


class ProgramResult(BaseModel):
    program: str
    verdict: Verdict
    verified_insns: int | None = None
    max_insns: int
    total_states: int | None = None
    peak_states: int | None = None
    stack_depth: int | None = None
    verification_time_us: int | None = None
    xlated_bytes: int | None = None
    jited_bytes: int | None = None
    verifier_log: str | None = None  # kept on rejection
    failing_source: str | None = None  # generated source line of the failing insn
    failing_span: str | None = None  # .tlisp file:line:col it came from
    failing_tlisp: str | None = None  # that .tlisp source line
    attach_error: str | None = None  # the booted kernel has no such function / tracepoint / hook


class ObjectResult(BaseModel):
    path: str
    sha256: str
    loaded: bool
    programs: list[ProgramResult]
    loader_output: str | None = None  # tail, when the object failed as a whole
    consts: dict[str, int] | None = None  # a copy loaded with a test's `:consts` (path ends in [name=value,…])


class CaseResult(BaseModel):
    test: str
    case: str
    program: str
    expect: str
    expect_value: int
    got: int | None = None
    passed: bool
    repeat: int = 1
    ns_per_packet: float | None = None
    error: str | None = None
    skipped: str | None = None  # why this kernel cannot run it (not a failure)
    expected_packet: str | None = None  # `:expect-packet`, hex
    got_packet: str | None = None  # what test-run left (data_out), hex
    packet_diff: str | None = None  # where they differ, when they do


class MapCheck(BaseModel):
    test: str
    map: str  # the map's name in the source
    symbol: str | None = None  # its ELF/BTF name (what bpftool pins and dumps)
    key: int | str  # as the source writes it (lpm-trie prefixes: "10.1.2.0/24"; structs: "(make k :a 1)")
    expected: int | str  # struct values as the source writes them: "(make flow :packets 3)"
    got: int | str | None = None
    passed: bool
    skipped: str | None = None


class EventStream(BaseModel):
    """What the guest drained from one ring buffer or perf-event array
    after the cases ran (see the `runs` step in guest.py)."""

    object: int  # the object's index in this boot
    map: str  # its ELF symbol (the pin name)
    records: list[str] = []  # each record's bytes as hex, in order (perf: padded, see tatara-guest.c)
    lost: int = 0  # records the kernel dropped (perf buffers)
    error: str | None = None  # the guest could not read it


class EventCheck(BaseModel):
    """A test's `:expect-events` of one map: the records it got during the
    test's cases, in order, against the expected ones."""

    test: str
    map: str  # the map's name in the source
    symbol: str | None = None
    expected: list[str]  # as the test writes them
    got: list[str] | None = None  # as the test would write them; None: not read
    passed: bool
    diff: list[str] = []  # per event: expected vs got
    error: str | None = None  # the reader's error
    skipped: str | None = None


class TriggerResult(BaseModel):
    """A `:trigger` test's run: the program attached, the actions done."""

    test: str
    program: str
    attach: str  # "KIND TARGET"
    actions: list[str] = []  # what the guest did, with each syscall's result (`open /tmp/x 0 = 3`)
    error: str | None = None  # why the program was not attached (or the actions not done)
    passed: bool


class Verification(BaseModel):
    kernel: KernelInfo
    accel: str
    boot_seconds: float
    guest_ready_seconds: float | None = None
    load_seconds: float | None = None  # all objects' loads in the guest (bpftool + verifier)
    objects: list[ObjectResult]
    cases: list[CaseResult] = []
    maps: list[MapCheck] = []
    events: list[EventStream] = []
    event_checks: list[EventCheck] = []  # each test's :expect-events
    triggers: list[TriggerResult] = []  # each :trigger test's attach and actions
    verified: bool  # every object loaded, every program accepted within its budget
    passed: bool  # verified, and every packet case and map expectation passed


# --- console parsing --------------------------------------------------------


@dataclass
class Step:
    kind: str  # load | show | run | dump
    args: list[str]
    output: str
    rc: int
    seconds: float | None = None  # guest wall time (/proc/uptime, 10 ms steps)


def steps(console: str) -> list[Step]:
    """The `@@BEGIN …` / `@@END rc` blocks in console order."""
    found: list[Step] = []
    current: tuple[list[str], list[str]] | None = None
    for line in console.splitlines():
        begin = line.find("@@BEGIN ")
        if begin >= 0:
            current = (line[begin + 8 :].split(), [])
            continue
        if line.startswith("@@END ") and current is not None:
            header, body = current
            rc, *times = line.split()[1:]
            seconds = round(float(times[1]) - float(times[0]), 3) if len(times) == 2 else None
            step = Step(header[0], header[1:], "\n".join(body).strip("\n"), int(rc), seconds)
            found += _EXPAND[step.kind](step) if step.kind in _EXPAND else [step]
            current = None
        elif current is not None:
            current[1].append(line)
    return found


_PINNED = re.compile(r"^/sys/fs/bpf/(\d+)/([pm])/([^/]+)$")


def _inspected(step: Step) -> list[Step]:
    """A JSON `bpftool batch` of prog shows and map dumps, as one show/dump
    step per pinned object (what the per-object fallback prints)."""
    if step.rc != 0:
        return []
    try:
        items = json.loads(step.output)
    except json.JSONDecodeError:
        return []
    out = []
    for item in items:
        command = item.get("command", [])
        if len(command) == 4 and (m := _PINNED.match(command[3])):
            kind = "show" if m[2] == "p" else "dump"
            out.append(Step(kind, [m[1], m[3]], json.dumps(item.get("output")), 0))
    return out


# bpftool 7.1 ends a batch whose last command succeeded with this line when
# a stale errno (EEXIST from creating the pin directories) is left over.
_BATCH_TRAILER = re.compile(r"^Error: reading batch file failed: .*$", re.M)
_LOADER_ERROR = re.compile(r"^Error: ", re.M)


_PIN = re.compile(r"^/sys/fs/bpf/(\d+)/p/([^/\s]+)$", re.M)


def pinned_programs(found: list[Step]) -> set[tuple[str, str]] | None:
    """(object index, program) of every pin the guest listed after the loads;
    None when the boot has no `pins` step."""
    step = next((s for s in found if s.kind == "pins"), None)
    return None if step is None else {(m[1], m[2]) for m in _PIN.finditer(step.output)}


def attach_targets(found: list[Step]) -> dict[tuple[str, str], tuple[str, list[str]]]:
    """(kind, target) -> ("found" | "missing" | "unknown", the kernel's names
    near a missing one) from the guest's `targets` step."""
    out: dict[tuple[str, str], tuple[str, list[str]]] = {}
    step = next((s for s in found if s.kind == "targets"), None)
    for line in (step.output.splitlines() if step else []):
        words = line.split()
        if len(words) == 3 and words[0] in ("found", "missing", "unknown"):
            out[(words[1], words[2])] = (words[0], [])
        elif len(words) == 4 and words[0] == "near" and (words[1], words[2]) in out:
            out[(words[1], words[2])][1].append(words[3])
    return out


def seed_error(found: list[Step]) -> str | None:
    """bpftool's error from the `seeds` batch (`map update` of :maps-before),
    if any; its exit code alone is not trusted (stale errno, see guest.py)."""
    step = next((s for s in found if s.kind == "seeds"), None)
    if step is None:
        return None
    errors = _LOADER_ERROR.findall(_BATCH_TRAILER.sub("", step.output))
    if not errors:
        return None
    return next(line for line in step.output.splitlines() if line.startswith("Error: ") and not _BATCH_TRAILER.match(line))


_EVENT_PIN = r"/sys/fs/bpf/(\d+)/m/([A-Za-z0-9_.]+)"
_EVENT = re.compile(rf"^EVENT {_EVENT_PIN} ([0-9a-f]*|-)$", re.M)
_LOST = re.compile(rf"^LOST {_EVENT_PIN} (\d+)$", re.M)
_EVENT_ERROR = re.compile(rf"^error: {_EVENT_PIN}: (.*)$", re.M)


def events(found: list[Step], wanted: list[tuple[int, str]]) -> list[EventStream]:
    """The records `tatara-guest run-and-drain` printed after the `runs`
    step's batch (or after each `runs-events` batch, in order), one stream
    per wanted (object index, map symbol)."""
    batches = [s for s in found if s.kind in ("runs", "runs-events", "trigger")]
    streams = {(i, m): EventStream(object=i, map=m) for i, m in wanted}
    if not batches:
        for stream in streams.values():
            stream.error = "no packet case ran, so nothing was drained"
    for step in batches:
        for key, drained in drained_streams(step.output).items():
            if stream := streams.get(key):
                stream.records += drained.records
                stream.lost += drained.lost
                stream.error = drained.error or stream.error
    return list(streams.values())


def drained_streams(output: str) -> dict[tuple[int, str], EventStream]:
    """Every stream one run-and-drain printed, by (object index, map symbol)."""
    streams: dict[tuple[int, str], EventStream] = {}

    def stream(m) -> EventStream:
        return streams.setdefault((int(m[1]), m[2]), EventStream(object=int(m[1]), map=m[2]))

    for m in _EVENT.finditer(output):
        stream(m).records.append("" if m[3] == "-" else m[3])
    for m in _LOST.finditer(output):
        stream(m).lost = int(m[3])
    for m in _EVENT_ERROR.finditer(output):
        stream(m).error = m[3]
    return streams


_EXPAND = {"inspect": _inspected}


@dataclass
class LoadLog:
    program: str
    text: str  # the verifier log between BEGIN and END PROG LOAD LOG
    failed: bool


# `tatara-guest load` prints `program SECTION NAME` and the log blocks
# (bpftool -d printed libbpf's `sec 'S': found program 'N'` and blocks
# prefixed `libbpf: `).
_LOG_BLOCK = re.compile(
    r"^(?:libbpf: )?prog '(?P<name>[^']+)': -- BEGIN PROG LOAD LOG --\n(?P<log>.*?)\n-- END PROG LOAD LOG --",
    re.S | re.M,
)
_FOUND_PROGRAM = re.compile(r"sec '([^']+)': found program '([^']+)'|^program (\S+) (\S+)$", re.M)
_STATS = re.compile(r"processed (\d+) insns \(limit \d+\).*?total_states (\d+) peak_states (\d+)")


def program_names(load_output: str) -> list[str]:
    """Entry programs; functions in `.text` (memcpy, helpers) are subprograms."""
    found = ((m[1] or m[3], m[2] or m[4]) for m in _FOUND_PROGRAM.finditer(load_output))
    return list(dict.fromkeys(name for section, name in found if section != ".text"))


def load_logs(load_output: str) -> dict[str, LoadLog]:
    logs = {}
    for m in _LOG_BLOCK.finditer(load_output):
        name = m["name"]
        failed = f"prog '{name}': failed to load" in load_output
        logs[name] = LoadLog(name, m["log"], failed)
    return logs


def log_stats(log: str) -> dict[str, int]:
    out: dict[str, int] = {}
    if m := _STATS.search(log):
        out.update(verified_insns=int(m[1]), total_states=int(m[2]), peak_states=int(m[3]))
    if m := re.search(r"^stack depth (\d+)", log, re.M):
        out["stack_depth"] = int(m[1])
    if m := re.search(r"^verification time (\d+) usec", log, re.M):
        out["verification_time_us"] = int(m[1])
    return out


def prog_show(output: str) -> dict[str, int]:
    try:
        info = json.loads(output)
    except json.JSONDecodeError:
        return {}
    return {"xlated_bytes": info.get("bytes_xlated"), "jited_bytes": info.get("bytes_jited")}


_RUN = re.compile(r"Return value: (-?\d+), duration(?: \(average\))?: (\d+)\s*ns")


def prog_run(output: str) -> tuple[int, int] | None:
    """(return value, ns per run) from `bpftool prog run`."""
    m = _RUN.search(output)
    return (int(m[1]), int(m[2])) if m else None


def packet_outputs(output: str) -> dict[str, bytes]:
    """Case number -> the packet test-run left, from the `outs` step's
    `out N HEX` lines."""
    found = {}
    for m in re.finditer(r"^out (\d+) ([0-9a-f]*)$", output, re.M):
        found[m[1]] = bytes.fromhex(m[2])
    return found


def prog_runs(output: str) -> list[tuple[int, int]]:
    """Every result of a `bpftool batch` of prog runs, in order."""
    return [(int(m[1]), int(m[2])) for m in _RUN.finditer(output)]


def map_entries(output: str) -> dict[int, int] | None:
    """key → value from `bpftool -j map dump`, integers decoded from the raw
    little-endian bytes; per-CPU values summed over CPUs."""
    try:
        entries = json.loads(output)
    except json.JSONDecodeError:
        return None
    table: dict[int, int] = {}
    for entry in entries:
        if "key" not in entry:
            continue
        key = _le(entry["key"])
        if "values" in entry:
            table[key] = sum(_le(v["value"]) for v in entry["values"])
        elif "value" in entry:
            table[key] = _le(entry["value"])
    return table


def map_dump(output: str) -> list[tuple[bytes, list[bytes]]] | None:
    """(key, values) from `bpftool -j map dump`, raw bytes (per-CPU maps: one
    value per CPU); None when the output is not a dump."""
    try:
        entries = json.loads(output)
    except json.JSONDecodeError:
        return None
    if not isinstance(entries, list):
        return None
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or "key" not in entry:
            continue
        items = [v.get("value") for v in entry["values"]] if "values" in entry else [entry.get("value")]
        out.append((_raw(entry["key"]), [_raw(v) for v in items if isinstance(v, list)]))
    return out


def _raw(hex_bytes: list[str]) -> bytes:
    return bytes(int(b, 16) for b in hex_bytes)


def _le(raw: list[str]) -> int:
    return int.from_bytes(bytes(int(b, 16) for b in raw), "little")


_DID = re.compile(r"^did (.+)$", re.M)
_ATTACHED = re.compile(r"^attached \S+ \S+$", re.M)


def trigger_outcome(step: Step | None, actions: int) -> tuple[list[str], str | None]:
    """What a `trigger` step's actions did (`open /tmp/x 0 = 3`), and why
    it failed (None: the program was attached and every action done)."""
    if step is None:
        return [], "the trigger did not run"
    did = _DID.findall(step.output)
    if not _ATTACHED.search(step.output):
        errors = [line.removeprefix("error: ") for line in step.output.splitlines() if line.startswith("error: attach")]
        return did, errors[0] if errors else "the program was not attached"
    if len(did) != actions:
        return did, f"{len(did)} of {actions} action(s) were done" + _why_not_run(step.output)
    return did, None


def _why_not_run(output: str) -> str:
    """The guest's reason when the acting tool never started: an lsm program
    that denies the tool's own exec (it sees `/bin/tatara-guest` opened) is
    the usual one, and only the kernel's errno showed it."""
    for line in output.splitlines():
        if line.startswith("error: cannot run "):
            return (f": {line.removeprefix('error: ')} (the program is attached while the tool starts: "
                    "a hook that denies its exec or its file opens stops every action)")
    return ""

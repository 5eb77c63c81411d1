"""The last stage: VM results into OUT/manifest.json (its `verification`
key) and a human summary (rich tables on stderr), and the verdict as an
error when anything was rejected or failed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .errors import RejectedError, ToolchainError, visible
from .vm.results import ProgramResult, Verification

_OK = {"accepted": "[green]accepted[/]", "rejected": "[red]rejected[/]",
       "over-budget": "[red]over budget[/]", "not-loaded": "[yellow]not loaded[/]",
       "no-attach-target": "[red]no attach target[/]"}


Matrix = dict[str, Verification]  # by kernel name ("6.1", or the image path given)


def merge_into_manifest(manifest: Path, matrix: Matrix) -> None:
    """Set `verification[kernel]` for each kernel run in an existing
    manifest.json (atomic replace). Results kept from earlier runs on other
    kernels stay only when they are about the same object bytes."""
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError) as err:
        raise ToolchainError(f"cannot update {manifest}: {getattr(err, 'strerror', None) or err}") from None
    if not isinstance(data, dict):  # callers pass only manifests a build wrote (verify checks first)
        raise ToolchainError(f"cannot update {manifest}: it is not a tatara-build manifest (not a JSON object)")
    digests = {o.sha256 for v in matrix.values() for o in v.objects}
    earlier = data.get("verification")
    earlier = earlier if isinstance(earlier, dict) else {}
    kept = {name: v for name, v in earlier.items()
            if name not in matrix and isinstance(v, dict) and isinstance(v.get("objects"), list)
            and {o.get("sha256") for o in v["objects"]} == digests}
    data["verification"] = {**kept, **{name: v.model_dump(mode="json") for name, v in matrix.items()}}
    tmp = manifest.with_name(f".{manifest.name}.{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(manifest)
    except OSError as err:
        raise ToolchainError(f"cannot update {manifest}: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _user(text: str) -> str:
    """A file or kernel name the user chose, inside rich markup: its control
    characters escaped and its `[` never read as a style tag."""
    from rich.markup import escape

    return escape(visible(text, keep=""))


def render(v: Verification, console: Console | None = None) -> None:
    if console is None:
        console = Console(stderr=True)
        if not console.is_terminal:  # logs and CI: wide enough for the verifier table
            console = Console(stderr=True, width=140)
    kernel = f"{v.kernel.package} {v.kernel.version}" if v.kernel.package else v.kernel.name
    loads = "" if v.load_seconds is None else f", loading {v.load_seconds:.2f} s"
    console.print(f"[bold]kernel[/] {_user(kernel)} (sha256 {v.kernel.sha256[:16]}…, {v.accel}), "
                  f"VM {v.boot_seconds:.2f} s{loads}", highlight=False)
    console.print(_programs_table(v))
    _render_load_failures(v, console)
    for table in (_cases_table(v), _triggers_table(v), _maps_table(v), _events_table(v)):
        if table is not None:
            console.print(table)
    for e in v.event_checks:
        if not (e.passed or e.skipped) and e.diff:
            console.print(f"  {e.test}: events of {e.map}:\n    " + "\n    ".join(e.diff), markup=False,
                          highlight=False)
    for reason in dict.fromkeys(x.skipped for x in [*v.cases, *v.maps, *v.event_checks] if x.skipped):
        console.print(f"[yellow]skipped:[/] {reason}")


def _programs_table(v: Verification) -> Table:
    programs = Table(title="verifier", title_justify="left")
    for column in ("object", "program", "verdict", "insns", "budget", "states/peak", "stack", "xlated", "jited", "verify µs"):
        programs.add_column(column, justify="left" if column in ("object", "program", "verdict") else "right")
    for obj in v.objects:
        for p in obj.programs:
            programs.add_row(
                _user(Path(obj.path).name), p.program, _OK[p.verdict], _n(p.verified_insns), _n(p.max_insns),
                f"{_n(p.total_states)}/{_n(p.peak_states)}", _n(p.stack_depth), _n(p.xlated_bytes),
                _n(p.jited_bytes), _n(p.verification_time_us),
            )
        if not obj.programs:
            programs.add_row(_user(Path(obj.path).name), "-", "[red]failed[/]", *["-"] * 7)
    return programs


def _cases_table(v: Verification) -> Table | None:
    if not v.cases:
        return None
    cases = Table(title="packet tests", title_justify="left")
    for column in ("test", "case", "expect", "got", "result", "ns/pkt"):
        cases.add_column(column, justify="right" if column == "ns/pkt" else "left")
    for c in v.cases:
        got = c.error or ("-" if c.got is None else str(c.got))
        if c.packet_diff:
            got += " (packet differs)"
        cases.add_row(c.test, c.case, f"{c.expect} ({c.expect_value})", got, _result(c.passed, c.skipped),
                      f"{c.ns_per_packet:.0f}" if c.ns_per_packet is not None and c.repeat > 1 else "-")
    return cases


def _triggers_table(v: Verification) -> Table | None:
    if not v.triggers:
        return None
    triggers = Table(title="triggered tests (program attached in the VM)", title_justify="left")
    for column in ("test", "attached at", "actions done", "result"):
        triggers.add_column(column)
    for t in v.triggers:
        triggers.add_row(t.test, t.attach, t.error or "; ".join(t.actions), _result(t.passed, None))
    return triggers


def _maps_table(v: Verification) -> Table | None:
    if not v.maps:
        return None
    maps = Table(title="maps after all cases", title_justify="left")
    for column in ("test", "map", "key", "expected", "got", "result"):
        maps.add_column(column)
    for m in v.maps:
        maps.add_row(m.test, m.map, str(m.key), str(m.expected), _n(m.got), _result(m.passed, m.skipped))
    return maps


def _events_table(v: Verification) -> Table | None:
    if not v.event_checks:
        return None
    events = Table(title="events of each test's cases", title_justify="left")
    for column in ("test", "map", "expected", "got", "result"):
        events.add_column(column)
    for e in v.event_checks:
        events.add_row(e.test, e.map, _records(e.expected), e.error or _records(e.got), _result(e.passed, e.skipped))
    return events


def render_matrix(matrix: Matrix, console: Console | None = None) -> None:
    """One kernel: its full report. Several: one line per kernel, the matrix
    of program x kernel (verdict, verified insns, states, packet cases) with
    the insns spread across kernels, then each kernel's failures."""
    if len(matrix) == 1:
        render(next(iter(matrix.values())), console)
        return
    if console is None:
        console = Console(stderr=True)
        if not console.is_terminal:
            console = Console(stderr=True, width=160)
    for name, v in matrix.items():
        kernel = f"{v.kernel.package} {v.kernel.version}" if v.kernel.package else v.kernel.name
        loads = "" if v.load_seconds is None else f", loading {v.load_seconds:.2f} s"
        console.print(f"[bold]kernel {_user(name)}[/] {_user(kernel)} ({v.accel}), VM {v.boot_seconds:.2f} s{loads}", highlight=False)
    table = Table(title="kernel matrix (verdict insns/states, packet cases passed/run)", title_justify="left")
    table.add_column("program")
    for name in matrix:
        table.add_column(_user(name))
    table.add_column("insns spread", justify="right")
    for obj_name, program in _programs(matrix):
        row, counts = [_user(f"{obj_name}:{program}")], []
        for v in matrix.values():
            obj, p = _program(v, obj_name, program)
            if p is None:
                row.append("-")
                continue
            if p.verified_insns is not None:
                counts.append(p.verified_insns)
            cases = [c for c in v.cases if c.program == program]
            ran = [c for c in cases if not c.skipped]
            passed = sum(c.passed for c in ran)
            verdict = _OK[p.verdict] if obj.loaded or p.verdict != "accepted" else "[red]load failed[/]"
            cell = f"{verdict} {_n(p.verified_insns)}/{_n(p.total_states)}"
            if cases:
                colour = "green" if passed == len(ran) else "red"
                cell += f" [{colour}]{passed}/{len(ran)}[/]" + (f" ({len(cases) - len(ran)} skipped)" if len(ran) < len(cases) else "")
            row.append(cell)
        row.append(f"{min(counts)}..{max(counts)}" if counts else "-")
        table.add_row(*row)
    console.print(table)
    for name, v in matrix.items():
        if not v.passed:
            console.print(f"[red]kernel {_user(name)}:[/]")
            _render_failures(v, console)
        for reason in dict.fromkeys(x.skipped for x in [*v.cases, *v.maps, *v.event_checks] if x.skipped):
            console.print(f"[yellow]skipped on {name}:[/] {reason}")


def _programs(matrix: Matrix) -> list[tuple[str, str]]:
    """(object file name, program) pairs in first-seen order."""
    seen: dict[tuple[str, str], None] = {}
    for v in matrix.values():
        for o in v.objects:
            for p in o.programs:
                seen[(Path(o.path).name, p.program)] = None
            if not o.programs:
                seen[(Path(o.path).name, "-")] = None
    return list(seen)


def _program(v: Verification, obj_name: str, program: str):
    """(object result, program result) of one matrix cell; (None, None) when absent."""
    for o in v.objects:
        if Path(o.path).name == obj_name:
            if program == "-" and not o.programs:
                return o, ProgramResult(program="-", verdict="not-loaded", max_insns=0)
            return o, next((p for p in o.programs if p.program == program), None)
    return None, None


def _render_load_failures(v: Verification, console: Console) -> None:
    """Each rejected program's log tail and the .tlisp form it maps to, each
    program over its budget, each object that did not load."""
    for obj in v.objects:
        for p in obj.programs:
            if p.verdict == "rejected" and p.verifier_log:
                where = f" at {p.failing_span}" if p.failing_span else ""
                console.print(f"[red]verifier log of {p.program}[/]{where}:")
                console.print("\n".join(p.verifier_log.splitlines()[-25:]), markup=False, highlight=False)
                if p.failing_source:
                    console.print(f"failing source line: {p.failing_source}", markup=False)
                if p.failing_span and p.failing_tlisp is not None:
                    console.print(f"from {p.failing_span}:\n    {p.failing_tlisp.strip()}", markup=False, highlight=False)
            elif p.verdict == "over-budget":
                console.print(f"[red]{p.program}[/] verified {p.verified_insns} insns, over :max-insns {p.max_insns}")
        if obj.loader_output:
            console.print(f"[red]{_user(Path(obj.path).name)} did not load:[/]")
            console.print(obj.loader_output, markup=False, highlight=False)


def _render_failures(v: Verification, console: Console) -> None:
    _render_load_failures(v, console)
    for c in v.cases:
        if not (c.passed or c.skipped):
            console.print(f"  {c.test}/{c.case}: {_case_problem(c, True)}", markup=False, highlight=False)
    for t in v.triggers:
        if not t.passed:
            console.print(f"  {t.test}: trigger at {t.attach}: {t.error}", markup=False, highlight=False)
    for m in v.maps:
        if not (m.passed or m.skipped):
            console.print(f"  {m.test}: map {m.map}[{m.key}] = {m.got}, expected {m.expected}", markup=False, highlight=False)
    for e in v.event_checks:
        if not (e.passed or e.skipped):
            console.print(f"  {e.test}: {_event_problem(e)}", markup=False, highlight=False)


def _case_problem(c, value: bool = False) -> str:
    """Why a packet case failed: the action (`value`: with its number), or
    the packet it left (the bytes that differ, both packets in hex)."""
    expect = f"{c.expect} ({c.expect_value})" if value else c.expect
    if c.error or c.got is None or c.packet_diff is None:
        return f"expected {expect}, got {c.error or c.got}"
    wrong_action = "" if (c.got - c.expect_value) % (1 << 32) == 0 else f"expected {expect}, got {c.got}; "
    return (f"{wrong_action}the packet differs from :expect-packet: {c.packet_diff}\n"
            f"    expected {c.expected_packet}\n    got      {c.got_packet}")


def verdict_matrix(matrix: Matrix) -> None:
    """Raise RejectedError (exit 4) naming each kernel's failures."""
    problems = []
    for name, v in matrix.items():
        problems += [f"kernel {name}: {p}" for p in _problems(v)]
    if problems:
        raise RejectedError(f"{_headline(matrix.values())}:\n  " + "\n  ".join(problems))


def verdict(v: Verification) -> None:
    """Raise RejectedError (exit 4) naming what failed, if anything did."""
    if v.passed:
        return
    raise RejectedError(f"{_headline([v])}:\n  " + "\n  ".join(_problems(v)))


def _headline(runs) -> str:
    """"verification failed" only when the verifier (or loading) did; a run
    whose objects all loaded failed its tests."""
    loaded = all(o.loaded and all(p.verdict == "accepted" for p in o.programs) for v in runs for o in v.objects)
    return "tests failed" if loaded else "verification failed"


def _problems(v: Verification) -> list[str]:
    if v.passed:
        return []
    problems = [f"{p.program}: {p.attach_error or p.verdict}" for o in v.objects for p in o.programs
                if p.verdict != "accepted"]
    # An object can fail after every program passed the verifier (pinning,
    # a map): never an empty reason.
    problems += [f"{Path(o.path).name}: did not load" + (f" ({_last_line(o.loader_output)})" if o.loader_output else "")
                 for o in v.objects if not o.loaded and all(p.verdict == "accepted" for p in o.programs)]
    problems += [f"{c.test}/{c.case}: {_case_problem(c)}" for c in v.cases if not (c.passed or c.skipped)]
    problems += [f"{t.test}: trigger at {t.attach}: {t.error}" for t in v.triggers if not t.passed]
    problems += [f"{m.test}: map {m.map}[{m.key}] = {m.got}, expected {m.expected}"
                 for m in v.maps if not (m.passed or m.skipped)]
    problems += [f"{e.test}: {_event_problem(e)}" for e in v.event_checks if not (e.passed or e.skipped)]
    return problems or ["failed (see the report above)"]  # never a silent pass


def _event_problem(e) -> str:
    if e.error:
        return f"events of {e.map} could not be read: {e.error}"
    return f"events of {e.map} differ: " + "; ".join(e.diff)


def _records(records: list[str] | None) -> str:
    if records is None:
        return "-"
    return " ".join(records) if records else "(none)"


def _last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.lower().startswith("error: ")),
                text.strip().splitlines()[-1] if text.strip() else "")


def _result(passed: bool, skipped: str | None) -> str:
    if skipped:
        return "[yellow]skipped[/]"
    return "[green]pass[/]" if passed else "[red]FAIL[/]"


def _n(value: int | str | None) -> str:
    return "-" if value is None else str(value)

"""The last stage: VM results into OUT/manifest.json (its `verification`
key) and a human summary (rich tables on stderr), and the verdict as an
error when anything was rejected or failed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .errors import RejectedError
from .vm.results import Verification

_OK = {"accepted": "[green]accepted[/]", "rejected": "[red]rejected[/]",
       "over-budget": "[red]over budget[/]", "not-loaded": "[yellow]not loaded[/]"}


def merge_into_manifest(manifest: Path, verification: Verification) -> None:
    """Set `verification` in an existing manifest.json (atomic replace)."""
    data = json.loads(manifest.read_text())
    data["verification"] = verification.model_dump(mode="json")
    tmp = manifest.with_name(f".{manifest.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(manifest)


def render(v: Verification, console: Console | None = None) -> None:
    if console is None:
        console = Console(stderr=True)
        if not console.is_terminal:  # logs and CI: wide enough for the verifier table
            console = Console(stderr=True, width=140)
    kernel = f"{v.kernel.package} {v.kernel.version}" if v.kernel.package else v.kernel.name
    loads = "" if v.load_seconds is None else f", loading {v.load_seconds:.2f} s"
    console.print(f"[bold]kernel[/] {kernel} (sha256 {v.kernel.sha256[:16]}…, {v.accel}), "
                  f"VM {v.boot_seconds:.2f} s{loads}", highlight=False)
    programs = Table(title="verifier", title_justify="left")
    for column in ("object", "program", "verdict", "insns", "budget", "states/peak", "stack", "xlated", "jited", "verify µs"):
        programs.add_column(column, justify="left" if column in ("object", "program", "verdict") else "right")
    for obj in v.objects:
        for p in obj.programs:
            programs.add_row(
                Path(obj.path).name, p.program, _OK[p.verdict], _n(p.verified_insns), _n(p.max_insns),
                f"{_n(p.total_states)}/{_n(p.peak_states)}", _n(p.stack_depth), _n(p.xlated_bytes),
                _n(p.jited_bytes), _n(p.verification_time_us),
            )
        if not obj.programs:
            programs.add_row(Path(obj.path).name, "-", "[red]failed[/]", *["-"] * 7)
    console.print(programs)
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
        if obj.loader_output:
            console.print(f"[red]{Path(obj.path).name} did not load:[/]")
            console.print(obj.loader_output, markup=False, highlight=False)
    if v.cases:
        cases = Table(title="packet tests", title_justify="left")
        for column in ("test", "case", "expect", "got", "result", "ns/pkt"):
            cases.add_column(column, justify="right" if column == "ns/pkt" else "left")
        for c in v.cases:
            got = c.error or ("-" if c.got is None else str(c.got))
            cases.add_row(c.test, c.case, f"{c.expect} ({c.expect_value})", got,
                          _result(c.passed, c.skipped),
                          f"{c.ns_per_packet:.0f}" if c.ns_per_packet is not None and c.repeat > 1 else "-")
        console.print(cases)
    if v.maps:
        maps = Table(title="maps after all cases", title_justify="left")
        for column in ("test", "map", "key", "expected", "got", "result"):
            maps.add_column(column)
        for m in v.maps:
            maps.add_row(m.test, m.map, str(m.key), str(m.expected), _n(m.got),
                         _result(m.passed, m.skipped))
        console.print(maps)
    for reason in dict.fromkeys(x.skipped for x in [*v.cases, *v.maps] if x.skipped):
        console.print(f"[yellow]skipped:[/] {reason}")


def verdict(v: Verification) -> None:
    """Raise RejectedError (exit 4) naming what failed, if anything did."""
    if v.passed:
        return
    problems = [f"{p.program}: {p.verdict}" for o in v.objects for p in o.programs if p.verdict != "accepted"]
    # An object can fail after every program passed the verifier (pinning,
    # a map): never an empty reason.
    problems += [f"{Path(o.path).name}: did not load" + (f" ({_last_line(o.loader_output)})" if o.loader_output else "")
                 for o in v.objects if not o.loaded and all(p.verdict == "accepted" for p in o.programs)]
    problems += [f"{c.test}/{c.case}: expected {c.expect}, got {c.error or c.got}"
                 for c in v.cases if not (c.passed or c.skipped)]
    problems += [f"{m.test}: map {m.map}[{m.key}] = {m.got}, expected {m.expected}"
                 for m in v.maps if not (m.passed or m.skipped)]
    raise RejectedError("verification failed:\n  " + "\n  ".join(problems))


def _last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.startswith("Error: ")),
                text.strip().splitlines()[-1] if text.strip() else "")


def _result(passed: bool, skipped: str | None) -> str:
    if skipped:
        return "[yellow]skipped[/]"
    return "[green]pass[/]" if passed else "[red]FAIL[/]"


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)

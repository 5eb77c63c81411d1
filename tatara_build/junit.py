"""VM results as JUnit XML, the report format CI systems read (GitHub
Actions through test-reporter actions, GitLab's `artifacts:reports:junit`,
Jenkins). One <testsuite> per kernel; in it one <testcase> per program
(did the verifier accept it within :max-insns), per program x packet case,
and per map expectation. A rejected program's testcase carries the
verifier log; its packet cases fail with the same reason. Skipped cases
say why. Written atomically (temp file, then rename), and only over a file
tatara-build wrote (outdir.write_file): never over someone else's report, a
source, a link or a device."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from . import outdir
from .errors import TataraError
from .vm.results import Verification

REPORT = outdir.JUNIT_REPORT

# Characters XML 1.0 cannot carry (verifier logs are ASCII, but a loader's
# output may hold anything); they become U+FFFD.
_XML_INVALID = {c: 0xFFFD for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF]}
LOG_TAIL_LINES = 200  # a verifier log can be millions of lines; keep its end


def _text(value: str) -> str:
    return value.translate(_XML_INVALID)


def _tail(log: str) -> str:
    lines = log.splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])


def document(matrix: dict[str, Verification], name: str = "tatara-build",
             failed: dict[str, TataraError] | None = None) -> ET.Element:
    """`failed`: kernels (or stages) that produced no results, e.g. a VM that
    timed out or a build that failed: one <error> testcase each."""
    root = ET.Element("testsuites", name=name if name.startswith("tatara-build") else f"tatara-build {name}")
    totals = dict(tests=0, failures=0, errors=0, skipped=0)
    seconds = 0.0
    stamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    for kernel, v in matrix.items():
        counts = _kernel_suite(root, kernel, v, stamp)
        for key, value in counts.items():
            totals[key] += value
        seconds += v.boot_seconds
    for where, err in (failed or {}).items():
        _error_suite(root, where, err, stamp)
        totals["tests"] += 1
        totals["errors"] += 1
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{seconds:.3f}")
    return root


def _kernel_suite(root: ET.Element, kernel: str, v: Verification, stamp: str) -> dict[str, int]:
    """One kernel's <testsuite>: its properties, then programs, cases, maps
    and events as testcases; returns its counts."""
    suite = ET.SubElement(root, "testsuite", name=f"kernel {kernel}", timestamp=stamp, hostname=_text(socket.gethostname()))
    counts = dict(tests=0, failures=0, errors=0, skipped=0)
    properties = ET.SubElement(suite, "properties")
    for key, value in (("kernel", kernel), ("package", v.kernel.package), ("version", v.kernel.version),
                       ("sha256", v.kernel.sha256), ("accel", v.accel)):
        if value:
            ET.SubElement(properties, "property", name=key, value=_text(str(value)))
    rejected = _program_cases(suite, counts, kernel, v)
    _packet_cases(suite, counts, kernel, v, rejected)
    _check_cases(suite, counts, kernel, v)
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{v.boot_seconds:.3f}")
    return counts


def _program_cases(suite: ET.Element, counts: dict[str, int], kernel: str, v: Verification) -> dict[str, str]:
    """A testcase per program (its verdict) and per object that did not
    load; returns the failure message of each rejected program."""
    rejected: dict[str, str] = {}
    for obj in v.objects:
        for p in obj.programs:
            case = _case(suite, counts, f"{kernel}.{p.program}", "verify", (p.verification_time_us or 0) / 1e6)
            if p.verdict != "accepted":
                message = f"{p.program}: {p.verdict} on kernel {kernel}"
                if p.verdict == "over-budget":
                    message += f" ({p.verified_insns} insns > :max-insns {p.max_insns})"
                if p.failing_span:
                    message += f" at {p.failing_span}"
                _fail(case, counts, message, p.verdict, _tail(p.verifier_log or obj.loader_output or ""))
                rejected[p.program] = message
            ET.SubElement(case, "system-out").text = _text(  # after any failure, as the schema orders them
                f"verdict {p.verdict}, verified insns {p.verified_insns}, budget {p.max_insns}, "
                f"states {p.total_states}/{p.peak_states}, stack {p.stack_depth}")
        if not obj.loaded and all(p.verdict == "accepted" for p in obj.programs):
            # the object failed outside any program's verification (maps, pins, BTF)
            case = _case(suite, counts, f"{kernel}.{Path(obj.path).stem}", "load", 0.0)
            _fail(case, counts, f"{Path(obj.path).name} did not load on kernel {kernel}", "not-loaded",
                  _tail(obj.loader_output or ""))
    return rejected


def _packet_cases(suite: ET.Element, counts: dict[str, int], kernel: str, v: Verification,
                  rejected: dict[str, str]) -> None:
    """A packet case of a rejected program fails with the program's reason."""
    for c in v.cases:
        case = _case(suite, counts, f"{kernel}.{c.program}", f"{c.test}/{c.case}", (c.ns_per_packet or 0) * c.repeat / 1e9)
        if c.skipped:
            _skip(case, counts, c.skipped)
        elif not c.passed:
            got = c.error or c.got
            message = rejected.get(c.program) or f"expected {c.expect} ({c.expect_value}), got {got}"
            _fail(case, counts, message, "packet-case", f"expected {c.expect} ({c.expect_value}), got {got}")


def _check_cases(suite: ET.Element, counts: dict[str, int], kernel: str, v: Verification) -> None:
    """Triggers, map expectations and event checks."""
    for t in v.triggers:
        case = _case(suite, counts, f"{kernel}.{t.program}", f"{t.test}/trigger", 0.0)
        if not t.passed:
            _fail(case, counts, f"trigger at {t.attach}: {t.error}", "trigger", "\n".join(t.actions))
    for m in v.maps:
        case = _case(suite, counts, f"{kernel}.maps", f"{m.test}/{m.map}[{m.key}]", 0.0)
        if m.skipped:
            _skip(case, counts, m.skipped)
        elif not m.passed:
            _fail(case, counts, f"map {m.map}[{m.key}] = {m.got}, expected {m.expected}", "map-check", "")
    for e in v.event_checks:
        case = _case(suite, counts, f"{kernel}.events", f"{e.test}/{e.map}", 0.0)
        if e.skipped:
            _skip(case, counts, e.skipped)
        elif not e.passed:
            _fail(case, counts, f"events of {e.map}: " + (e.error or "; ".join(e.diff)), "event-check", "\n".join(e.diff))


def _error_suite(root: ET.Element, where: str, err: TataraError, stamp: str) -> None:
    """A kernel (or stage) with no results: one <error> testcase."""
    suite = ET.SubElement(root, "testsuite", name=where if where == "tatara-build" else f"kernel {where}",
                          timestamp=stamp, hostname=_text(socket.gethostname()),
                          tests="1", failures="0", errors="1", skipped="0", time="0.000")
    case = ET.SubElement(suite, "testcase", classname=_text(where), name="run", time="0.000000")
    rendered = err.render()
    error = ET.SubElement(case, "error", message=_text(rendered.splitlines()[0] if rendered else type(err).__name__),
                          type=f"exit-{int(err.exit_code)}")
    error.text = _text(_tail(rendered))


def _skip(case: ET.Element, counts: dict[str, int], reason: str) -> None:
    ET.SubElement(case, "skipped", message=_text(reason))
    counts["skipped"] += 1


def _case(suite: ET.Element, counts: dict[str, int], classname: str, name: str, seconds: float) -> ET.Element:
    counts["tests"] += 1
    return ET.SubElement(suite, "testcase", classname=_text(classname), name=_text(name), time=f"{seconds:.6f}")


def _fail(case: ET.Element, counts: dict[str, int], message: str, kind: str, body: str) -> None:
    counts["failures"] += 1
    failure = ET.SubElement(case, "failure", message=_text(message), type=kind)
    failure.text = _text(body)


def write(path: Path, matrix: dict[str, Verification], name: str = "tatara-build",
          failed: dict[str, TataraError] | None = None) -> None:
    root = document(matrix, name, failed)
    ET.indent(root)
    data = outdir.XML_DECLARATION + ET.tostring(root, encoding="utf-8") + b"\n"
    outdir.write_file(path, data, REPORT, "--junit")


def check(path: Path) -> Path:
    """Before a run: may --junit PATH be written (exit 2 if not)?"""
    return outdir.check_file(path, REPORT, "--junit")

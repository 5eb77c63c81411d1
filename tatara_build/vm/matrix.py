"""The same objects and cases on several kernels: one VM per kernel, up to
`jobs` at a time (QEMU under TCG uses one core each). The result is keyed by
kernel name ("5.10", "6.1", … or the path given), in the order asked."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from ..errors import TataraError
from . import kernels, runner
from .kernels import Kernel
from .results import Verification


def default_jobs(count: int) -> int:
    """One VM per core (each TCG guest is one busy host thread)."""
    return max(1, min(count, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def run(objects: list[runner.ObjectJob], specs: list[str], cases: list[runner.CaseJob] = (),
        maps: list[runner.MapJob] = (), *, jobs: int | None = None, timeout: float = runner.DEFAULT_TIMEOUT,
        accel: str = "auto", resolve: Callable[[str], Kernel] = kernels.resolve) -> dict[str, Verification]:
    """Resolve every kernel first (downloads overlap; a dropped pin or a
    missing image stops the run before any VM boots, exit 3), then boot them.
    A failing VM does not cancel the others; the first failure, named by its
    kernel, is raised once all have finished."""
    jobs = jobs or default_jobs(len(specs))
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(specs)))) as pool:
        resolved = _gather(specs, [pool.submit(resolve, spec) for spec in specs])
        images = {k.name: k for k in resolved.values()}  # "6.12.5" and "6.12" are one kernel
        futures = [pool.submit(runner.run, objects, kernel, list(cases), list(maps), timeout=timeout, accel=accel)
                   for kernel in images.values()]
        return _gather(list(images), futures)


def _gather(specs: list[str], futures) -> dict:
    """Results by spec. On failures the first is raised, carrying what the
    others found (`err.results`) and every failure (`err.failed`, by kernel),
    so a JUnit report can still show the kernels that finished."""
    out, failures = {}, {}
    for spec, future in zip(specs, futures):
        try:
            out[spec] = future.result()
        except TataraError as err:
            failures[spec] = named(spec, err)
    if failures:
        first = next(iter(failures.values()))
        first.results, first.failed = out, failures
        raise first
    return out


def named(spec: str, err: TataraError) -> TataraError:
    """The same error, its first message prefixed with the kernel."""
    if err.diagnostics and not err.diagnostics[0].message.startswith("kernel "):
        err.diagnostics[0].message = f"kernel {spec}: {err.diagnostics[0].message}"
        err.args = ("\n".join(d.message for d in err.diagnostics),)
    return err

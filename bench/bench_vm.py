"""VM boot and verify + packet-test time (issue 18's VM targets).

Builds every example with the C backend, then measures (median of N; wall
seconds, and QEMU's own CPU seconds, which a loaded machine disturbs less):
  cold      an empty plan, booted cold (no snapshot): to /init, to QEMU's exit
  restored  an empty plan, restored from the kernel's snapshot (vm/snapshot.py)
  test      `tatara-build test examples/drop-syn.tlisp --backend c` (the CLI, build cached)
  verify50  50 objects (the examples' objects repeated), loaded in one VM
  all       every example's objects and packet cases in one VM
Targets (TCG): /init <= 1.0 s, test <= 1.5 s, verify50 <= boot + 0.1 s x 50.
The load average and `qemu-system-x86_64 -version` (a process start) are
printed as the reference for how loaded the machine was.

    .venv/bin/python bench/bench_vm.py [--repeat N] [--accel auto|tcg|kvm] [--kernel 6.1]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tatara_build.compile import BuildOptions  # noqa: E402
from tatara_build.pipeline import build  # noqa: E402
from tatara_build.check import check  # noqa: E402
from tatara_build.frontend import load  # noqa: E402
from tatara_build.vm import cases, kernels, qemu, runner, snapshot  # noqa: E402

EMPTY_PLAN = [("job/plan", 0o100644, b"")]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(fn) -> tuple[float, float, object]:
    """(wall, CPU of the children reaped meanwhile, result)."""
    cpu, started = _children_cpu(), time.perf_counter()
    result = fn()
    return time.perf_counter() - started, _children_cpu() - cpu, result


def examples(tmp: Path) -> tuple[list, list, list]:
    objects, case_jobs, map_jobs = [], [], []
    for example in sorted((REPO / "examples").glob("*.tlisp")):
        module = check(load(example))
        out = tmp / example.stem
        manifest = build(example, out, BuildOptions(backend="c"))
        o, c, m = cases.jobs(module, out, manifest, object_index=len(objects))
        objects, case_jobs, map_jobs = objects + o, case_jobs + c, map_jobs + m
    return objects, case_jobs, map_jobs


def empty_boot(kernel, accel: str, cold: bool) -> qemu.Boot:
    os.environ["TATARA_VM_SNAPSHOT"] = "0" if cold else "1"
    try:
        return snapshot.boot_job(kernel, EMPTY_PLAN, timeout=300, accel=accel)
    finally:
        del os.environ["TATARA_VM_SNAPSHOT"]


def measure(args, kernel, tmp: Path) -> dict[str, list[tuple[float, ...]]]:
    objects, case_jobs, map_jobs = examples(tmp)
    # verify only: each object as `tatara-build verify` sees it (no tests, seeds or events)
    fifty = [runner.ObjectJob(objects[i % len(objects)].path) for i in range(50)]
    cli = [str(REPO / ".venv" / "bin" / "tatara-build"), "test", str(REPO / "examples" / "drop-syn.tlisp"),
           "--backend", "c", "--kernel", args.kernel, "-o", str(tmp / "cli-out")]
    rows: dict[str, list[tuple[float, ...]]] = {}
    empty_boot(kernel, args.accel, cold=False)  # the snapshot is saved here, not timed
    for _ in range(args.repeat):
        rows.setdefault("qemu -version", []).append(timed(lambda: subprocess.run(
            [qemu.qemu_binary(), "-version"], capture_output=True))[:2])
        for name, cold in (("cold", True), ("restored", False)):
            wall, cpu, boot = timed(lambda: empty_boot(kernel, args.accel, cold))
            rows.setdefault(name, []).append((wall, cpu, boot.ready_seconds or float("nan")))
        wall, cpu, ran = timed(lambda: subprocess.run(cli, capture_output=True, text=True))
        if ran.returncode != 0:
            sys.exit(f"`{' '.join(cli)}` failed ({ran.returncode}):\n{ran.stderr[-2000:]}")
        rows.setdefault("test", []).append((wall, cpu))
        for name, jobs in (("verify50", (fifty, [], [])), ("all", (objects, case_jobs, map_jobs))):
            wall, cpu, v = timed(lambda: runner.run(jobs[0], kernel, jobs[1], jobs[2], accel=args.accel))
            if not v.passed:
                failed = [o.path for o in v.objects if not o.loaded] + [f"{c.test}/{c.case}" for c in v.cases
                                                                       if not (c.passed or c.skipped)]
                failed += [f"{m.test}/{m.map}" for m in [*v.maps, *v.event_checks] if not (m.passed or m.skipped)]
                sys.exit(f"{name}: failed on {args.kernel}: {', '.join(map(str, failed)) or 'see tatara-build test'}")
            rows.setdefault(name, []).append((wall, cpu, v.guest_ready_seconds or float("nan")))
    rows["sizes"] = [(len(objects), len(case_jobs), len(fifty))]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--accel", default="auto")
    parser.add_argument("--kernel", default="6.1")
    args = parser.parse_args()
    kernel = kernels.resolve(args.kernel)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args, kernel, Path(tmp))
    n_objects, n_cases, n_fifty = rows.pop("sizes")[0]

    def med(name: str, k: int) -> float:
        return statistics.median(r[k] for r in rows[name])

    print(f"kernel {kernel.package or kernel.name} {kernel.version or ''}  image {kernel.image.name}  "
          f"accel {'tcg' if qemu.tcg_chosen(args.accel) else 'kvm'}  median of {args.repeat}  "
          f"load {load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"{'':28} {'wall s':>7} {'cpu s':>7} {'/init s':>8}")
    labels = {"qemu -version": "qemu -version (reference)", "cold": "boot, cold (empty plan)",
              "restored": "boot, restored (empty plan)", "test": "tatara-build test drop-syn",
              "verify50": f"verify {n_fifty} objects, one VM", "all": f"all: {n_objects} obj, {n_cases} cases"}
    for name, label in labels.items():
        ready = f"{med(name, 2):8.2f}" if len(rows[name][0]) > 2 else ""
        print(f"{label:28} {med(name, 0):7.2f} {med(name, 1):7.2f} {ready}")
    boot = med("restored", 0)
    print(f"targets: /init {med('restored', 2):.2f} s (<= 1.0), test {med('test', 0):.2f} s (<= 1.5), "
          f"verify50 {med('verify50', 0):.2f} s (<= boot + 5.0 = {boot + 5.0:.2f})")


if __name__ == "__main__":
    main()

"""The kernel matrix's cost: one boot per pinned kernel, then every example
on every kernel, one VM per kernel, `-j` at a time (default 2: the cores of
this project's machines). Under TCG here, since KVM does not work on them.

    .venv/bin/python bench/bench_matrix.py [--jobs N] [--repeat N] [--accel tcg|auto|kvm] [--kernels 5.10,6.1,...]

Prints per kernel: boot to power-off with an empty plan and when the guest
reached /init, booted cold and restored from the kernel's snapshot; then the matrix wall time and each kernel's VM time inside
it, and the sum of those (what one VM after another would cost)."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tatara_build import pipeline  # noqa: E402
from tatara_build.compile import BuildOptions  # noqa: E402
from tatara_build.compile.progress import make_progress  # noqa: E402
from tatara_build.vm import cases, kernels, matrix, snapshot  # noqa: E402

EMPTY_PLAN = [("job/plan", 0o100644, b"")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--accel", default="tcg")
    parser.add_argument("--kernels", default="all")
    args = parser.parse_args()
    lines = kernels.parse_list(args.kernels)
    images = {line: kernels.resolve(line) for line in lines}  # downloads are not timed

    quiet = make_progress(True)
    objects, case_jobs, map_jobs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for example in sorted((REPO / "examples").glob("*.tlisp")):
            module = pipeline.load_checked(example, quiet)
            out = Path(tmp) / example.stem
            manifest = pipeline.build(example, out, BuildOptions(backend="c"), quiet, module)
            o, c, m = cases.jobs(module, out, manifest, object_index=len(objects))
            objects, case_jobs, map_jobs = objects + o, case_jobs + c, map_jobs + m

        print(f"one boot per kernel (empty plan, {args.accel}, median of {args.repeat}; cold, then restored"
              " from the kernel's snapshot):")
        for line, kernel in images.items():
            snapshot.boot_job(kernel, EMPTY_PLAN, timeout=300, accel=args.accel)  # saves the snapshot: not timed
            walls, ready = {"cold": [], "restored": []}, {"cold": [], "restored": []}
            for _ in range(args.repeat):
                for mode in walls:
                    os.environ["TATARA_VM_SNAPSHOT"] = "0" if mode == "cold" else "1"
                    boot = snapshot.boot_job(kernel, EMPTY_PLAN, timeout=300, accel=args.accel)
                    walls[mode].append(boot.seconds)
                    ready[mode].append(boot.ready_seconds or float("nan"))
            os.environ.pop("TATARA_VM_SNAPSHOT", None)
            print(f"  {line:5} {kernel.version:22} {kernel.image.name:8}"
                  + "".join(f"   {mode} {statistics.median(walls[mode]):5.2f} s (/init {statistics.median(ready[mode]):5.2f})"
                            for mode in walls))

        walls, per_kernel = [], {}
        for _ in range(args.repeat):
            started = time.perf_counter()
            results = matrix.run(objects, lines, case_jobs, map_jobs, jobs=args.jobs, accel=args.accel, timeout=900,
                                 resolve=images.__getitem__)
            walls.append(time.perf_counter() - started)
            for line, v in results.items():
                per_kernel.setdefault(line, []).append(v.boot_seconds)
                if not v.passed:
                    sys.exit(f"kernel {line}: an example failed; run `tatara-build test` on it")
    n_cases = len(case_jobs)
    print(f"matrix: {len(objects)} examples x {len(lines)} kernels, {n_cases} packet cases per kernel, "
          f"-j {args.jobs} ({args.accel}):")
    for line, seconds in per_kernel.items():
        print(f"  {line:5} VM {statistics.median(seconds):6.2f} s")
    print(f"  wall {statistics.median(walls):6.2f} s   (one VM after another: "
          f"{sum(statistics.median(s) for s in per_kernel.values()):.2f} s)")


if __name__ == "__main__":
    main()

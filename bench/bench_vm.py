"""VM boot time and the total verify + packet-test time for all examples.

Builds every example with the C backend, then measures (median of N):
  boot     a VM with an empty plan (kernel + initramfs up and powered off)
  all      one VM that loads every example object and runs all their cases
The per-object cost is (all - boot) / objects. Target (KVM): all <= 3 s +
0.1 s per object. Here /dev/kvm does not work, so the numbers are TCG
unless --accel kvm is forced on a machine where it does.

    .venv/bin/python bench/bench_vm.py [--repeat N] [--accel auto|tcg|kvm] [--kernel 6.1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tatara_build.compile import BuildOptions
from tatara_build.pipeline import build  # noqa: E402
from tatara_build.check import check  # noqa: E402
from tatara_build.frontend import load  # noqa: E402
from tatara_build.vm import cases, initramfs, kernels, qemu, runner  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--accel", default="auto")
    parser.add_argument("--kernel", default="6.1")
    args = parser.parse_args()

    kernel = kernels.resolve(args.kernel)
    objects, case_jobs, map_jobs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for example in sorted((REPO / "examples").glob("*.tlisp")):
            module = check(load(example))
            out = Path(tmp) / example.stem
            manifest = build(example, out, BuildOptions(backend="c"))
            o, c, m = cases.jobs(module, out, manifest, object_index=len(objects))
            objects, case_jobs, map_jobs = objects + o, case_jobs + c, map_jobs + m

        empty = initramfs.write_initrd([("job/plan", 0o100644, b"")], Path(tmp) / "empty.img")
        boots, runs, guest_ready, accel = [], [], [], "?"
        for _ in range(args.repeat):
            started = time.perf_counter()
            boot = qemu.boot_best(kernel.image, empty, timeout=120, accel=args.accel)
            boots.append(time.perf_counter() - started)
            guest_ready.append(boot.ready_seconds or float("nan"))
            started = time.perf_counter()
            verification = runner.run(objects, kernel, case_jobs, map_jobs, accel=args.accel)
            runs.append(time.perf_counter() - started)
            accel = verification.accel
            if not verification.passed:
                sys.exit("an example failed verification or its packet tests; run `tatara-build test` on it")

    boot, total = statistics.median(boots), statistics.median(runs)
    n = len(objects)
    insns = sum(p.verified_insns or 0 for o in verification.objects for p in o.programs)
    print(f"kernel {kernel.package or kernel.name} {kernel.version or ''}  image {kernel.image.name}  accel {accel}")
    print(f"boot (empty plan, to power-off)   {boot:6.2f} s   (guest /init after {statistics.median(guest_ready):.2f} s)")
    print(f"all examples: {n} objects, {len(case_jobs)} packet cases, {insns} verified insns")
    print(f"verify + test, one VM             {total:6.2f} s   (median of {args.repeat})")
    print(f"per object beyond the boot        {(total - boot) / n:6.2f} s")
    print(f"target (KVM) 3 s + 0.1 s/object = {3 + 0.1 * n:.2f} s; measured {total:.2f} s on {accel}")


if __name__ == "__main__":
    main()

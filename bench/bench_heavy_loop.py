"""One heavy program in one VM: the verdict, the verified instructions, the
wall time of the boot and QEMU's peak resident memory (VmHWM, polled: under
TCG it is the guest RAM the kernel touched plus QEMU's own, an upper bound
of what the guest used).

Default source: tests/vm/fixtures/heavy-loop.tlisp (a loop of ~590,000
verifier instructions that the checker accepts). To measure older code,
copy this script into an export of it (`git archive REV | tar -x -C DIR`)
and run it from there with --source pointing at the fixture.

    .venv/bin/python bench/bench_heavy_loop.py [--source F] [--kernel 6.1] [--memory 256] [--timeout 600]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tatara_build.check import check  # noqa: E402
from tatara_build.compile import BuildOptions  # noqa: E402
from tatara_build.errors import TataraError  # noqa: E402
from tatara_build.frontend import load  # noqa: E402
from tatara_build.pipeline import build  # noqa: E402
from tatara_build.vm import cases, kernels, qemu, runner  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "vm" / "fixtures" / "heavy-loop.tlisp"


def _children_peak_kb(stop: threading.Event, peak: list[int]) -> None:
    """Poll the VmHWM of every child process of ours (QEMU)."""
    me = str(os.getpid())
    while not stop.wait(0.25):
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text()
                if stat[stat.rindex(")") + 2 :].split()[1] != me:
                    continue
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
            except (OSError, ValueError, IndexError):
                continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=FIXTURE)
    parser.add_argument("--kernel", default="6.1")
    parser.add_argument("--memory", type=int, default=qemu.MEMORY_MB, help="guest RAM in MB")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    qemu.MEMORY_MB = args.memory
    kernel = kernels.resolve(args.kernel)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        module = check(load(args.source))
        manifest = build(args.source, out, BuildOptions(backend="c", use_cache=False))
        objects, case_jobs, map_jobs = cases.jobs(module, out, manifest)
        stop, peak = threading.Event(), [0]
        poller = threading.Thread(target=_children_peak_kb, args=(stop, peak), daemon=True)
        poller.start()
        start = time.monotonic()
        try:
            v = runner.run(objects, kernel, case_jobs, map_jobs, timeout=args.timeout, accel="tcg")
        except TataraError as err:
            print(f"{args.source.name} kernel {args.kernel} memory {args.memory} MB: {type(err).__name__} after "
                  f"{time.monotonic() - start:.1f} s, QEMU peak RSS {peak[0] // 1024} MB\n{str(err)[-1500:]}")
            return
        finally:
            stop.set()
            poller.join()
    for obj in v.objects:
        for p in obj.programs:
            print(f"{args.source.name} kernel {args.kernel} memory {args.memory} MB: {p.program} {p.verdict}, "
                  f"{p.verified_insns} insns, verification {p.verification_time_us} us, load step "
                  f"{v.load_seconds} s, boot {v.boot_seconds} s wall, QEMU peak RSS {peak[0] // 1024} MB, "
                  f"cases passed: {all(c.passed for c in v.cases)}")
        if obj.loader_output:
            print(obj.loader_output[-1500:])


if __name__ == "__main__":
    main()

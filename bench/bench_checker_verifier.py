"""Checker-accepted means verifier-accepted, at scale: N generated programs
(tests/property/programs.py, seeded) of every program kind, built with the
C backend, verified in ONE boot per pinned kernel; prints how many were
generated, refused by the checker, verified and rejected, and the first
rejections (each one is a checker rule or a backend fix to make).

    .venv/bin/python bench/bench_checker_verifier.py [--count 300] [--seed 0] [--kernel 6.1 --kernel 6.12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tatara_build.vm import kernels  # noqa: E402
from tests.property import verify  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="first seed (programs are seed, seed+1, …)")
    parser.add_argument("--kernel", action="append", help="pinned kernel (repeatable; default 6.1 and 6.12)")
    parser.add_argument("--show", type=int, default=3, help="rejections to print in full")
    args = parser.parse_args()
    failed = False
    for name in args.kernel or ["6.1", "6.12"]:
        kernel = kernels.resolve(name)
        with tempfile.TemporaryDirectory(prefix="tatara-bench-gen-") as tmp:
            started = time.monotonic()
            report = verify.vm_verify(range(args.seed, args.seed + args.count), Path(tmp), kernel)
            wall = time.monotonic() - started
        print(f"{report.summary()}; {wall:.1f} s wall (build + boot)")
        for text in (report.checker_refused + report.rejected)[: args.show]:
            print("-" * 72, text, sep="\n")
        failed |= bool(report.rejected or report.checker_refused)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

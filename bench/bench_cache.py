"""Cold vs warm `tatara-build build` (the content-addressed cache).

Runs the CLI as a user would (fresh process each time) on every example with
the C backend, and with the aya backend too when TATARA_VENDOR_DIR names a
vendor directory: first with an empty $XDG_CACHE_HOME (cold), then again
(warm: the object comes from the cache). Target: warm <= 1 s.

    .venv/bin/python bench/bench_cache.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed_build(example: Path, backend: str, out: Path, env: dict) -> float:
    started = time.perf_counter()
    ran = subprocess.run([sys.executable, "-m", "tatara_build", "build", str(example), "--backend", backend,
                          "-o", str(out), "--json"], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if ran.returncode != 0:
        raise SystemExit(f"build failed ({example.name}, {backend}):\n{ran.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="warm builds per example")
    args = parser.parse_args()
    backends = ["c"] + (["aya"] if os.environ.get("TATARA_VENDOR_DIR") else [])
    print(f"{'example':<16} {'backend':<7} {'cold s':>8} {'warm s (median)':>16} {'warm max':>9}")
    worst = 0.0
    for backend in backends:
        for example in sorted((REPO / "examples").glob("*.tlisp")):
            with tempfile.TemporaryDirectory(prefix="tatara-bench-") as tmp:
                env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache"), "CI": "true"}
                cold = timed_build(example, backend, Path(tmp) / "cold", env)
                warm = [timed_build(example, backend, Path(tmp) / f"warm{i}", env) for i in range(args.repeat)]
            worst = max(worst, max(warm))
            print(f"{example.stem:<16} {backend:<7} {cold:>8.2f} {statistics.median(warm):>16.2f} {max(warm):>9.2f}")
    print(f"slowest warm rebuild: {worst:.2f} s (target <= 1 s): {'OK' if worst <= 1.0 else 'OVER'}")


if __name__ == "__main__":
    main()

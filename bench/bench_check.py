"""Benchmark: time `check` (and the reader + forms before it) on a generated
file of 1,000 top-level forms: 250 x (map, program, bpf-fn, policy), each
function a realistic body (header parse, fields, lets, a loop, map ops).

Run: .venv/bin/python bench/bench_check.py [--forms N] [--repeat R]
Prints the best of R runs for each stage in this process (interpreter
start-up and imports excluded; target: load + check < 100 ms), then the best
wall time of R runs of `python -m tatara_build check FILE`, which includes
Python's start-up, the imports and printing: what a user waits for.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tatara_build.check import check
from tatara_build.frontend import load

GROUP = """\
(defbpf-map hits-{i} :kind :hash :key u16 :value u64 :max-entries 1024)
(defbpf-program prog-{i} :kind :xdp :attach (:target "eth0") :license "GPL" :uses-maps (hits-{i}))
(bpf-fn prog-{i} (ctx)
  (if-let (tcp (header ctx :tcp))
    (let ((port (field tcp :dst-port))
          (weight (u64 0)))
      (loop (k 0 4)
        (if (= (+ weight (u64 1)) (u64 3)) (break))
        (set! weight (+ weight (u64 1))))
      (map-add hits-{i} port weight)
      (if (and (field tcp :syn) (not (field tcp :ack)) (< port 1024))
          (return :xdp-drop)
          (return :xdp-pass)))
    (return :xdp-pass)))
(defbpf-policy policy-{i} :description "group {i}" :programs (prog-{i}) :maps (hits-{i}))
"""


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        result = None  # free the previous result outside the timed region
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    groups = max(1, args.forms // 4)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.tlisp"
        path.write_text("".join(GROUP.format(i=i) for i in range(groups)))
        load_s, module = best(lambda: load(path), args.repeat)
        # check fills types in place; re-load outside the timed region each run.
        check_times = []
        for _ in range(args.repeat):
            fresh = None
            fresh = load(path)
            start = time.perf_counter()
            check(fresh)
            check_times.append(time.perf_counter() - start)
        check_s = min(check_times)
        lines = path.read_text().count("\n")
        command = [sys.executable, "-m", "tatara_build", "check", str(path)]
        cli_s, _ = best(lambda: subprocess.run(command, check=True, capture_output=True), args.repeat)
    print(f"bench_check: {groups * 4} forms, {lines} lines, best of {args.repeat}")
    print(f"  load (reader + forms): {load_s * 1000:7.1f} ms")
    print(f"  check:                 {check_s * 1000:7.1f} ms")
    print(f"  load + check:          {(load_s + check_s) * 1000:7.1f} ms  (target < 100 ms)")
    print(f"  `tatara-build check` process, wall: {cli_s * 1000:7.1f} ms  (incl. Python start-up and imports)")


if __name__ == "__main__":
    main()

"""Benchmark: time `check` (and the reader + forms before it) on a generated
file of N top-level forms (default 10,000): N/4 x (map, program, bpf-fn,
policy), each function a realistic body (header parse, fields, lets, a loop,
map ops).

Run: .venv/bin/python bench/bench_check.py [--forms N] [--repeat R]
Prints the best of R runs for each stage in this process (interpreter
start-up and imports excluded), then the median of R runs of
`python -m tatara_build check FILE` as a whole process: wall and CPU time
and peak RSS (from wait4), which include Python's start-up, the imports and
printing: what a user waits for. Issue 18's targets for 10,000 forms: <= 1 s
and <= 200 MB. The children run with bytecode caching on, as an installed
tatara-build would.
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
    parser.add_argument("--forms", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
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
        runs = [process(command) for _ in range(args.repeat + 1)][1:]  # the first writes .pyc files
    wall, cpu, peak = (statistics.median(r[i] for r in runs) for i in range(3))
    print(f"bench_check: {groups * 4} forms, {lines} lines, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  in this process, best of {args.repeat}:")
    print(f"    load (reader + forms): {load_s * 1000:7.1f} ms")
    print(f"    check:                 {check_s * 1000:7.1f} ms")
    print(f"  `tatara-build check FILE` as a process, median of {args.repeat}:")
    print(f"    wall {wall:6.3f} s   cpu {cpu:6.3f} s   (target for 10,000 forms: <= 1 s)")
    print(f"    peak RSS {peak:6.1f} MB   (target for 10,000 forms: <= 200 MB)")


def process(command: list[str]) -> tuple[float, float, float]:
    """(wall s, cpu s, peak RSS MB) of one run of `command`, which must succeed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"`{' '.join(command)}` failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


if __name__ == "__main__":
    main()

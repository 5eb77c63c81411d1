"""Issue 18's ratios, each a command against its reference, run in turn
(A B A B ...) so that a machine whose speed drifts (shared, loaded) hits
both alike; prints per figure the median of the pair-by-pair ratios with
min and max, and the machine's load before and after.

    check     `tatara-build check examples/drop-syn.tlisp`  vs  `python -c pass`    target <= 4x
    help      `tatara-build --help`                        vs  `python -c pass`    target <= 4x
    build-hit `tatara-build build drop-syn --backend c`, a cache hit
                                                           vs  the same clang compile of its C    target <= 2x
    aya       with TATARA_VENDOR_DIR: cold build of drop-syn, then a rebuild after touching the
              generated crate's main.rs (shared cargo dir)   targets <= 20 s and <= 3 s

Wall time and CPU time (user + sys of the process and its children, from
wait4) are both shown; on a loaded machine wall ratios are noisy, CPU ratios
less so. The children run with bytecode caching on (PYTHONDONTWRITEBYTECODE
removed from their environment), as an installed tatara-build would, after
one warm-up run that writes the .pyc files.

    .venv/bin/python bench/bench_speed.py [-n RUNS] [--only check,help,build-hit,aya]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "drop-syn.tlisp"


def run_once(argv: list[str], env: dict) -> tuple[float, float, int]:
    """(wall s, cpu s, exit code) of one whole process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def compare(name: str, a: list[str], b: list[str], env: dict, runs: int, target: float | None) -> None:
    for argv in (a, b):  # warm-up: .pyc files, page cache, the tool's own caches
        _, _, code = run_once(argv, env)
        if code != 0:
            raise SystemExit(f"{name}: `{' '.join(argv)}` exited {code}")
    rows = []
    for _ in range(runs):
        wall_a, cpu_a, _ = run_once(a, env)
        wall_b, cpu_b, _ = run_once(b, env)
        rows.append((wall_a, cpu_a, wall_b, cpu_b))
    wall_ratio = [r[0] / r[2] for r in rows]
    cpu_ratio = [r[1] / r[3] for r in rows]

    def fig(values: list[float], unit: str = "") -> str:
        return f"{statistics.median(values):7.3f}{unit} (min {min(values):.3f}, max {max(values):.3f})"

    print(f"\n{name}: A = {' '.join(map(_short, a))}\n{' ' * len(name)}  B = {' '.join(map(_short, b))}")
    print(f"  A wall s    {fig([r[0] for r in rows])}    A cpu s {fig([r[1] for r in rows])}")
    print(f"  B wall s    {fig([r[2] for r in rows])}    B cpu s {fig([r[3] for r in rows])}")
    verdict = ""
    if target is not None:
        verdict = f"   target <= {target}x: {'met' if statistics.median(wall_ratio) <= target else 'NOT met'} (wall)"
    print(f"  A/B wall    {fig(wall_ratio, 'x')}{verdict}")
    print(f"  A/B cpu     {fig(cpu_ratio, 'x')}")


def _short(arg: str) -> str:
    return arg.replace(str(REPO) + "/", "").replace(tempfile.gettempdir() + "/", "$TMP/")


def cli() -> list[str]:
    script = Path(sys.executable).parent / "tatara-build"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tatara_build"]


def aya(env: dict) -> None:
    vendor = env.get("TATARA_VENDOR_DIR")
    if not vendor:
        print("\naya: not measured (no TATARA_VENDOR_DIR: the aya crates cannot be fetched offline)")
        return
    from tatara_build.backends import emit
    from tatara_build.check import check
    from tatara_build.frontend import load

    with tempfile.TemporaryDirectory(prefix="bench-aya-") as base:
        base = Path(base)
        env = dict(env, XDG_CACHE_HOME=str(base / "cache"))
        crate = base / "crate"
        emit(check(load(EXAMPLE)), "aya", crate)
        argv = [sys.executable, "-c", "import sys; from pathlib import Path; from tatara_build.compile import "
                "BuildOptions, compile_generated; compile_generated(Path(sys.argv[1]), 'drop-syn', "
                "Path(sys.argv[2]), BuildOptions())"]
        cold, _, code = run_once([*argv, str(crate), str(base / "out1")], env)
        if code != 0:
            raise SystemExit("aya: the cold build failed (run tatara-build build … --backend aya to see why)")
        main_rs = crate / "src" / "main.rs"
        main_rs.write_text(main_rs.read_text() + "\n// touched\n")
        touched, _, code = run_once([*argv, str(crate), str(base / "out2")], env)
        print(f"\naya (vendor dir {vendor}):\n  cold build of drop-syn   {cold:7.2f} s   target <= 20 s"
              f"\n  touched-source rebuild   {touched:7.2f} s   target <= 3 s (exit {code})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", "--runs", type=int, default=7, help="counted pairs per comparison")
    parser.add_argument("--only", default="check,help,build-hit,aya")
    args = parser.parse_args()
    only = set(args.only.split(","))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    print(f"cores {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (before), "
          f"{args.runs} pairs each, medians of pair-by-pair ratios")
    baseline = [sys.executable, "-c", "pass"]
    if "check" in only:
        compare("check", [*cli(), "check", str(EXAMPLE)], baseline, env, args.runs, 4.0)
    if "help" in only:
        compare("help", [*cli(), "--help"], baseline, env, args.runs, 4.0)
    if "build-hit" in only:
        with tempfile.TemporaryDirectory(prefix="bench-hit-") as base:
            base = Path(base)
            hit_env = dict(env, XDG_CACHE_HOME=str(base / "cache"))
            out = base / "out"
            build = [*cli(), "build", str(EXAMPLE), "--backend", "c", "-o", str(out)]
            _, _, code = run_once(build, hit_env)
            if code != 0:
                raise SystemExit("build-hit: the first build failed (is clang installed?)")
            from tatara_build.compile import clang, toolchain

            source = out / "src" / f"{EXAMPLE.stem}.bpf.c"
            cc = toolchain.find_clang()
            raw = [str(cc.path), *clang.flags("v3", source.parent), "-c", str(source), "-o", str(base / "raw.o")]
            compare("build-hit", build, raw, hit_env, args.runs, 2.0)
    if "aya" in only:
        aya(env)
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (after)")


if __name__ == "__main__":
    main()

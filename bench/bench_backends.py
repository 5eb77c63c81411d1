"""Verified instruction counts: generated code vs hand-written references.

For drop-syn, in both backends: build our object and the hand-written one
(bench/reference/), load each on the host kernel into a private bpffs
(never attached), and print the verifier's "processed N insns" and the
ratio (target: ours within 5% of the reference, or below it). The C pair is
built by each clang of the compiler matrix at each -mcpu it supports, the
same compiler and flags on both sides (--clang NAME for one only).

Needs root, bpftool and clang; the aya half also needs a crate vendor
directory (--vendor-dir or $TATARA_VENDOR_DIR), since crates.io is
unreachable here. Missing pieces are reported and skipped, never faked.

    .venv/bin/python bench/bench_backends.py [--vendor-dir DIR] [--clang NAME] [--all]

`--all` also prints the count of every example and backend fixture (the
table to compare code-shape changes with, before and after).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tatara_build import check, frontend  # noqa: E402
from tatara_build.backends import emit  # noqa: E402

EXAMPLE = ROOT / "examples" / "drop-syn.tlisp"
REFERENCE_C = ROOT / "bench" / "reference" / "drop_syn.bpf.c"
REFERENCE_AYA = ROOT / "bench" / "reference" / "drop-syn-aya"
CLANG_FLAGS = ["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-I/usr/include/x86_64-linux-gnu", "-c"]
COMPILERS = ("clang-14", "clang-22")
CPUS = {"clang-14": ("v2", "v3"), "clang-22": ("v2", "v3", "v4")}  # v4 needs clang >= 18
PROCESSED = re.compile(r"processed (\d+) insns")


def verified_insns(obj: Path) -> list[int]:
    """Load every program of obj into a private bpffs; the verifier's count
    per program (bpftool 7.1 does not print verified_insns; -d shows the log)."""
    pin_root = Path(tempfile.mkdtemp(prefix="tatara-bench-"))
    subprocess.run(["mount", "-t", "bpf", "bpf", str(pin_root)], check=True)
    try:
        done = subprocess.run(["bpftool", "-d", "prog", "loadall", str(obj), f"{pin_root}/p", "pinmaps",
                               f"{pin_root}/m"], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"bpftool could not load {obj.name}:\n{done.stderr[-2000:]}")
        return [int(n) for n in PROCESSED.findall(done.stderr)]
    finally:
        subprocess.run(["umount", str(pin_root)], check=False)
        pin_root.rmdir()


def build_c(source: Path, out: Path, clang: str = "clang", cpu: str = "v3") -> Path:
    subprocess.run([clang, *CLANG_FLAGS, f"-mcpu={cpu}", str(source), "-o", str(out)], check=True)
    return out


def build_aya(crate: Path, stem: str, out: Path, vendor: Path) -> Path:
    from tatara_build.compile import BuildOptions, compile_generated

    compile_generated(crate, stem, out, BuildOptions(backend="aya", vendor_dir=vendor), source_sha256=None)
    return out / f"{stem}.o"


def report(backend: str, ours: list[int], reference: list[int], how: str = "") -> None:
    ratio = sum(ours) / sum(reference)
    verdict = "ok" if ratio <= 1.05 else "ABOVE 5% TARGET"
    print(f"{backend:4} {how:12} drop-syn  generated {sum(ours):5d} insns  hand-written {sum(reference):5d} insns  "
          f"ratio {ratio:.3f}  {verdict}")


def every_source(vendor: Path | None, compilers: list[str]) -> None:
    """Verified insns of every example and fixture (-mcpu=v3): C per clang,
    aya with the vendor directory."""
    from tatara_build.compile import BuildOptions
    from tatara_build.pipeline import build

    sources = sorted((ROOT / "examples").glob("*.tlisp")) + sorted((ROOT / "tests" / "backends" / "fixtures").glob("*.tlisp"))
    columns = [("c", clang) for clang in compilers] + ([("aya", None)] if vendor else [])
    print(f"{'insns (v3)':20} " + " ".join(f"{backend + (' ' + clang if clang else ''):>12}" for backend, clang in columns))
    totals = [0] * len(columns)
    for source in sources:
        row = []
        for i, (backend, clang) in enumerate(columns):
            with tempfile.TemporaryDirectory(prefix="tatara-bench-") as tmp:
                out = Path(tmp) / "out"
                build(source, out, BuildOptions(backend=backend, use_cache=False, vendor_dir=vendor, clang=clang))
                try:
                    counts = sum(verified_insns(out / f"{source.stem}.o"))
                except RuntimeError:
                    row.append(f"{'not loadable':>12}")
                    continue
            totals[i] += counts
            row.append(f"{counts:12d}")
        print(f"{source.stem:20} " + " ".join(row))
    print(f"{'total':20} " + " ".join(f"{t:12d}" for t in totals))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendor-dir", type=Path, default=os.environ.get("TATARA_VENDOR_DIR"))
    parser.add_argument("--all", action="store_true", help="also every example and fixture")
    parser.add_argument("--clang", action="append", help="compare with this clang only (repeatable)")
    args = parser.parse_args()
    compilers = args.clang or [c for c in COMPILERS if shutil.which(c)]
    missing = [tool for tool in ("bpftool",) if shutil.which(tool) is None] + ([] if compilers else ["clang"])
    if missing or os.geteuid() != 0:
        print(f"skipped: needs root and {', '.join(missing) or 'bpftool/clang'} to load on the host kernel")
        return 0
    module = check.check(frontend.load(EXAMPLE))
    with tempfile.TemporaryDirectory(prefix="tatara-bench-") as tmp:
        work = Path(tmp)
        [c_file] = emit(module, "c", work / "c")
        for clang in compilers:
            for cpu in CPUS.get(clang, ("v3",)):
                ours = verified_insns(build_c(c_file, work / "ours.o", clang, cpu))
                reference = verified_insns(build_c(REFERENCE_C, work / "reference.o", clang, cpu))
                report("c", ours, reference, f"{clang} {cpu}")
        if args.vendor_dir is None:
            print("aya  skipped: no --vendor-dir / $TATARA_VENDOR_DIR (crates.io is unreachable here)")
        else:
            emit(module, "aya", work / "crate")
            ours = verified_insns(build_aya(work / "crate", "drop-syn", work / "aya-ours", args.vendor_dir))
            reference = verified_insns(build_aya(REFERENCE_AYA, "drop-syn-aya", work / "aya-ref", args.vendor_dir))
            report("aya", ours, reference)
    if args.all:
        every_source(args.vendor_dir, compilers)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Verified instruction counts: generated code vs hand-written references.

For drop-syn, in both backends: build our object and the hand-written one
(bench/reference/), load each on the host kernel into a private bpffs
(never attached), and print the verifier's "processed N insns" and the
ratio (target: ours within 5% of the reference, or below it).

Needs root, bpftool and clang; the aya half also needs a crate vendor
directory (--vendor-dir or $TATARA_VENDOR_DIR), since crates.io is
unreachable here. Missing pieces are reported and skipped, never faked.

    .venv/bin/python bench/bench_backends.py [--vendor-dir DIR] [--all]

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
CLANG = ["clang", "-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-I/usr/include/x86_64-linux-gnu", "-c"]
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


def build_c(source: Path, out: Path) -> Path:
    subprocess.run([*CLANG, str(source), "-o", str(out)], check=True)
    return out


def build_aya(crate: Path, stem: str, out: Path, vendor: Path) -> Path:
    from tatara_build.compile import BuildOptions, compile_generated

    compile_generated(crate, stem, out, BuildOptions(backend="aya", vendor_dir=vendor), source_sha256=None)
    return out / f"{stem}.o"


def report(backend: str, ours: list[int], reference: list[int]) -> None:
    ratio = sum(ours) / sum(reference)
    verdict = "ok" if ratio <= 1.05 else "ABOVE 5% TARGET"
    print(f"{backend:4} drop-syn  generated {sum(ours):5d} insns  hand-written {sum(reference):5d} insns  "
          f"ratio {ratio:.3f}  {verdict}")


def every_source(vendor: Path | None) -> None:
    """Verified insns of every example and fixture, per backend."""
    from tatara_build.compile import BuildOptions
    from tatara_build.pipeline import build

    sources = sorted((ROOT / "examples").glob("*.tlisp")) + sorted((ROOT / "tests" / "backends" / "fixtures").glob("*.tlisp"))
    for backend in ("c", "aya") if vendor else ("c",):
        total = 0
        for source in sources:
            with tempfile.TemporaryDirectory(prefix="tatara-bench-") as tmp:
                out = Path(tmp) / "out"
                build(source, out, BuildOptions(backend=backend, use_cache=False, vendor_dir=vendor))
                try:
                    counts = verified_insns(out / f"{source.stem}.o")
                except RuntimeError:
                    print(f"{backend:4} {source.stem:20} not loadable on this host kernel")
                    continue
            total += sum(counts)
            print(f"{backend:4} {source.stem:20} {sum(counts):6d} insns")
        print(f"{backend:4} {'total':20} {total:6d} insns")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendor-dir", type=Path, default=os.environ.get("TATARA_VENDOR_DIR"))
    parser.add_argument("--all", action="store_true", help="also every example and fixture")
    args = parser.parse_args()
    missing = [tool for tool in ("clang", "bpftool") if shutil.which(tool) is None]
    if missing or os.geteuid() != 0:
        print(f"skipped: needs root and {', '.join(missing) or 'bpftool/clang'} to load on the host kernel")
        return 0
    module = check.check(frontend.load(EXAMPLE))
    with tempfile.TemporaryDirectory(prefix="tatara-bench-") as tmp:
        work = Path(tmp)
        [c_file] = emit(module, "c", work / "c")
        ours = verified_insns(build_c(c_file, work / "ours.o"))
        reference = verified_insns(build_c(REFERENCE_C, work / "reference.o"))
        report("c", ours, reference)
        if args.vendor_dir is None:
            print("aya  skipped: no --vendor-dir / $TATARA_VENDOR_DIR (crates.io is unreachable here)")
        else:
            emit(module, "aya", work / "crate")
            ours = verified_insns(build_aya(work / "crate", "drop-syn", work / "aya-ours", args.vendor_dir))
            reference = verified_insns(build_aya(REFERENCE_AYA, "drop-syn-aya", work / "aya-ref", args.vendor_dir))
            report("aya", ours, reference)
    if args.all:
        every_source(args.vendor_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

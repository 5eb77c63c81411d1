"""CLI commands of the vm stage: `verify` (objects through the target
kernel's verifier) and `test` (build + verify + packet tests), each one VM
boot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .app import SCHEMAS, app, json_errors, reports_errors
from .build import BACKEND, CLANG, VENDOR, Backend

KERNEL = typer.Option(None, "--kernel", help="6.1 (Debian bookworm, the default), 6.12, or a path to a bzImage/vmlinuz")
TIMEOUT = typer.Option(180.0, "--timeout", help="seconds before QEMU is killed (exit 5, 'VM timed out')")
ACCEL = typer.Option("auto", "--accel", help="auto (KVM when a probe boot works, else TCG), kvm or tcg")
JSON = typer.Option(False, "--json", help="print the results as JSON on stdout instead of tables")


@app.command(help="""Load each OBJ in a QEMU VM booted on the target kernel: verdict, verified
instructions, states, stack depth, xlated/jited size and verification time per program; on
rejection the verifier log with the failing source line. One VM boot for all objects. A
manifest.json next to the objects gets the results under `verification`.

Exit codes: 4 when a program is rejected or over --max-insns, 5 when the VM fails or times out.

Example: tatara-build verify out/drop-syn.o --kernel 6.1""")
@reports_errors
def verify(
    objects: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="BPF objects (.o)"),
    kernel: Optional[str] = KERNEL,
    max_insns: Optional[int] = typer.Option(None, "--max-insns", help="verified-instruction budget per program"),
    timeout: float = TIMEOUT,
    accel: str = ACCEL,
    json_out: bool = JSON,
) -> None:
    from .. import report, tables
    from ..vm import kernels, runner

    def run():
        jobs = [runner.ObjectJob(path, default_max_insns=max_insns or tables.DEFAULT_MAX_INSNS,
                                 generated=_generated_next_to(path)) for path in objects]
        return runner.run(jobs, kernels.resolve(kernel), timeout=timeout, accel=accel)

    verification = json_errors(json_out, run)
    for manifest in _manifests_listing(objects):
        mine = [o for o in verification.objects if Path(o.path).resolve().parent == manifest.parent]
        verified = all(o.loaded and all(p.verdict == "accepted" for p in o.programs) for o in mine)
        report.merge_into_manifest(manifest, verification.model_copy(
            update={"objects": mine, "verified": verified, "passed": verified}))
    _show(verification, json_out)
    report.verdict(verification)


@app.command(help="""Build FILE (like `tatara-build build`), then in one QEMU VM on the program's
target kernel (`:kernel` in the source, or --kernel): load the object through the verifier and
run every defbpf-test case with BPF_PROG_TEST_RUN, compare the returned action, dump the maps
and check :expect-maps (per-CPU values summed). A case with :repeat N runs N times (the maps
count every run) and reports the kernel's average ns/packet. Results go into OUT/manifest.json
under `verification`. The kernel is downloaded once (apt-get download, sha256-checked) into
$XDG_CACHE_HOME/tatara-build/kernels; KVM is used only when a probe boot shows it works.

Exit codes: 1 source error, 3 toolchain, 4 rejection or failed test, 5 VM failure or timeout.

Example: tatara-build test examples/drop-syn.tlisp --backend c -o out""")
@reports_errors
def test(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="the .tlisp source file"),
    backend: Backend = BACKEND,
    out: Path = typer.Option(Path("out"), "-o", "--out", help="output directory (replaced atomically)"),
    vendor_dir: Optional[Path] = VENDOR,
    clang: Optional[str] = CLANG,
    kernel: Optional[str] = KERNEL,
    timeout: float = TIMEOUT,
    accel: str = ACCEL,
    json_out: bool = JSON,
) -> None:
    from .. import pipeline, report
    from ..compile import BuildOptions
    from ..compile.progress import make_progress
    from ..vm import cases, kernels, runner

    def run():
        progress = make_progress(json_out)
        module = pipeline.load_checked(file, progress)  # once: the build and the cases share it
        options = BuildOptions(**{k: v for k, v in dict(backend=backend.value, vendor_dir=vendor_dir,
                                                         clang=clang).items() if v is not None})
        manifest = pipeline.build(file, out, options, progress, module)
        objects, case_jobs, map_jobs = cases.jobs(module, out, manifest)
        target = kernel or next((p.kernel for p in module.programs if p.kernel), None)
        return runner.run(objects, kernels.resolve(target), case_jobs, map_jobs, timeout=timeout, accel=accel)

    verification = json_errors(json_out, run)
    report.merge_into_manifest(out / "manifest.json", verification)
    _show(verification, json_out)
    report.verdict(verification)


def _show(verification, json_out: bool) -> None:
    from .. import report

    if json_out:
        print(verification.model_dump_json(indent=2))
    else:
        report.render(verification)


def _generated_next_to(obj: Path) -> list[Path]:
    """OUT/src/** when OBJ sits in a build output (for failure mapping)."""
    src = obj.parent / "src"
    return sorted(p for p in src.rglob("*") if p.suffix in (".c", ".rs")) if src.is_dir() else []


def _manifests_listing(objects: list[Path]) -> list[Path]:
    found = []
    for directory in sorted({p.resolve().parent for p in objects}):
        manifest = directory / "manifest.json"
        try:
            listed = {o["file"] for o in json.loads(manifest.read_text()).get("objects", [])}
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if any(p.resolve().parent == directory and p.name in listed for p in objects):
            found.append(manifest)
    return found


def _verification_schema() -> type:
    from ..vm.results import Verification

    return Verification


SCHEMAS["verification"] = _verification_schema

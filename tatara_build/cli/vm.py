"""CLI commands of the vm stage: `verify` (objects through the target
kernel's verifier) and `test` (build + verify + packet tests), each one VM
boot."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from .app import SCHEMAS, app, error_document, json_errors, reports_errors
from .build import BACKEND, CLANG, FILE, OUT, VENDOR, Backend, regular_file


def positive_seconds(value: float) -> float:
    import math

    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"{value} is not a positive number of seconds")
    return value


class Accel(str, Enum):
    auto = "auto"
    kvm = "kvm"
    tcg = "tcg"


KERNEL = typer.Option(None, "--kernel", help="kernels to boot: a comma list of pinned lines (5.10, 6.1, 6.12, 7.2; "
                      "a version such as 6.12.5 names its line), `all`, or a path to a bzImage/vmlinuz. Default: "
                      "the source's :kernels/:kernel (test), else 6.1")
JOBS = typer.Option(None, "-j", "--jobs", min=1, help="VMs to run at once, one per kernel (default: the number of cores)")
JUNIT = typer.Option(None, "--junit", dir_okay=False,
                     help="also write JUnit XML here: one testcase per program x kernel and per packet case")
TIMEOUT = typer.Option(180.0, "--timeout", callback=positive_seconds,
                       help="seconds before QEMU is killed (exit 5, 'VM timed out')")
ACCEL = typer.Option(Accel.auto, "--accel", help="auto (KVM when a probe boot works, else TCG), kvm or tcg")
JSON = typer.Option(False, "--json", help="print the results as JSON on stdout instead of tables")


@app.command(help="""Load each OBJ in a QEMU VM booted on the target kernel: verdict, verified
instructions, states, stack depth, xlated/jited size and verification time per program; on
rejection the verifier log with the failing source line (a program rejected after more than
20,000 instructions: the verifier's message and statistics). One VM boot for all objects. A
manifest.json next to the objects gets the results under `verification`.

With several kernels (`--kernel 5.10,6.1,6.12,7.2` or `all`) one VM per kernel runs, up to -j
at a time, and a matrix of program x kernel is shown; the manifest's `verification` is keyed
by kernel. --junit FILE writes the results for CI.

Exit codes: 2 unknown kernel, 3 kernel download failed (or its pin was dropped: the message
names the pin to bump), 4 when a program is rejected or over --max-insns, 5 when a VM fails.

Example: tatara-build verify out/drop-syn.o --kernel all --junit out/junit.xml""")
@reports_errors
def verify(
    objects: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True, callback=regular_file,
                                         help="BPF objects (.o)"),
    kernel: Optional[str] = KERNEL,
    max_insns: Optional[int] = typer.Option(None, "--max-insns", min=1,
                                            help="verified-instruction budget per program, on each kernel"),
    timeout: float = TIMEOUT,
    accel: Accel = ACCEL,
    jobs: Optional[int] = JOBS,
    junit: Optional[Path] = JUNIT,
    json_out: bool = JSON,
) -> None:
    from .. import report, tables
    from ..vm import kernels, matrix, runner

    def run():
        object_jobs = [runner.ObjectJob(path, default_max_insns=max_insns or tables.DEFAULT_MAX_INSNS,
                                        generated=_generated_next_to(path), targets=_targets_from_manifest(path))
                       for path in objects]
        specs = kernels.parse_list(kernel) or [kernels.DEFAULT_KERNEL]
        return matrix.run(object_jobs, specs, jobs=jobs, timeout=timeout, accel=accel.value)

    results = _run(run, json_out, junit, "tatara-build verify")
    for manifest in _manifests_listing(objects):
        per_kernel = {}
        for name, verification in results.items():
            mine = [o for o in verification.objects if Path(o.path).resolve().parent == manifest.parent]
            verified = all(o.loaded and all(p.verdict == "accepted" for p in o.programs) for o in mine)
            per_kernel[name] = verification.model_copy(update={"objects": mine, "verified": verified, "passed": verified})
        report.merge_into_manifest(manifest, per_kernel)
    _finish(results, json_out, junit, "tatara-build verify")


@app.command(help="""Build FILE (like `tatara-build build`), then in one QEMU VM on the program's
target kernel (`:kernel` in the source, or --kernel): load the object through the verifier and
run every defbpf-test case with BPF_PROG_TEST_RUN, compare the returned action, dump the maps
and check :expect-maps (per-CPU values summed). A case with :repeat N runs N times (the maps
count every run) and reports the kernel's average ns/packet. Results go into OUT/manifest.json
under `verification`. The kernel is downloaded once (apt-get download, sha256-checked) into
$XDG_CACHE_HOME/tatara-build/kernels; KVM is used only when a probe boot shows it works.

Without --kernel the kernels are the ones the programs promise (`:kernels ("5.10" "6.1")`,
`:kernel "6.12.5"` names the 6.12 line), else 6.1. Several kernels boot in parallel (-j) and
the results are a matrix; `verification` in the manifest is keyed by kernel.

Exit codes: 1 source error, 2 unknown kernel, 3 toolchain (or a dropped kernel pin), 4 rejection
or failed test, 5 VM failure or timeout.

Example: tatara-build test examples/drop-syn.tlisp --backend c -o out --kernel all --junit junit.xml""")
@reports_errors
def test(
    file: Path = FILE,
    backend: Backend = BACKEND,
    out: str = OUT,
    vendor_dir: Optional[Path] = VENDOR,
    clang: Optional[str] = CLANG,
    kernel: Optional[str] = KERNEL,
    timeout: float = TIMEOUT,
    accel: Accel = ACCEL,
    jobs: Optional[int] = JOBS,
    junit: Optional[Path] = JUNIT,
    json_out: bool = JSON,
) -> None:
    from .. import outdir, pipeline, report
    from ..check.kernels import promised
    from ..compile import BuildOptions
    from ..compile.progress import make_progress
    from ..vm import cases, kernels, matrix

    def run():
        progress = make_progress(json_out)
        module = pipeline.load_checked(file, progress)  # once: the build and the cases share it
        specs = kernels.parse_list(kernel) or _promised_by(module, promised) or [kernels.DEFAULT_KERNEL]
        for spec in specs:
            kernels.validate(spec)  # a bad --kernel is exit 2 before minutes of compiling
        resolve = kernels.resolve if kernel else kernels.resolve_version
        options = BuildOptions(**{k: v for k, v in dict(backend=backend.value, vendor_dir=vendor_dir,
                                                         clang=clang).items() if v is not None})
        manifest = pipeline.build(file, out, options, progress, module)
        objects, case_jobs, map_jobs = cases.jobs(module, outdir.canonical(out), manifest)
        return matrix.run(objects, specs, case_jobs, map_jobs, jobs=jobs, timeout=timeout, accel=accel.value,
                          resolve=resolve)

    if junit is not None and outdir.canonical(junit) == outdir.canonical(out):
        from ..errors import UsageError

        raise UsageError(f"--junit {junit} is the output directory -o {out}: name a file, e.g. {out}/junit.xml")
    results = _run(run, json_out, junit, f"tatara-build test {file.name}")
    report.merge_into_manifest(outdir.canonical(out) / "manifest.json", results)
    _finish(results, json_out, junit, f"tatara-build test {file.name}")


@app.command("kernels", help="""The pinned kernels: line, Debian package and version, suite, and whether
the image is in the cache ($XDG_CACHE_HOME/tatara-build/kernels) with its pinned sha256.
--fetch LINES (or all) downloads them now, e.g. to warm a CI cache. A pin Debian has dropped
fails with exit 3 naming the pin to bump (scripts/update-kernel-pins in tatara-build's repository).

Example: tatara-build kernels --fetch all""")
@reports_errors
def kernels_command(
    fetch: Optional[str] = typer.Option(None, "--fetch", help="lines to download now: a comma list or all"),
) -> None:
    from ..vm import kernels

    for spec in kernels.parse_list(fetch):
        kernels.validate(spec)
        kernel = kernels.resolve(spec)
        print(f"fetched {spec}: {kernel.image}")
    for line, pin in kernels.KERNELS.items():
        image = kernels.cache_entry(pin) / "vmlinuz"
        state = ("cached" if kernels.sha256_file(image) == pin.vmlinuz_sha256 else "cached, sha256 MISMATCH (refetched on use)") \
            if image.is_file() else "not cached"
        print(f"{line:5}  {pin.package}={pin.version}  (Debian {pin.suite})  {state}")


def _promised_by(module, promised) -> list[str]:
    """Every kernel line the source's programs promise, oldest first."""
    from .. import tables

    lines = {line for p in module.programs for line in promised(p)}
    return sorted(lines, key=tables.version_tuple)


def _run(run, json_out: bool, junit: Optional[Path], name: str):
    """Run; when it fails before or while booting (a build error, a VM
    timeout on one kernel) and --junit was asked for, the JUnit file still
    appears: the kernels that finished, and an <error> for each failure."""
    from ..errors import TataraError

    if junit is not None:
        from .. import junit as junit_xml

        junit_xml.check(junit)  # exit 2 before minutes of work, nothing written
    try:
        return json_errors(json_out, run)
    except TataraError as err:
        if junit is not None:

            failed = getattr(err, "failed", None) or {"tatara-build": err}
            junit_xml.write(junit, getattr(err, "results", None) or {}, name, failed)
        raise


def _finish(results, json_out: bool, junit: Optional[Path], name: str) -> None:
    """Show the results (tables on stderr, or JSON keyed by kernel on stdout),
    write the JUnit file when asked, then exit 4 on any failure."""
    import json as json_module

    from .. import junit as junit_xml
    from .. import report

    from ..errors import TataraError

    if junit is not None:
        junit_xml.write(junit, results, name)
    try:
        report.verdict_matrix(results)
        failure = None
    except TataraError as err:
        failure = err
    if json_out:  # one document: the results and, on failure, the error
        document = {k: v.model_dump(mode="json") for k, v in results.items()}
        if failure is not None:
            document |= error_document(failure.exit_code, failure.render(), failure.diagnostics)
            failure.shown_as_json = True
        print(json_module.dumps(document, indent=2))
    else:
        report.render_matrix(results)
    if failure is not None:
        raise failure


def _generated_next_to(obj: Path) -> list[Path]:
    """OUT/src/** when OBJ sits in a build output (for failure mapping)."""
    src = obj.parent / "src"
    from ..vm.cases import GENERATED_SUFFIXES

    return sorted(p for p in src.rglob("*") if p.suffix in GENERATED_SUFFIXES) if src.is_dir() else []


def _targets_from_manifest(obj: Path) -> dict[str, tuple[str, str]]:
    """ELF symbol -> (kind, attach target) as the build recorded them in the
    manifest.json beside OBJ (none when there is no such manifest)."""
    try:
        data = json.loads((obj.parent / "manifest.json").read_text())
        listed = [o for o in data.get("objects", []) if o.get("file") == obj.name]
        return {p["symbol"]: (p["kind"], p["attach"]) for o in listed for p in o.get("programs", [])
                if isinstance(p, dict) and p.get("kind") and p.get("attach") and p.get("symbol")}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}


def _manifests_listing(objects: list[Path]) -> list[Path]:
    found = []
    for directory in sorted({p.resolve().parent for p in objects}):
        manifest = directory / "manifest.json"
        try:  # only a manifest tatara-build wrote is updated
            data = json.loads(manifest.read_text())
            listed = {o["file"] for o in data["objects"]} if "tatara_build_version" in data else set()
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue
        if any(p.resolve().parent == directory and p.name in listed for p in objects):
            found.append(manifest)
    return found


def _verification_schema() -> type:
    from pydantic import RootModel

    from ..vm.results import Verification

    class VerificationByKernel(RootModel[dict[str, Verification]]):
        """manifest.json's `verification` and `--json`: results keyed by kernel."""

    return VerificationByKernel


SCHEMAS["verification"] = _verification_schema

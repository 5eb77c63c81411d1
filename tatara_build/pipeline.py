"""The stage driver: load -> check -> emit -> compile, shared by the `build`,
`repro` and `test` commands. Each command loads and checks its source once
(`load_checked`) and hands the checked module on; the stages themselves
never call back into an earlier one.

    load_checked(source)               the checked IR module
    build(source, out, options)        load + check + emit + compile into OUT
    build_module(module, source, out)  emit + compile an already checked module
    repro(source, options)             two builds in two directories, same sha256?
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from . import backends, check, frontend, ir
from .compile import BuildOptions, compile_generated, compile_into, compile_nix, outputs, staging, validate
from .compile.manifest import Manifest
from .compile.progress import Progress, make_progress
from .errors import Diagnostic, SourceError, Span, ToolchainError


def load_checked(source: Path, progress: Progress | None = None) -> ir.Module:
    progress = progress or make_progress()
    with progress.stage("load", source.name):
        module = frontend.load(source)
    with progress.stage("check"):
        return check.check(module)


def build(source: Path, out: Path | str, options: BuildOptions = BuildOptions(), progress: Progress | None = None,
          module: ir.Module | None = None) -> Manifest:
    """Load, check, emit and compile one .tlisp file into OUT (`module`: already checked)."""
    progress = progress or make_progress()
    validate(options)
    if options.engine == "nix":
        return compile_nix(source, out, options, progress)  # the derivation runs the whole pipeline
    output_key = outputs.key_for(Path(source), options)
    if output_key is not None:
        served = outputs.serve(output_key, out, progress)
        if served is not None:
            return Manifest.model_validate(served)
    manifest = build_module(module or load_checked(source, progress), source, out, options, progress)
    if output_key is not None:
        outputs.store(output_key, Path(out))
    return manifest


def build_module(module: ir.Module, source: Path, out: Path | str, options: BuildOptions,
                 progress: Progress) -> Manifest:
    require_something_to_build(module, Path(source))
    with staging(out, (Path(source),)) as tmp:
        with progress.stage("emit", options.backend):
            backends.emit(module, options.backend, tmp / "src", mark=False)
        return compile_into(tmp, Path(source).stem, module.source_sha256, source.name, options, progress, module)


def require_something_to_build(module: ir.Module, source: Path) -> None:
    """An empty or all-comment file builds nothing: an error, not a green run."""
    if module.programs or module.maps:
        return
    notes = []
    try:
        data = source.read_bytes()
    except OSError:
        data = b""
    if b"\r" in data and b"\n" not in data:
        notes.append("the file has CR-only line endings: only \\n ends a line, so a `;` comment runs to the "
                     "end of the file; convert it to \\n line endings")
    raise SourceError(Diagnostic(f"{source.name} defines no program and no map: nothing to build",
                                 Span(file=str(source), line=1, col=1, end_line=1, end_col=1), notes))


@dataclass
class ReproResult:
    first: Manifest
    second: Manifest

    @property
    def identical(self) -> bool:
        return [o.sha256 for o in self.first.objects] == [o.sha256 for o in self.second.objects]


def repro(source: Path, options: BuildOptions = BuildOptions(), progress: Progress | None = None,
          generated: tuple[Path, str] | None = None) -> ReproResult:
    """Build twice, without the cache, in two differently named temp dirs
    (from `generated` = (sources dir, stem) instead of `source` when given)."""
    progress = progress or make_progress()
    options = replace(options, use_cache=False)
    validate(options)
    module = None
    if generated is None and options.engine != "nix":
        module = load_checked(source, progress)
    manifests = []
    with tempfile.TemporaryDirectory(prefix="tatara-repro-") as base:
        for index, name in enumerate(("first", "second-elsewhere/deeper")):
            out = Path(base) / name / "out"
            progress.note(f"repro: build {index + 1} of 2 in {out.parent.name}/")
            if generated is not None:
                manifests.append(compile_generated(generated[0], generated[1], out, options, progress))
            else:
                manifests.append(build(source, out, options, progress, module))
    return ReproResult(*manifests)


def not_reproducible(result: ReproResult) -> ToolchainError:
    notes = [f"{a.file}: {a.sha256} vs {b.sha256}" for a, b in zip(result.first.objects, result.second.objects)]
    return ToolchainError(Diagnostic("repro: the two builds differ (a path, date or host name leaks into the object)",
                                     notes=notes + ["compare them with `llvm-dwarfdump` / `strings`"]))

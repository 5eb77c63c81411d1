"""The compile stage: generated sources -> one BPF object per source file,
OUT/<stem>.o, plus OUT/src/ (the sources) and OUT/manifest.json.

    staging(out)                        a temp dir that becomes OUT on success
    compile_into(tmp, stem, …)          TMP/src -> TMP/<stem>.o + TMP/manifest.json
    compile_generated(src, stem, out)   the same from sources emitted earlier
    compile_nix(source, out, options)   `nix build` of the flake's derivation

The load -> check -> emit -> compile driver is `tatara_build.pipeline`.

Everything is written to a temporary directory next to OUT and renamed into
place at the end: a failed build leaves no partial OUT.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .. import outdir
from ..errors import Diagnostic, ToolchainError
from . import cache, elf
from .progress import Progress, make_progress

if TYPE_CHECKING:  # pydantic models: imported where they are built, so that a
    # whole-output cache hit (outputs.py) never loads pydantic
    from .manifest import Crate, Manifest, ObjectInfo

ENGINES = ("host", "nix")
LINKERS = ("auto", "bpf-linker", "llvm")


@dataclass(frozen=True)
class BuildOptions:
    backend: str = "aya"
    engine: str = "host"
    vendor_dir: Path | None = None
    linker: str = "auto"  # auto: bpf-linker when on PATH, else our LLVM driver
    rustc: str | None = None
    clang: str | None = None
    cpu: str = "v3"
    use_cache: bool = True
    flake: Path | None = None
    source_date_epoch: str = field(default_factory=lambda: os.environ.get("SOURCE_DATE_EPOCH", "0"))


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        return dist_version("tatara-build")
    except PackageNotFoundError:
        return "0+unknown"


@contextmanager
def staging(out: Path | str, sources: tuple[Path, ...] = ()) -> Iterator[Path]:
    """A temp dir next to OUT that replaces OUT on success, vanishes on failure.
    OUT must be absent, empty or an earlier build output (outdir.BUILD)."""
    with outdir.replacing(out, outdir.BUILD, sources) as tmp:
        yield tmp


def compile_generated(src: Path, stem: str, out: Path | str, options: BuildOptions = BuildOptions(),
                      progress: Progress | None = None, source_sha256: str | None = None) -> Manifest:
    """Build sources emitted earlier (a crate dir, or a dir with <stem>.bpf.c)."""
    progress = progress or make_progress()
    validate(options)
    with staging(out, (Path(src),)) as tmp:
        shutil.copytree(src, tmp / "src", ignore=shutil.ignore_patterns("target"))
        return compile_into(tmp, stem, source_sha256 or cache.tree_digest(src), f"{stem} (generated)",
                           options, progress, None)


def validate(options: BuildOptions) -> None:
    from ..backends import names

    for value, allowed, what in ((options.backend, names(), "backend"), (options.engine, ENGINES, "engine"),
                                 (options.linker, LINKERS, "linker")):
        if value not in allowed:
            raise ToolchainError(f"build: unknown {what} {value!r}; one of {', '.join(allowed)}")


def compile_into(tmp: Path, stem: str, source_sha256: str, source_name: str, options: BuildOptions,
                progress: Progress, module) -> Manifest:
    from ..backends.base import layout_kernels
    from .engine import plan as make_plan
    from .manifest import Manifest, map_types, struct_layouts

    obj = tmp / f"{stem}.o"
    with progress.stage("toolchain"):
        plan = make_plan(tmp / "src", stem, options)
    key = cache.key(sources=cache.tree_digest(tmp / "src"), toolchain=plan.identity, flags=plan.flags,
                    driver=_driver_digest())
    cached = cache.fetch(key) if options.use_cache else None
    if cached is not None:
        progress.note(f"cache hit {key[:16]} ({cache.cache_root()})")
        obj.write_bytes(cached)
    else:
        work = tmp / ".work"
        work.mkdir()
        with progress.stage(plan.stage):
            built = plan.run(work)
        shutil.copyfile(built, obj)
        shutil.rmtree(work, ignore_errors=True)
        if options.use_cache:
            cache.store(key, obj, {"stem": stem, "toolchain": plan.identity})
    manifest = Manifest(
        tatara_build_version=version(), source=source_name, source_sha256=source_sha256,
        backend=options.backend, engine=options.engine, objects=[describe(obj, module)],
        toolchain=plan.toolchain, crates=_crates(tmp / "src" / "Cargo.lock"), nix=_provenance(),
        kernel_layout=layout_kernels(module, options.backend),
        structs=struct_layouts(module) if module is not None else [],
        map_types=map_types(module) if module is not None else [],
    )
    (tmp / "manifest.json").write_text(manifest.to_json())
    return manifest


def describe(obj: Path, module=None) -> ObjectInfo:
    """sha256, size, sections, programs (matched to the module's declarations) and maps."""
    from ..backends import dialects
    from ..frontend.names import symbol as c_symbol
    from ..tables import PROGRAM_KINDS
    from .manifest import ObjectInfo, Program, Slot

    data = obj.read_bytes()
    parsed = elf.parse(data)
    decls = {c_symbol(p.name): p for p in (module.programs if module is not None else [])}
    # the section prefix each backend writes -> kind
    by_section = {dialect.section_prefix(kind): kind for dialect in dialects().values() for kind in PROGRAM_KINDS}
    programs = []
    for symbol, section in parsed.programs():
        decl = decls.get(symbol)
        kind = decl.kind if decl else by_section.get(section.split("/")[0])
        attach = decl.attach if decl else None
        target = (attach.target if attach else None) or (PROGRAM_KINDS[decl.kind].default_target if decl else None)
        programs.append(Program(symbol=symbol, section=section, name=decl.name if decl else None, kind=kind,
                                attach=target, direction=attach.direction if attach else None))
    slots = [Slot(map=c_symbol(m.name), index=s.index, program=c_symbol(s.program))
             for m in (module.maps if module is not None else []) for s in m.programs or []]
    return ObjectInfo(file=obj.name, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                      sections=parsed.sections, programs=programs, maps=parsed.maps(), events=event_maps(module),
                      slots=slots, consts=_consts(parsed, module))


def event_maps(module) -> list:
    """Each event map's record type, from the checked module's event-output forms."""
    from .. import eventdata
    from ..check.events import event_types
    from ..frontend.names import symbol
    from .manifest import EventMap

    if module is None:
        return []
    from .. import structs

    kinds = {m.name: m.kind for m in module.maps}
    layouts = structs.layouts(module.structs)
    return [EventMap(symbol=symbol(name), name=name, kind=kinds[name], record=t,
                     size=eventdata.record_size(t, layouts)) for name, t in event_types(module).items()]


def _consts(parsed: elf.Elf, module) -> list:
    """Each defbpf-const with where its bytes are: the C backend names the
    variable `limit`, the aya backend `LIMIT`; whichever the object has."""
    from ..frontend.names import symbol
    from .manifest import Const

    out = []
    for c in (module.consts if module is not None else []):
        snake = symbol(c.name)
        sym = parsed.variable((snake, snake.upper()))
        out.append(Const(name=c.name, type=c.const_type, default=c.default, symbol=sym.name if sym else None,
                         section=sym.section if sym else None, offset=sym.value if sym else None,
                         size=sym.size if sym else None))
    return out


def _provenance() -> dict | None:
    """The Nix derivations pass the flake's input revs and toolchain pins as
    TATARA_PROVENANCE (a JSON object); the manifest records them."""
    raw = os.environ.get("TATARA_PROVENANCE")
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ToolchainError(f"build: TATARA_PROVENANCE is not JSON ({err})") from None
    if not isinstance(value, dict):
        raise ToolchainError("build: TATARA_PROVENANCE must be a JSON object of input revs and pins")
    return value


def _crates(lock: Path) -> list[Crate]:
    from .manifest import Crate

    if not lock.is_file():
        return []
    packages = tomllib.loads(lock.read_text()).get("package", [])
    return [Crate(name=p["name"], version=p["version"], checksum=p.get("checksum"), source=p.get("source"))
            for p in packages]


def _driver_digest() -> str:
    """Our own build code is part of the toolchain: a change invalidates the cache."""
    here = Path(__file__).parent
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(here.glob("*.py")))).hexdigest()


def compile_nix(source: Path, out: Path | str, options: BuildOptions, progress: Progress) -> Manifest:
    """The nix engine: the derivation loads, checks, emits and compiles."""
    from . import nix
    from .manifest import Manifest

    with staging(out, (Path(source),)) as tmp:
        work = tmp / ".work"
        work.mkdir()
        with progress.stage("nix build", source.stem):
            nix.build(source, options.flake, work, tmp)
        shutil.rmtree(work, ignore_errors=True)
        manifest_file = tmp / "manifest.json"
        if not manifest_file.is_file():
            raise ToolchainError("engine nix: the derivation's output has no manifest.json")
        manifest = Manifest.model_validate_json(manifest_file.read_text())
        manifest = manifest.model_copy(update={"engine": "nix"})
        manifest_file.write_text(manifest.to_json())
    return manifest

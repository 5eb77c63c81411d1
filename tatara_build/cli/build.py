"""CLI commands of the build stage: `build` and `repro`."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..memo import dialect_index
from .app import SCHEMAS, app, error_document, json_errors, reports_errors


# one choice per registered dialect; from the memo of the registry, which
# would import every dialect (the IR, pydantic) for every --help
Backend = Enum("Backend", {name: name for name in dialect_index()}, type=str)


class Engine(str, Enum):
    host = "host"
    nix = "nix"


class Linker(str, Enum):
    auto = "auto"
    bpf_linker = "bpf-linker"
    llvm = "llvm"


def regular_file(value):
    """A source must be a regular file: /dev/zero or a FIFO would be read
    forever. Checked before anything runs (exit 2)."""
    import os
    import stat

    if value is None:
        return value
    paths = value if isinstance(value, list) else [value]
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError as err:
            raise typer.BadParameter(f"{path}: {err.strerror or err}") from None
        if not stat.S_ISREG(mode):
            raise typer.BadParameter(f"{path} is not a regular file")
    return value


def out_path(value: str) -> str:
    if value == "":
        raise typer.BadParameter("is empty (an unset shell variable?): name the output directory")
    return value


FILE = typer.Argument(..., exists=True, dir_okay=False, readable=True, callback=regular_file,
                      help="the .tlisp source file")
OUT = typer.Option("out", "-o", "--out", callback=out_path,
                   help="output directory: created, or replaced when it is an earlier tatara-build output "
                        "(anything else is refused, exit 2)")
BACKEND_HELP = "; ".join(f"{name}: {d['summary']}" for name, d in dialect_index().items())
BACKEND = typer.Option(Backend("aya"), "--backend", help=BACKEND_HELP)
VENDOR = typer.Option(None, "--vendor-dir", envvar="TATARA_VENDOR_DIR", file_okay=False,
                      help="crates for the aya build in `cargo vendor` layout (offline build); "
                           "without it cargo must reach crates.io")
LINKER = typer.Option(Linker.auto, "--linker",
                      help="auto: bpf-linker when on PATH, else tatara-build's driver (llvm-link/opt/llc of "
                           "rustc's LLVM major); bpf-linker or llvm force one")
RUSTC = typer.Option(None, "--rustc", envvar="TATARA_RUSTC",
                     help="rustc to use (default: Debian's rustc-web when it has the BPF core, else PATH)")
CLANG = typer.Option(None, "--clang", envvar="TATARA_CLANG", help="clang for the C backend (default: clang of the pinned LLVM major, clang-22, else clang on PATH)")
class Cpu(str, Enum):
    v1 = "v1"
    v2 = "v2"
    v3 = "v3"


CPU = typer.Option(Cpu.v3, "--cpu", help="BPF CPU version: v1, v2, v3 (v3 needs kernel >= 5.1)")
JSON = typer.Option(False, "--json", help="print the manifest (or the error) as JSON on stdout, no progress")

_RUST_NOTE = ("With a stable rustc (e.g. Debian's rustc-web) the aya build sets RUSTC_BOOTSTRAP=1, "
              "because aya-ebpf needs nightly features.")


def _options(**kwargs):
    from ..compile import BuildOptions

    return BuildOptions(**{k: v for k, v in kwargs.items() if v is not None})



@app.command(help=f"""Build FILE into OUT/<file-stem>.o (all its programs and maps), OUT/src/ (the
generated sources) and OUT/manifest.json.

{_RUST_NOTE} Objects are reproducible (paths remapped, SOURCE_DATE_EPOCH fixed) and cached in
$XDG_CACHE_HOME/tatara-build. Exit codes: 1 source error, 3 toolchain or environment problem
(the message names the stage, the command and its stderr).

Example: tatara-build build examples/drop-syn.tlisp --backend c -o out""")
@reports_errors
def build(
    file: Path = FILE,
    out: str = OUT,
    backend: Backend = BACKEND,
    engine: Engine = typer.Option(Engine.host, "--engine",
                                  help="host: toolchain on this machine; nix: `nix build <flake>#<file-stem>`"),
    vendor_dir: Optional[Path] = VENDOR,
    linker: Linker = LINKER,
    rustc: Optional[str] = RUSTC,
    clang: Optional[str] = CLANG,
    cpu: Cpu = CPU,
    flake: Optional[Path] = typer.Option(None, "--flake", help="flake directory for --engine nix"),
    no_cache: bool = typer.Option(False, "--no-cache", help="always compile; don't read or write the cache"),
    json_out: bool = JSON,
) -> None:
    from ..pipeline import build as run_build
    from ..compile.progress import make_progress

    options = _options(backend=backend.value, engine=engine.value, vendor_dir=vendor_dir, linker=linker.value,
                       rustc=rustc, clang=clang, cpu=cpu.value, flake=flake, use_cache=not no_cache)
    progress = make_progress(json_out)
    manifest = json_errors(json_out, lambda: run_build(file, out, options, progress))
    if json_out:
        print(manifest.to_json(), end="")
    else:
        from .fast import object_line

        for obj in manifest.objects:
            progress.note(object_line(Path(out), obj.file, obj.sha256, obj.size, len(obj.programs)))


@app.command(help=f"""Build FILE twice, without the cache, in two differently named temporary
directories, and print each object's sha256. Exit 0 when both builds are byte-identical; exit 3
(a toolchain/environment problem: a path, date or host name leaked into the object) when not.

{_RUST_NOTE}

Example: tatara-build repro examples/drop-syn.tlisp --backend c""")
@reports_errors
def repro(
    file: Path = FILE,
    backend: Backend = BACKEND,
    vendor_dir: Optional[Path] = VENDOR,
    linker: Linker = LINKER,
    rustc: Optional[str] = RUSTC,
    clang: Optional[str] = CLANG,
    cpu: Cpu = CPU,
    json_out: bool = JSON,
) -> None:
    from ..pipeline import not_reproducible
    from ..pipeline import repro as run_repro
    from ..compile.progress import make_progress

    options = _options(backend=backend.value, vendor_dir=vendor_dir, linker=linker.value, rustc=rustc,
                       clang=clang, cpu=cpu.value)
    progress = make_progress(json_out)
    result = json_errors(json_out, lambda: run_repro(file, options, progress))
    rows = [{"file": a.file, "first": a.sha256, "second": b.sha256, "identical": a.sha256 == b.sha256}
            for a, b in zip(result.first.objects, result.second.objects)]
    failure = None if result.identical else not_reproducible(result)
    if json_out:
        document = {"identical": result.identical, "objects": rows}
        if failure is not None:  # one document: the rows and the error
            document |= error_document(failure.exit_code, failure.render(), failure.diagnostics)
            failure.shown_as_json = True
        print(json.dumps(document, indent=2))
    else:
        for row in rows:
            print(f"{row['file']}  {row['first']}  {row['second']}  {'identical' if row['identical'] else 'DIFFERENT'}")
    if failure is not None:
        raise failure


def _manifest_schema() -> type:
    from ..compile.manifest import Manifest

    return Manifest


SCHEMAS["manifest"] = _manifest_schema

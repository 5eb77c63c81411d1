"""Our BPF link driver: bpf-linker's essential job done with the LLVM tools
of rustc's own LLVM major version.

How rustc hands us the bitcode: rustc's `bpfel-unknown-none` target has
linker flavour `bpf`; it runs a program called `bpf-linker` with
`--export-symbols FILE`, the crate's objects (LLVM bitcode, as the target
sets obj-is-bitcode), every rlib (ar archives whose members are bitcode),
`-L DIR`, `--cpu CPU`, `--cpu-features F`, `-O3`, `--debug`, `-o OUT` and
the `-C link-arg`s (`--btf`). The host engine (cargo.py) puts a two-line
shim named `bpf-linker` first on cargo's PATH that runs
`python -m tatara_build.compile.link ARGS`, so this module sees exactly what
bpf-linker would. It then
  1. collects the bitcode (crate objects, every bitcode member of every rlib),
  2. `llvm-link`s it into one module,
  3. `opt -passes='internalize,default<O3>,globaldce'`, keeping public only
     the exported symbols (programs, maps, license) and memcpy/memmove/
     memset/memcmp/bcmp, which LLVM may call for intrinsics,
  4. `llc -march=bpfel -mcpu=CPU -filetype=obj --bpf-expand-memcpy-in-order`;
     debug info is kept, so llc writes .BTF and .BTF.ext;
  5. makes the BTF names C identifiers (btf.py), or the kernel rejects the BTF.
Tool paths come from the JSON file named by $TATARA_LINK_CONFIG; a failure
is written as JSON to the config's `report` path so the build can name the
failing command and its stderr (cargo only shows rustc's summary).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import TataraError, ToolchainError
from . import btf
from .run import LOG, run

MEM_INTRINSICS = ("memcpy", "memmove", "memset", "memcmp", "bcmp")
BITCODE_MAGIC = (b"BC\xc0\xde", b"\xde\xc0\x17\x0b")  # raw, and the wrapper header
_FLAGS_WITH_VALUE = {"-L", "--cpu", "--cpu-features", "-o", "--export-symbols", "--export", "--emit", "--log-file",
                     "--log-level", "--target", "--llvm-args", "--export-symbols-file"}


@dataclass
class LinkArgs:
    output: Path
    inputs: list[Path] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    cpu: str = "v3"
    cpu_features: str = ""
    opt_level: str = "3"
    debug: bool = False


def parse_args(argv: list[str], default_cpu: str = "v3") -> LinkArgs:
    """bpf-linker's command line as rustc writes it; unknown flags ignored."""
    values: dict[str, list[str]] = {}
    inputs: list[Path] = []
    opt_level, debug = "3", False
    it = iter(argv)
    for arg in it:
        if arg in _FLAGS_WITH_VALUE:
            values.setdefault(arg, []).append(next(it, ""))
        elif arg.startswith("-O"):
            opt_level = arg[2:] or "2"
        elif arg in ("--debug", "-g", "--btf"):
            debug = True
        elif not arg.startswith("-"):
            inputs.append(Path(arg))
    if not values.get("-o"):
        raise ToolchainError("link: no output file (-o) given")
    exports = list(values.get("--export", []))
    for listing in values.get("--export-symbols", []):
        exports += [line.strip() for line in Path(listing).read_text().splitlines() if line.strip()]
    cpu = values.get("--cpu", [""])[-1]
    return LinkArgs(
        output=Path(values["-o"][-1]), inputs=inputs, exports=exports,
        cpu=default_cpu if cpu in ("", "generic") else cpu,
        cpu_features=values.get("--cpu-features", [""])[-1], opt_level=opt_level, debug=debug,
    )


def ar_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Members of a GNU or BSD ar archive (an rlib), with their names."""
    if data[:8] != b"!<arch>\n":
        raise ToolchainError("link: not an ar archive")
    pos, long_names = 8, b""
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name, size = header[:16].decode("ascii", "replace").rstrip(), int(header[48:58])
        body = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
        if name == "//":
            long_names = body
        elif name in ("/", "/SYM64/", "__.SYMDEF", "__.SYMDEF SORTED"):
            continue
        elif name.startswith("#1/"):  # BSD: the name precedes the data
            n = int(name[3:])
            yield body[:n].rstrip(b"\0").decode(), body[n:]
        elif name.startswith("/") and name[1:].isdigit():
            start = int(name[1:])
            yield long_names[start:long_names.index(b"/\n", start)].decode(), body
        else:
            yield name.rstrip("/"), body


def bitcode_inputs(paths: list[Path]) -> Iterator[tuple[str, bytes]]:
    """Every bitcode module among the inputs (ELF symbol objects, rmeta skipped)."""
    for path in paths:
        data = path.read_bytes()
        if data[:8] == b"!<arch>\n":
            for name, body in ar_members(data):
                if body[:4] in BITCODE_MAGIC:
                    yield f"{path.name}({name})", body
        elif data[:4] in BITCODE_MAGIC:
            yield path.name, data


def link(args: LinkArgs, tools: dict[str, str], work: Path) -> Path:
    modules = []
    for index, (_name, body) in enumerate(bitcode_inputs(args.inputs)):
        module = work / f"in{index:04}.bc"
        module.write_bytes(body)
        modules.append(module)
    if not modules:
        raise ToolchainError("link: no LLVM bitcode among the inputs (is this rustc's BPF target?)")
    linked, optimized, listing = work / "linked.bc", work / "optimized.bc", work / "inputs.rsp"
    listing.write_text("\n".join(str(m) for m in modules) + "\n")  # a response file: rlibs have hundreds of members
    run("link (llvm-link)", [tools["llvm-link"], "-o", linked, f"@{listing}"])
    keep = ",".join(dict.fromkeys([*args.exports, *MEM_INTRINSICS]))
    level = args.opt_level if args.opt_level in ("0", "1", "2", "3", "s", "z") else "3"
    run("link (opt)", [tools["opt"], f"--internalize-public-api-list={keep}",
                       f"-passes=internalize,default<O{level}>,globaldce",
                       *([] if args.debug else ["--strip-debug"]), linked, "-o", optimized])
    features = [f"-mattr={args.cpu_features}"] if args.cpu_features else []
    run("link (llc)", [tools["llc"], "-march=bpfel", f"-mcpu={args.cpu}", *features, "-filetype=obj",
                       "--bpf-expand-memcpy-in-order", optimized, "-o", args.output])
    args.output.write_bytes(btf.sanitize(args.output.read_bytes()))
    return args.output


def main(argv: list[str]) -> int:
    config = json.loads(Path(os.environ["TATARA_LINK_CONFIG"]).read_text())
    try:
        args = parse_args(argv, config.get("cpu", "v3"))
        with tempfile.TemporaryDirectory(prefix="tatara-link-", dir=args.output.parent) as work:
            link(args, config["tools"], Path(work))
        _report(config, None)
        return 0
    except TataraError as err:
        _report(config, err)
        print(err.render(), file=sys.stderr)
        return 1


def _report(config: dict, err: TataraError | None) -> None:
    report = {"commands": [r.command for r in LOG.runs], "error": err.render() if err else None}
    Path(config["report"]).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

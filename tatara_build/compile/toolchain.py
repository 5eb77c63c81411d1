"""Find the tools a build needs, explicitly, and say what is missing.

The rustc first on PATH (often a rustup stable) usually has no `core` for
`bpfel-unknown-none`; Debian's `rustc-web` + `libstd-rust-web-dev-bpf` ships
one prebuilt (LLVM-bitcode rlibs). We therefore look at candidates in order
(--rustc / $TATARA_RUSTC, Debian's rustc-web, PATH) and take the first one
that can build for BPF. The LLVM tools of our link driver must have the same
major version as that rustc's LLVM and be at least as new, or they cannot
read its bitcode (the failure users most often report against bpf-linker).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import Diagnostic, ToolchainError
from ..pins import LLVM_MAJOR
from .cache import cache_root
from .run import run

TARGET = "bpfel-unknown-none"
LLVM_TOOLS = ("llvm-link", "opt", "llc")
_LLVM_VERSION = re.compile(r"LLVM version:? (\d+)\.(\d+)\.(\d+)")
_APT_HINT = "apt-get install rustc-web cargo-web libstd-rust-web-dev-bpf llvm-22"
# The LLVM major of the pinned toolchain: the nightly's LLVM, the link tools',
# and the Nix build's llvmPackages_22.clang: `llvmMajor` of tatara_build/pins.json,
# which nix/pins.nix reads too. The C backend prefers the clang of this major
# so a host build and a Nix build give the same object.
PINNED_LLVM_MAJOR = LLVM_MAJOR
# Debian names it clang-22 (bookworm-security), also in /usr/lib/llvm-22;
# Nix's llvmPackages_22.clang puts a plain `clang` on PATH.
CLANG_CANDIDATES = (f"clang-{PINNED_LLVM_MAJOR}", f"/usr/lib/llvm-{PINNED_LLVM_MAJOR}/bin/clang", "clang")
_CLANG_VERSION = re.compile(r"clang version (\d+)\.")
_CLANG_HINT = f"apt-get install clang-{PINNED_LLVM_MAJOR} libbpf-dev"


@dataclass(frozen=True)
class Rust:
    rustc: Path
    cargo: Path
    version: str  # `rustc -V`
    llvm: tuple[int, int, int]
    sysroot: Path
    prebuilt_core: bool  # sysroot has core for bpfel (no build-std needed)
    nightly: bool  # else RUSTC_BOOTSTRAP=1 unlocks aya-ebpf's nightly features

    @property
    def llvm_version(self) -> str:
        return ".".join(map(str, self.llvm))


@dataclass(frozen=True)
class Llvm:
    bin: dict[str, Path]  # tool name -> path
    version: tuple[int, int, int]

    @property
    def version_str(self) -> str:
        return ".".join(map(str, self.version))


@dataclass(frozen=True)
class Clang:
    path: Path
    version: str  # first line of `clang --version`
    major: int | None
    choice: str  # why this clang (recorded in the manifest)


def probe(argv: list[str | Path]) -> str:
    """stdout of a version/sysroot query ("" on failure), memoized on disk per
    binary identity (path, size, mtime): a warm build runs no tool at all."""
    tool = Path(shutil.which(str(argv[0])) or argv[0])
    try:
        stat = tool.resolve().stat()
    except OSError:
        return ""
    # ctime and inode too: a different binary copied in with the same size
    # and `touch -r` mtime is still a different identity.
    key = json.dumps([str(tool.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino,
                      *map(str, argv[1:])])
    if (tool.parent / "rustup").exists():  # a rustup proxy: its toolchain can change under it
        ran = run("toolchain", [tool, *argv[1:]], check=False)
        return ran.stdout if ran.exit_code == 0 else ""
    root = cache_root()
    memo = _probe_memo(root)
    if key not in memo:
        ran = run("toolchain", [tool, *argv[1:]], check=False)
        memo[key] = ran.stdout if ran.exit_code == 0 else ""
        _save_probe_memo(root, memo)
    return memo[key]


_PROBES = "toolchain-probes.json"


def _entry_digest(key: str, output: str) -> str:
    return hashlib.sha256(f"{key}\0{output}".encode("utf-8", "surrogatepass")).hexdigest()


@functools.cache
def _probe_memo(root: Path) -> dict[str, str]:
    """The memo's entries whose output still hashes to the sha256 stored
    with it; an edited, truncated or foreign entry is probed again."""
    try:
        stored = json.loads((root / _PROBES).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(stored, dict):
        return {}
    return {key: entry["output"] for key, entry in stored.items()
            if isinstance(entry, dict) and isinstance(entry.get("output"), str)
            and entry.get("sha256") == _entry_digest(key, entry["output"])}


def _save_probe_memo(root: Path, memo: dict[str, str]) -> None:
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=root, delete=False, suffix=".tmp") as f:
            tmp = f.name
            json.dump({key: {"output": output, "sha256": _entry_digest(key, output)} for key, output in memo.items()},
                      f, indent=1, sort_keys=True)
        os.replace(tmp, root / _PROBES)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)  # an unwritable cache only costs time


def _which(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None


@functools.cache
def _dpkg_binaries(package: str, name: str) -> list[Path]:
    """Files named bin/<name> that a Debian package installed (its dpkg list)."""
    lists = sorted(Path("/var/lib/dpkg/info").glob(f"{package}.list")) + sorted(
        Path("/var/lib/dpkg/info").glob(f"{package}:*.list"))
    lines = [line for listing in lists for line in listing.read_text(errors="replace").splitlines()]
    return [Path(line) for line in lines if line.endswith(f"/bin/{name}") and Path(line).is_file()]


def _rust_candidates(override: str | None) -> list[Path]:
    explicit = override or os.environ.get("TATARA_RUSTC")
    if explicit:
        return [Path(explicit)]
    seen: list[Path] = []
    for cand in [*_dpkg_binaries("rustc-web", "rustc"), _which("rustc"), Path("/usr/bin/rustc")]:
        if cand and cand.exists() and cand.resolve() not in [s.resolve() for s in seen]:
            seen.append(cand)
    return seen


@functools.cache
def probe_rust(rustc: Path) -> Rust | str:
    """A Rust toolchain, or the reason this rustc cannot build for BPF."""
    if not rustc.exists():
        return f"{rustc}: not found"
    vv = probe([rustc, "-vV"])
    match = _LLVM_VERSION.search(vv)
    sysroot = Path(probe([rustc, "--print", "sysroot"]).strip() or "/nonexistent")
    if not match:
        return f"{rustc}: `rustc -vV` failed or shows no LLVM version"
    libdir = sysroot / "lib/rustlib" / TARGET / "lib"
    prebuilt = any(libdir.glob("libcore-*.rlib"))
    has_src = (sysroot / "lib/rustlib/src/rust/library/core").is_dir()
    version = vv.splitlines()[0].strip()
    if not (prebuilt or has_src):
        return (f"{rustc} ({version}): no `core` for {TARGET} in {libdir} and no rust-src for -Z build-std")
    cargo = _cargo_for(rustc)
    if cargo is None:
        return f"{rustc} ({version}): no cargo next to it (set TATARA_CARGO)"
    return Rust(rustc, cargo, version, tuple(map(int, match.groups())), sysroot, prebuilt,
                "nightly" in version or "-dev" in version)


def _cargo_for(rustc: Path) -> Path | None:
    if os.environ.get("TATARA_CARGO"):
        return Path(os.environ["TATARA_CARGO"])
    beside = rustc.parent / "cargo"
    if beside.exists():
        return beside
    web = _dpkg_binaries("cargo-web", "cargo")
    return web[0] if web else _which("cargo")


def find_rust(override: str | None = None) -> Rust:
    reasons = []
    for cand in _rust_candidates(override):
        probed = probe_rust(cand)
        if isinstance(probed, Rust):
            return probed
        reasons.append(probed)
    raise ToolchainError(Diagnostic(
        f"toolchain: no rustc that can build for {TARGET}",
        notes=[*(reasons or ["no rustc found"]),
               f"install Debian's rustc with a prebuilt BPF core: {_APT_HINT}",
               "or name one with --rustc PATH / TATARA_RUSTC (a nightly with rust-src works too)",
               "or build without Rust: --backend c"],
    ))


def _version_of(tool: Path) -> tuple[int, int, int] | None:
    match = _LLVM_VERSION.search(probe([tool, "--version"]))
    return tuple(map(int, match.groups())) if match else None


def find_llvm(rust: Rust) -> Llvm:
    """llvm-link/opt/llc of rustc's LLVM major, at least its minor.patch."""
    major = rust.llvm[0]
    override = os.environ.get("TATARA_LLVM_BIN")
    dirs = [Path(override)] if override else [Path(f"/usr/lib/llvm-{major}/bin")]
    tools: dict[str, Path] = {}
    for name in LLVM_TOOLS:
        cands = [d / name for d in dirs] + ([] if override else [_which(f"{name}-{major}"), _which(name)])
        found = next((c for c in cands if c and c.exists()), None)
        if found is None:
            raise ToolchainError(Diagnostic(
                f"toolchain: `{name}` of LLVM {major} not found ({rust.version} uses LLVM {rust.llvm_version})",
                notes=[f"install it: apt-get install llvm-{major}", "or set TATARA_LLVM_BIN to its bin directory",
                       "or install bpf-linker built for the same LLVM (--linker bpf-linker)"]))
        tools[name] = found
    versions = {name: _version_of(path) for name, path in tools.items()}
    for name, version in versions.items():
        if version is None or version[0] != major or version[1:] < rust.llvm[1:]:
            shown = ".".join(map(str, version)) if version else "unknown"
            raise ToolchainError(Diagnostic(
                f"toolchain: {tools[name]} is LLVM {shown}, but {rust.version} emits LLVM "
                f"{rust.llvm_version} bitcode; the link tools must be LLVM {major} and at least {rust.llvm_version}",
                notes=["an older or different-major LLVM cannot read the bitcode in the rlibs "
                       "(\"Invalid record\" / \"Unknown attribute kind\")",
                       f"install llvm-{major}, or point TATARA_LLVM_BIN at a matching bin directory"]))
    return Llvm(tools, versions["llc"])  # type: ignore[arg-type]


def _clang_major(version_line: str) -> int | None:
    match = _CLANG_VERSION.search(version_line)
    return int(match.group(1)) if match else None


def _probe_clang(name: str) -> Clang | None:
    path = Path(name) if "/" in name else _which(name)
    if path is None or not path.exists():
        return None
    lines = probe([path, "--version"]).splitlines()
    if not lines:
        return None
    return Clang(path, lines[0].strip(), _clang_major(lines[0]), "")


def find_clang(override: str | None = None) -> Clang:
    """The clang of the C backend: --clang / TATARA_CLANG when given, else the
    one whose major is the pinned LLVM's (what a Nix build uses), else any
    clang, with the reason recorded (it lands in the manifest)."""
    explicit = override or os.environ.get("TATARA_CLANG")
    if explicit:
        found = _probe_clang(explicit)
        if found is None:
            raise ToolchainError(Diagnostic(
                f"toolchain: clang not found or not runnable ({explicit})",
                notes=[f"install it: {_CLANG_HINT}", "or name one with --clang PATH / TATARA_CLANG"]))
        return replace(found, choice=f"named by --clang / TATARA_CLANG ({explicit})")
    tried: list[str] = []
    fallback: Clang | None = None
    for name in CLANG_CANDIDATES:
        found = _probe_clang(name)
        if found is None:
            tried.append(f"{name}: not found")
            continue
        if found.major == PINNED_LLVM_MAJOR:
            return replace(found, choice=f"{name}: clang {PINNED_LLVM_MAJOR}, the pinned LLVM major (as the Nix build)")
        tried.append(f"{name}: clang {found.major}")
        fallback = fallback or found
    if fallback is None:
        raise ToolchainError(Diagnostic(
            "toolchain: clang not found (" + "; ".join(tried) + ")",
            notes=[f"install it: {_CLANG_HINT}", "or name one with --clang PATH / TATARA_CLANG"]))
    return replace(fallback, choice=(
        f"fallback: no clang {PINNED_LLVM_MAJOR} ({'; '.join(tried)}); this object may differ from a Nix "
        f"build's (llvmPackages_{PINNED_LLVM_MAJOR}.clang); install clang-{PINNED_LLVM_MAJOR}"))


def find_bpf_linker() -> Path | None:
    return _which("bpf-linker")

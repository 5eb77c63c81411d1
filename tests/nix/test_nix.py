"""The Nix flake and library, checked offline: nixpkgs cannot be fetched on
these machines, so `nix build` cannot run. Instead every .nix file is
parsed, and the library and flake outputs are evaluated against a stub of
the nixpkgs attributes they use (stub-pkgs.nix: builders return their
arguments), so the tests read the derivations' pins, commands, hardening
and vendor wiring. Needs `nix-instantiate` (Debian: nix-bin)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NIX_FILES = sorted([ROOT / "flake.nix", *(ROOT / "nix").glob("*.nix"), *HERE.rglob("*.nix")])
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.tlisp"))
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

# The pins DESIGN.md lists as known good (the rust-overlay narHash was
# recomputed from its git tree; nixpkgs' agrees with fetchTarball pins of
# the same rev in public repositories).
NIXPKGS_REV = "b7c2ada94fe99c15b0dbcf4d11fd7850b957a436"
NIXPKGS_NARHASH = "sha256-IItrdb7Puk05RqOBWZYFC5X6Wl1sJmCfh5MWVHw5iMM="
RUST_OVERLAY_REV = "292249772330735cb32b90dedf44feddec40e7d0"
RUST_OVERLAY_NARHASH = "sha256-DauSP0ACycrq3MEEmDz/Scsxhs9TPBTexwKbTuE8Bw8="

pytestmark = pytest.mark.skipif(shutil.which("nix-instantiate") is None,
                                reason="nix-instantiate not installed (Debian: apt-get install nix-bin)")


@pytest.fixture(autouse=True)
def _tests_own_nix_config(nix_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Nix command here runs with the tests' configuration
    (tests/conftest.py), never the machine's."""
    for name, value in nix_env.items():
        monkeypatch.setenv(name, value)

# Library and flake, wired to the stubs; `provenance.nixpkgs` marks what the
# flake passed through.
PKGS = f"""(import {HERE}/stub-pkgs.nix {{
  overlays = [ (import {HERE}/stub-rust-overlay.nix).overlays.default ];
}})"""
LIB = f"(import {ROOT}/nix {{ pkgs = {PKGS}; src = {ROOT}; provenance = {{ nixpkgs = \"stub-rev\"; }}; }})"
FLAKE = f"""((import {ROOT}/flake.nix).outputs {{
  self = {{ outPath = {ROOT}; }};
  nixpkgs = {{ outPath = {HERE}/stub-nixpkgs; rev = "{NIXPKGS_REV}"; narHash = "{NIXPKGS_NARHASH}"; }};
  rust-overlay = import {HERE}/stub-rust-overlay.nix;
}})"""


# Evaluation as Hydra and many CI setups do it: reading a derivation's
# output while evaluating is an error. Every evaluation here runs so.
NO_IFD = ["--option", "allow-import-from-derivation", "false"]


def nix(expr: str, *, check: bool = True) -> subprocess.CompletedProcess:
    ran = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "--readonly-mode", *NO_IFD, "-E", expr],
                         capture_output=True, text=True, timeout=120)
    if check and ran.returncode != 0:
        pytest.fail(f"nix-instantiate failed:\n{ran.stderr}")
    return ran


def ev(expr: str):
    return json.loads(nix(expr).stdout)


# --- parsing and the lock ----------------------------------------------------


@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_nix_file_parses(path: Path) -> None:
    ran = subprocess.run(["nix-instantiate", "--parse", str(path)], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr


def test_flake_lock_pins_inputs_by_rev_and_narhash() -> None:
    lock = json.loads((ROOT / "flake.lock").read_text())
    assert lock["version"] == 7 and lock["root"] == "root"
    nodes = lock["nodes"]
    assert nodes["root"]["inputs"] == {"nixpkgs": "nixpkgs", "rust-overlay": "rust-overlay"}
    nixpkgs, overlay = nodes["nixpkgs"]["locked"], nodes["rust-overlay"]["locked"]
    assert (nixpkgs["rev"], nixpkgs["narHash"]) == (NIXPKGS_REV, NIXPKGS_NARHASH)
    assert (overlay["rev"], overlay["narHash"]) == (RUST_OVERLAY_REV, RUST_OVERLAY_NARHASH)
    for locked in (nixpkgs, overlay):
        assert locked["type"] == "github"
        assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"])
        assert re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", locked["narHash"])
    # What `nix flake lock` writes for a github input. nixpkgs' lastModified
    # (its commit time) could not be obtained offline; Nix adds it on fetch.
    written = {"lastModified", "narHash", "owner", "repo", "rev", "type"}
    assert set(overlay) == written and overlay["lastModified"] == 1785736145  # 2026-08-03T05:49:05Z, the rev's commit
    assert set(nixpkgs) <= written
    # rust-overlay evaluates against our nixpkgs, not a second one.
    assert nodes["rust-overlay"]["inputs"] == {"nixpkgs": ["nixpkgs"]}


def test_flake_inputs_match_the_lock() -> None:
    inputs = ev(f"(import {ROOT}/flake.nix).inputs")
    lock = json.loads((ROOT / "flake.lock").read_text())["nodes"]
    assert set(inputs) == set(lock["root"]["inputs"])
    original = lock["nixpkgs"]["original"]
    assert inputs["nixpkgs"]["url"] == f"github:{original['owner']}/{original['repo']}/{original['ref']}"
    assert inputs["rust-overlay"]["url"] == "github:oxalica/rust-overlay"
    assert inputs["rust-overlay"]["inputs"]["nixpkgs"]["follows"] == "nixpkgs"


# --- toolchain and linker pins ---------------------------------------------------


def test_nightly_is_pinned_with_rust_src_and_no_bpf_target() -> None:
    pins = ev(f"import {ROOT}/nix/pins.nix")
    got = ev(f"""let t = {LIB}.toolchain; in {{
      inherit (t) nightly llvmMajor;
      inherit (t.rust) name date extensions targets;
      srcIsDerivation = t.rustSrc.type or null == "derivation";
    }}""")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", pins["nightly"])
    assert got["date"] == got["nightly"] == pins["nightly"]
    # At the locked rust-overlay rev nightlies after 2026-08-03 are LLVM 23.
    assert pins["nightly"] <= "2026-08-03" and pins["llvmMajor"] == got["llvmMajor"] == 22
    assert got["extensions"] == ["rust-src"]
    assert "bpfel-unknown-none" not in got["targets"]  # no rust-std for it: build-std
    assert got["srcIsDerivation"]  # so reading its library/Cargo.lock would be IFD


def test_bpf_linker_is_built_against_the_nightlys_llvm_major() -> None:
    got = ev(f"""let l = {LIB}; in {{
      linkerLlvm = l.bpf-linker.overrideArgs.llvmPackagesForLinker.llvm.version;
      major = l.toolchain.llvmMajor;
    }}""")
    assert got["linkerLlvm"].split(".")[0] == str(got["major"]) == "22"


# --- mkBpfObject ---------------------------------------------------------------------


def drv(expr: str) -> dict:
    """A stub derivation's arguments, without its (store-copied) src."""
    return ev(f"""let d = {expr}; in (builtins.removeAttrs d.args [ "src" ]) // {{
      vendorLocks = d.passthru.vendorDir.args.passthru.lockFiles or null;
      vendorOut = d.passthru.vendorDir.outPath or null;
    }}""")


def test_aya_object_runs_the_host_engine_with_bpf_linker_and_vendored_crates() -> None:
    d = drv(f"{LIB}.examples.drop-syn")
    build = d["buildPhase"]
    assert d["pname"] == "drop-syn"
    command = next(line for line in build.splitlines() if line.startswith("tatara-build build"))
    assert command.startswith("tatara-build build drop-syn.tlisp --backend aya --engine host "
                              f"--linker bpf-linker --vendor-dir {d['vendorOut']} ")
    assert "cp $src drop-syn.tlisp" in build  # the object is named after the file stem
    # The rustc/bpf-linker LLVM check runs before the build.
    assert build.index("LLVM version") < build.index("tatara-build build")
    assert d["hardeningDisable"] == ["all"] and d["dontFixup"] is True
    assert any("bpf-linker-" in p for p in d["nativeBuildInputs"])
    assert any("rust-nightly-2026-07-30" in p for p in d["nativeBuildInputs"])
    assert d["env"]["TATARA_RUSTC"].endswith("rust-nightly-2026-07-30/bin/rustc")


LIBRARY_LOCK = """\
version = 4

[[package]]
name = "core"
version = "0.0.0"

[[package]]
name = "libc"
version = "0.2.180"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "%s"
""" % ("ab" * 32)

REPO_LIBRARY_LOCK = ROOT / "nix/rust-library-Cargo.lock"


def test_vendor_dir_joins_the_crate_lock_and_the_library_lock(tmp_path: Path) -> None:
    lock = tmp_path / "library-Cargo.lock"
    lock.write_text(LIBRARY_LOCK)
    expr = f"{LIB}.mkBpfObject {{ src = {ROOT}/examples/drop-syn.tlisp; libraryLock = {lock}; }}"
    locks = drv(expr)["vendorLocks"]
    assert len(locks) == 2
    assert locks[0].endswith("-aya_lock.toml")  # the aya backend's fixed lock
    assert locks[1].endswith("-library-Cargo.lock")
    vendored = ev(f"map (v: v.args.crates) ({expr}).passthru.vendorDir.args.passthru.vendored")
    assert "libc-0.2.180" in vendored[1] and "aya-ebpf-0.2.1" in vendored[0]
    script = ev(f"({expr}).passthru.vendorDir.script")
    assert script.count("cargo-vendor-") == 2  # one importCargoLock per lock
    assert '[ -e "$out/$base" ] ||' in script  # a crate in both locks is linked once
    # The lock is checked against the nightly's rust-src before the build.
    check = ev(f"({expr}).passthru.libraryLockCheck.args")
    assert "cmp -s" in check["script"] and "-rust-src-nightly-2026-07-30" in check["script"]
    assert f"test -e {ev(f'({expr}).passthru.libraryLockCheck.outPath')}" in drv(expr)["buildPhase"]


def test_the_repository_keeps_the_nightlys_library_lock_as_data_or_says_it_is_missing() -> None:
    """Without nix/rust-library-Cargo.lock (it could not be fetched where
    this was written) the aya objects still evaluate; their check fails the
    build with the command that makes the file."""
    d = drv(f"{LIB}.examples.drop-syn")
    script = ev(f"{LIB}.examples.drop-syn.passthru.libraryLockCheck.args.script")
    if REPO_LIBRARY_LOCK.exists():
        assert len(d["vendorLocks"]) == 2 and d["vendorLocks"][1].endswith("-rust-library-Cargo.lock")
        assert "cmp -s" in script
        packages = tomllib.loads(REPO_LIBRARY_LOCK.read_text())["package"]
        assert {"core", "compiler_builtins"} <= {p["name"] for p in packages}
    else:
        assert len(d["vendorLocks"]) == 1
        assert "exit 1" in script and "nix build .#rust-library-lock" in script


AYA_CLOSURE = {  # DESIGN.md: crates.io checksums of aya-ebpf 0.2.1's closure
    ("aya-ebpf", "0.2.1"): "eace5970943931fea46a8cbdca208a8f6a9e0413d85a5a6c4e168f0b909570bc",
    ("aya-ebpf-bindings", "0.2.0"): "cf1f19286ebbda6673099b68d049034838f08e4939cef66c998a8d3e62825d76",
    ("aya-ebpf-cty", "0.3.0"): "0884264bc8a51a49fed03df8feada3a21d703cf501dae33c28bdba5d2313ef33",
    ("aya-ebpf-macros", "0.2.0"): "23e3a7f86e914df106dd00f9d757bc93f7d5c93380c51eead23d8d2ccd15a87a",
    ("aya-build", "0.2.0"): "609b414caa508f04d2dbbc9481ad6869f43ab9ab1dc9abd237fca27c0818f663",
}


def test_the_fixed_aya_lock_is_vendorable_by_checksum() -> None:
    """importCargoLock reads `package` from the TOML and fetches each
    registry crate by its `checksum`: every entry needs both."""
    lock = ROOT / "tatara_build/backends/aya_lock.toml"
    if not lock.exists():
        pytest.skip("the aya backend ships no fixed lock; the emitted crate's Cargo.lock is vendored (IFD)")
    packages = ev(f"(builtins.fromTOML (builtins.readFile {lock})).package")
    for p in packages:
        assert p["source"] == "registry+https://github.com/rust-lang/crates.io-index", p
        assert re.fullmatch(r"[0-9a-f]{64}", p["checksum"]), p
    found = {(p["name"], p["version"]): p["checksum"] for p in packages}
    assert {k: found.get(k) for k in AYA_CLOSURE} == AYA_CLOSURE


def test_object_provenance_records_flake_input_revs_and_pins() -> None:
    flake_env = ev(f"{FLAKE}.packages.x86_64-linux.drop-syn.args.env.TATARA_PROVENANCE")
    prov = json.loads(flake_env)
    assert prov["nixpkgs"] == NIXPKGS_REV and prov["nixpkgs-narHash"] == NIXPKGS_NARHASH
    assert prov["rust-overlay"] == RUST_OVERLAY_REV and prov["rust-overlay-narHash"] == RUST_OVERLAY_NARHASH
    assert prov["nightly"] == "2026-07-30" and prov["llvm"].startswith("22.")
    assert prov["aya-ebpf"] == "0.2.1" and prov["backend"] == "aya"


def test_c_backend_object_uses_clang_with_hardening_disabled() -> None:
    d = drv(f"{LIB}.mkBpfObject {{ src = {ROOT}/examples/drop-syn.tlisp; backend = \"c\"; }}")
    command = next(line for line in d["buildPhase"].splitlines() if line.startswith("tatara-build build"))
    assert command == 'tatara-build build drop-syn.tlisp --backend c --engine host -o "$NIX_BUILD_TOP/out"'
    assert d["hardeningDisable"] == ["all"]
    assert any("clang-wrapper-22" in p for p in d["nativeBuildInputs"])
    assert any("libbpf" in p for p in d["buildInputs"])


def test_user_names_and_flags_are_validated_or_quoted() -> None:
    bad = nix(f"({LIB}.mkBpfObject {{ src = {ROOT}/examples/drop-syn.tlisp; name = \"x; rm -rf /\"; }}).args.buildPhase",
              check=False)
    assert bad.returncode != 0 and "must match [a-z][a-z0-9-]*" in bad.stderr
    unknown = nix(f"({LIB}.mkBpfObject {{ src = {ROOT}/examples/drop-syn.tlisp; backend = \"go\"; }}).args",
                  check=False)
    assert unknown.returncode != 0 and "unknown backend `go`" in unknown.stderr
    quoted = ev(f"({LIB}.mkBpfObject {{ src = {ROOT}/examples/drop-syn.tlisp; extraFlags = [ \"--cpu\" \"v2; id\" ]; }}).args.buildPhase")
    assert "'--cpu' 'v2; id'" in quoted


# --- the CLI package, the flake's outputs, the VM check ---------------------------------


def test_cli_package_comes_from_pyproject_with_nixpkgs_python() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    d = drv(f"{LIB}.tatara-build")
    assert (d["pname"], d["version"]) == (project["name"], project["version"])
    assert d["pyproject"] is True and any("setuptools" in p for p in d["build-system"])
    deps = {re.sub(r"^/nix/store/[0-9a-z]{32}-|-[0-9.]+$", "", p) for p in d["dependencies"]}
    assert deps == {re.split(r"[<>=]", dep)[0] for dep in project["dependencies"]}
    assert d["meta"]["mainProgram"] == "tatara-build"
    assert project["scripts"]["tatara-build"]
    # PEP 639: the license is an SPDX expression (the table form is deprecated), which needs setuptools >= 77.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["license"] == "MIT"
    assert pyproject["build-system"]["requires"] == ["setuptools>=77"]


def test_flake_outputs() -> None:
    got = ev(f"""let o = {FLAKE}; s = "x86_64-linux"; in {{
      packages = builtins.attrNames o.packages.${{s}};
      checks = builtins.attrNames o.checks.${{s}};
      app = o.apps.${{s}}.default;
      shell = o.devShells.${{s}}.default.args.packages;
      default = o.packages.${{s}}.default.args.pname;
      formatter = o.formatter.${{s}}.name;
      overlaid = ({PKGS}.extend o.overlays.default).tatara-build.args.pname;
      user = (o.lib.mkBpfObject {{ pkgs = {PKGS}; src = {ROOT}/examples/drop-syn.tlisp; }}).args.pname;
      # A caller's nixpkgs without rust-overlay gets it added.
      bare = (o.lib.mkBpfObject {{ pkgs = import {HERE}/stub-pkgs.nix {{ }}; src = {ROOT}/examples/drop-syn.tlisp; }})
        .args.env.TATARA_RUSTC;
      lockPackage = o.packages.${{s}}.rust-library-lock.args.script;
    }}""")
    assert set(got["packages"]) == {*EXAMPLES, "default", "tatara-build", "rust-library-lock"}
    assert set(got["checks"]) == {*EXAMPLES, "vm-verifier"}
    assert got["default"] == got["overlaid"] == "tatara-build"  # `nix run`, `nix profile install`: the CLI
    assert got["user"] == "drop-syn" and "rust-nightly-2026-07-30" in got["bare"]
    assert got["formatter"] == "nixfmt"
    assert "/lib/rustlib/src/rust/library/Cargo.lock $out" in got["lockPackage"]
    assert got["app"]["type"] == "app" and got["app"]["program"].endswith(f"-tatara-build-{VERSION}/bin/tatara-build")
    for tool in ("rust-nightly-2026-07-30", "bpf-linker", "bpftools", "qemu", "clang-wrapper-22", "tatara-build"):
        assert any(tool in p for p in got["shell"]), tool


def _unbound_names(source: str) -> set[str]:
    """Names a script loads but never binds (imports, defs, assignments,
    arguments) and that are not builtins: a coarse pyflakes."""
    import ast
    import builtins

    tree = ast.parse(source)
    bound: set[str] = set(dir(builtins))
    loaded: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loaded - bound


def test_vm_check_boots_the_pinned_kernel_and_checks_every_example() -> None:
    got = ev(f"""let t = {FLAKE}.checks.x86_64-linux.vm-verifier.args;
                   node = t.nodes.machine {{ }}; in {{
      inherit (t) name globalTimeout testScript;
      kernel = node.boot.kernelPackages.kernel.version;
      packages = node.environment.systemPackages;
      python = t.extraPythonPackages {PKGS}.python3Packages;
    }}""")
    pins = ev(f"import {ROOT}/nix/pins.nix")
    assert pins["kernel"] == "linux_6_1" and got["kernel"].startswith("6.1.")
    assert any("bpftools" in p for p in got["packages"])
    assert any("tatara-build" in p for p in got["python"])
    script = got["testScript"]
    assert 0 < got["globalTimeout"] <= 30 * 60
    for stem in EXAMPLES:
        assert f'"out\\":\\"/nix/store/00000000000000000000000000000000-{stem}-aya-{VERSION}\\"' in script, stem
    assert "check_examples(machine" in script and "assert not result.failures" in script
    # The driver lints the script (pyflakes): every name it uses must be bound.
    assert _unbound_names(script) <= {"machine"}


def test_the_flake_evaluates_under_nix_with_stub_inputs(tmp_path: Path) -> None:
    """Real flake semantics (flake.lock parsing, `follows`, the outputs
    function's arguments) with nixpkgs and rust-overlay replaced by local
    stub flakes via --override-input; a private store under tmp_path."""
    if shutil.which("nix") is None:
        pytest.skip("nix not installed")
    src, stub_np, stub_ro = tmp_path / "src", tmp_path / "nixpkgs", tmp_path / "rust-overlay"
    src.mkdir()
    for name in ("flake.nix", "flake.lock", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("nix", "examples", "tatara_build"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    stub_np.mkdir()
    shutil.copy(HERE / "stub-pkgs.nix", stub_np / "stub-pkgs.nix")
    (stub_np / "default.nix").write_text("args: import ./stub-pkgs.nix args\n")
    (stub_np / "flake.nix").write_text("{ outputs = { self }: { }; }\n")
    stub_ro.mkdir()
    shutil.copy(HERE / "stub-rust-overlay.nix", stub_ro / "stub.nix")
    (stub_ro / "flake.nix").write_text('{ inputs.nixpkgs.url = "path:/nonexistent";\n'
                                       '  outputs = { self, nixpkgs }: { inherit (import ./stub.nix) overlays; }; }\n')
    ran = subprocess.run(
        ["nix", "--store", str(tmp_path / "store"),
         "eval", "--json", "--no-write-lock-file",
         "--override-input", "nixpkgs", f"path:{stub_np}", "--override-input", "rust-overlay", f"path:{stub_ro}",
         f"path:{src}#packages.x86_64-linux", "--apply",
         "ps: builtins.mapAttrs (n: p: p.args.buildPhase or p.args.pname or p.args.name) ps"],
        capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    packages = json.loads(ran.stdout)
    assert set(packages) == {*EXAMPLES, "default", "tatara-build", "rust-library-lock"}
    for stem in EXAMPLES:
        assert f"tatara-build build {stem}.tlisp --backend aya --engine host --linker bpf-linker" in packages[stem]
    assert (src / "flake.lock").read_text() == (ROOT / "flake.lock").read_text()  # not rewritten


def _cli_options(command: str) -> set[str] | None:
    import typer

    from tatara_build.cli import app

    group = typer.main.get_command(app)
    cmd = group.commands.get(command)  # type: ignore[attr-defined]
    return None if cmd is None else {o for p in cmd.params for o in getattr(p, "opts", [])}


def test_the_derivations_use_only_options_the_cli_has() -> None:
    """The Nix layer is a thin wrapper: every flag it passes must exist."""
    lib_ = f"{LIB}"
    for expr in (f"{lib_}.examples.drop-syn.args.buildPhase",
                 f"({lib_}.mkBpfObject {{ src = {ROOT}/examples/drop-syn.tlisp; backend = \"c\"; }}).args.buildPhase"):
        command = next(line for line in ev(expr).splitlines() if line.startswith("tatara-build build"))
        assert set(re.findall(r"(?<!\S)(--?[a-z][a-z-]*)", command)) <= _cli_options("build"), command
    emit = _cli_options("emit")
    if emit is None:
        pytest.skip("`tatara-build emit` is not registered yet (crate.nix calls it)")
    script = ev(f"({lib_}.mkBpfCrate {{ src = {ROOT}/examples/drop-syn.tlisp; name = \"drop-syn\"; }}).args.script")
    command = next(line for line in script.splitlines() if line.startswith("tatara-build emit"))
    assert set(re.findall(r"(?<!\S)(--?[a-z][a-z-]*)", command)) <= emit, command


def _nix_build(expr: str, attempts: int = 5) -> subprocess.CompletedProcess:
    """nix-build with the tests' configuration: no substituters, no build
    users (single-user store), no sandbox (host-pkgs.nix uses /bin/bash and
    /usr/bin). Nix 2.8 without a sandbox sometimes reports a builder that
    exits as "failed due to signal 9" (host-pkgs.nix avoids the common case,
    a last command exec'd by bash; it was also seen with builders running
    Python for a while). Retrying exactly that case keeps the test about our
    derivations, not that race; any other failure fails at once."""
    argv = ["nix-build", "--no-out-link", "-E", expr]
    for _ in range(attempts):
        ran = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if ran.returncode == 0 or "failed due to signal 9" not in ran.stderr:
            break
    return ran


def _cli_sources_hash() -> str:
    """The venv's CLI is passed to Nix as a plain path, so Nix cannot see
    that its Python sources changed; this puts their hash into the
    derivation so a changed CLI is never answered from a stale store path."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "tatara_build").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_object_nix_really_builds_the_same_object_as_the_host_engine(tmp_path: Path, nix_build_env) -> None:
    """nix/object.nix built for real by Nix 2.8 (host-pkgs.nix stands in for
    nixpkgs with this machine's tools, C backend; Debian's clang 22 stands in
    for llvmPackages_22.clang): its shell phases run the CLI, and the object
    is byte-identical to a plain host build, which picks the same clang 22
    (the pinned LLVM major) by default; both manifests say so."""
    import sys

    from tatara_build.compile.toolchain import PINNED_LLVM_MAJOR

    cli = Path(sys.prefix) / "bin/tatara-build"
    llvm = Path(f"/usr/lib/llvm-{PINNED_LLVM_MAJOR}")
    if shutil.which("nix-build") is None or not (llvm / "bin/clang").exists() or not cli.exists():
        pytest.skip(f"needs nix-build, clang-{PINNED_LLVM_MAJOR} (scripts/setup.sh) and the tatara-build CLI")
    expr = f"""let
      pkgs = import {HERE}/host-pkgs.nix {{ }};
      tatara-build = {{ outPath = "{sys.prefix}"; version = "{VERSION}"; }};
      mkBpfObject = import {ROOT}/nix/object.nix {{
        inherit pkgs tatara-build;
        mkBpfCrate = import {ROOT}/nix/crate.nix {{ inherit pkgs tatara-build; }};
        ayaLock = {ROOT}/tatara_build/backends/aya_lock.toml; checkLibraryLock = null;
        toolchain.llvmPackages.clang = {{ outPath = "{llvm}"; version = "{PINNED_LLVM_MAJOR}-host"; }};
        bpf-linker = null; mkVendorDir = null; provenance = {{ nixpkgs = "host-test"; cli-sources = "{_cli_sources_hash()}"; }};
      }};
    in mkBpfObject {{ src = {ROOT}/examples/drop-syn.tlisp; backend = "c"; }}"""
    # Builds as the caller (no build users): the venv's interpreter may sit under /root.
    ran = _nix_build(expr)
    assert ran.returncode == 0, ran.stderr[-3000:]
    out = Path(ran.stdout.strip().splitlines()[-1])
    assert sorted(p.name for p in out.iterdir()) == ["drop-syn.o", "manifest.json", "src"]
    from tatara_build.compile import BuildOptions
    from tatara_build.pipeline import build

    build(ROOT / "examples/drop-syn.tlisp", tmp_path / "host", BuildOptions(backend="c", use_cache=False))
    import hashlib

    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert sha(out / "drop-syn.o") == sha(tmp_path / "host/drop-syn.o")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["objects"][0]["sha256"] == sha(out / "drop-syn.o")
    assert manifest["nix"]["nixpkgs"] == "host-test"  # the flake's provenance reaches the manifest
    host = json.loads((tmp_path / "host/manifest.json").read_text())
    for ran in (manifest, host):
        assert f"clang version {PINNED_LLVM_MAJOR}." in ran["toolchain"]["compiler"]
        assert "pinned LLVM major" in ran["toolchain"]["compiler_choice"]


@pytest.mark.slow
def test_object_nix_really_builds_the_aya_object_like_the_host_engine(tmp_path: Path, nix_build_env) -> None:
    """nix/object.nix for the aya backend, built by Nix 2.8 with this
    machine's tools standing in for nixpkgs: the host's rustc and cargo (the
    ones the host engine picks), bpf-linker from PATH or else tatara-build's
    own LLVM link driver under that name, and the crates of
    TATARA_VENDOR_DIR. Its object is byte-identical to a host build with the
    same tools. Not covered here: build-std and the library lock (the host's
    rustc must ship a prebuilt BPF core, as Debian's rustc-web does)."""
    import os
    import sys

    vendor = os.environ.get("TATARA_VENDOR_DIR")
    if not vendor:
        pytest.skip("needs TATARA_VENDOR_DIR: aya-ebpf's crates in `cargo vendor` layout (made on a networked machine)")
    from tatara_build.compile import toolchain

    rust = toolchain.find_rust()
    if not rust.prebuilt_core:
        pytest.skip(f"{rust.rustc} has no prebuilt BPF core (build-std would need the nightly's library lock)")
    tools = tmp_path / "rust-toolchain"
    (tools / "bin").mkdir(parents=True)
    (tools / "bin/rustc").symlink_to(rust.rustc)
    (tools / "bin/cargo").symlink_to(rust.cargo)
    linker = tmp_path / "bpf-linker"
    (linker / "bin").mkdir(parents=True)
    real = toolchain.find_bpf_linker()
    if real is not None:
        (linker / "bin/bpf-linker").symlink_to(real)
    else:  # what `--linker llvm` runs, under bpf-linker's name
        (linker / "bin/bpf-linker").write_text(f"#!/bin/sh\nexec {sys.executable} -m tatara_build.compile.link \"$@\"\n")
        (linker / "bin/bpf-linker").chmod(0o755)
    llvm = ".".join(map(str, rust.llvm))
    expr = f"""let
      pkgs = import {HERE}/host-pkgs.nix {{ }};
      tatara-build = {{ outPath = "{sys.prefix}"; version = "{VERSION}"; }};
      mkBpfObject = import {ROOT}/nix/object.nix {{
        inherit pkgs tatara-build;
        mkBpfCrate = import {ROOT}/nix/crate.nix {{ inherit pkgs tatara-build; }};
        toolchain = {{
          rust = "{tools}"; nightly = "host"; rustVersion = "host";
          llvmPackages.llvm.version = "{llvm}";
        }};
        bpf-linker = {{ outPath = "{linker}"; version = "host"; }};
        mkVendorDir = _: "{vendor}";
        ayaLock = {ROOT}/tatara_build/backends/aya_lock.toml;
        # A prebuilt core: no build-std, so no library lock to check.
        checkLibraryLock = _: pkgs.runCommand "no-build-std" {{ }} "echo prebuilt core > $out";
        provenance = {{ nixpkgs = "host-test"; cli-sources = "{_cli_sources_hash()}"; }};
      }};
    in mkBpfObject {{ src = {ROOT}/examples/drop-syn.tlisp; }}"""
    ran = _nix_build(expr)
    assert ran.returncode == 0, ran.stderr[-3000:]
    out = Path(ran.stdout.strip().splitlines()[-1])
    from tatara_build.compile import BuildOptions
    from tatara_build.pipeline import build

    build(ROOT / "examples/drop-syn.tlisp", tmp_path / "host",
          BuildOptions(backend="aya", linker="bpf-linker" if real else "llvm", use_cache=False))
    import hashlib

    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert sha(out / "drop-syn.o") == sha(tmp_path / "host/drop-syn.o")
    assert json.loads((out / "manifest.json").read_text())["nix"]["nixpkgs"] == "host-test"


def test_the_nix_pins_match_what_the_aya_backend_emits(tmp_path: Path) -> None:
    """The generated crate names the same nightly as nix/pins.nix, and every
    crate of its Cargo.lock is in the fixed lock the Nix build vendors."""
    from tatara_build import backends, check, frontend

    module = check.check(frontend.load(ROOT / "examples/drop-syn.tlisp"))
    try:
        backends.emit(module, "aya", tmp_path / "crate")
    except (KeyError, ValueError, NotImplementedError) as err:
        pytest.skip(f"aya backend not available: {err}")
    pins = ev(f"import {ROOT}/nix/pins.nix")
    toolchain = tomllib.loads((tmp_path / "crate/rust-toolchain.toml").read_text())["toolchain"]
    assert toolchain["channel"] == f"nightly-{pins['nightly']}"
    assert "rust-src" in toolchain["components"]
    generated = tomllib.loads((tmp_path / "crate/Cargo.lock").read_text())["package"]
    fixed = tomllib.loads((ROOT / "tatara_build/backends/aya_lock.toml").read_text())["package"]
    key = lambda p: (p["name"], p["version"], p["checksum"])  # noqa: E731
    assert {key(p) for p in generated if "source" in p} <= {key(p) for p in fixed}
    assert any(p["name"] == "aya-ebpf" and p["version"] == pins["ayaEbpf"] for p in generated)


@pytest.mark.parametrize("rustc_llvm, ok", [("22.1.8", True), ("22.1.2", True), ("22.1.9", True), ("23.0.0", False),
                                            ("21.1.8", False)])
def test_the_llvm_check_refuses_bitcode_the_linker_cannot_read(tmp_path: Path, rustc_llvm: str, ok: bool) -> None:
    """The aya build's first step compares `rustc -vV` with bpf-linker's LLVM
    (22.1.8 in the stub): bitcode needs the same major."""
    build = ev(f"{LIB}.examples.drop-syn.args.buildPhase").splitlines()
    start = next(i for i, line in enumerate(build) if line.startswith("rustc_llvm="))
    end = next(i for i in range(start, len(build)) if build[i] == "fi")
    fake = tmp_path / "rustc"
    fake.write_text(f"#!/bin/sh\necho 'rustc 1.99.0-nightly'\necho 'LLVM version: {rustc_llvm}'\n")
    fake.chmod(0o755)
    ran = subprocess.run(["bash", "-euc", "\n".join(build[start:end + 1])], capture_output=True, text=True,
                         env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert (ran.returncode == 0) == ok, ran.stderr
    if not ok:
        assert f"rustc uses LLVM {rustc_llvm} but bpf-linker was built with LLVM 22.1.8" in ran.stderr
        assert "the majors must match" in ran.stderr


# --- no import-from-derivation -----------------------------------------------------------


def test_every_flake_output_evaluates_without_import_from_derivation() -> None:
    """Every output, forced to the last string (`--strict`), with
    allow-import-from-derivation = false: the stub importCargoLock reads its
    lock while evaluating, as nixpkgs' does, and the stub rust-src is a real
    derivation, so reading the nightly's lock from it would fail here."""
    got = ev(f"""let o = {FLAKE}; s = "x86_64-linux";
      # Everything a derivation would be made of, down to the last string
      # (toJSON would print only the outPath of a set that has one).
      force = v:
        if builtins.isFunction v then "<function>"
        else if builtins.isList v then map force v
        else if v ? drvPath then v.drvPath
        else if builtins.isAttrs v then builtins.mapAttrs (n: force) (builtins.removeAttrs v [ "outPath" ])
          // {{ path = v.outPath or null; }}
        else v;
    in {{
      packages = builtins.mapAttrs (n: force) o.packages.${{s}};
      checks = builtins.mapAttrs (n: force) o.checks.${{s}};
      shell = force o.devShells.${{s}}.default;
      inherit (o) apps;
      formatter = force o.formatter.${{s}};
      overlay = force ({PKGS}.extend o.overlays.default).tatara-build;
      aya = force (o.lib.mkBpfObject {{ pkgs = {PKGS}; src = {ROOT}/examples/drop-syn.tlisp; }});
      c = force (o.lib.mkBpfObject {{ pkgs = {PKGS}; src = {ROOT}/examples/drop-syn.tlisp; backend = "c"; }});
      vendor = builtins.mapAttrs (n: p: force p.passthru.vendorDir) (builtins.removeAttrs o.packages.${{s}}
        [ "default" "tatara-build" "rust-library-lock" ]);
    }}""")
    assert set(got["packages"]) >= set(EXAMPLES) and set(got["vendor"]) == set(EXAMPLES)


def test_reading_the_lock_out_of_rust_src_is_caught_as_import_from_derivation(nix_build_env) -> None:
    """The check above can fail: the library lock read out of rust-src while
    evaluating (the opt-in `libraryLockFromRustSrc`, and the old default) is
    refused with IFD disabled. (`nix eval`,
    which writes the .drv, gets as far as refusing to build it.)"""
    if shutil.which("nix") is None:
        pytest.skip("nix not installed")
    ran = subprocess.run(["nix", "eval", "--json", "--impure", *NO_IFD, "--expr", f"""let l = {LIB}; in (l.mkBpfObject {{
      src = {ROOT}/examples/drop-syn.tlisp;
      libraryLock = l.libraryLockFromRustSrc;
    }}).passthru.vendorDir.args.passthru.vendored"""], capture_output=True, text=True, timeout=120)
    assert ran.returncode != 0
    assert "because the option 'allow-import-from-derivation' is disabled" in ran.stderr, ran.stderr
    assert ev(f"{LIB}.libraryLockFromRustSrc").endswith("-rust-src-nightly-2026-07-30/lib/rustlib/src/rust/library/Cargo.lock")


def _library_lock_expr(tmp_path: Path, rust_src_lock: str, lock: Path | None) -> str:
    """library-lock.nix on host-pkgs.nix, with a rust-src derivation whose
    library/Cargo.lock is `rust_src_lock`."""
    (tmp_path / "rust-src.lock").write_text(rust_src_lock)
    return f"""let
      pkgs = import {HERE}/host-pkgs.nix {{ }};
      rustSrc = pkgs.runCommand "rust-src-test" {{ }} ''
        mkdir -p $out/lib/rustlib/src/rust/library
        cp {tmp_path}/rust-src.lock $out/lib/rustlib/src/rust/library/Cargo.lock
      '';
      ll = import {ROOT}/nix/library-lock.nix {{ inherit pkgs; toolchain = {{ inherit rustSrc; nightly = "2026-07-30"; }}; }};
    in {{ check = ll.mkCheck {lock if lock is not None else "null"}; inherit (ll) fromToolchain; }}"""


@pytest.mark.slow
def test_the_library_lock_check_really_builds(tmp_path: Path, nix_build_env) -> None:
    """The build-time check, built by Nix: the same lock passes; another
    nightly's lock or no copy fails with what to do."""
    same, other = tmp_path / "same.lock", tmp_path / "other.lock"
    same.write_text(LIBRARY_LOCK)
    other.write_text(LIBRARY_LOCK.replace("0.2.180", "0.2.181"))

    def build(lock: Path | None, attr: str = "check") -> subprocess.CompletedProcess:
        return _nix_build(f"({_library_lock_expr(tmp_path, LIBRARY_LOCK, lock)}).{attr}")

    ok = build(same)
    assert ok.returncode == 0, ok.stderr[-2000:]
    stale = build(other)
    assert stale.returncode != 0
    assert "other.lock is not nightly 2026-07-30's library/Cargo.lock" in stale.stderr, stale.stderr[-2000:]
    assert '-version = "0.2.181"' in stale.stderr and "nix build .#rust-library-lock" in stale.stderr
    missing = build(None)
    assert missing.returncode != 0 and "no copy of nightly 2026-07-30's library/Cargo.lock" in missing.stderr
    made = build(None, "fromToolchain")
    assert made.returncode == 0, made.stderr[-2000:]
    assert Path(made.stdout.strip().splitlines()[-1]).read_text() == LIBRARY_LOCK

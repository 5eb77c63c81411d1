"""The flake evaluated against the real nixpkgs `lib` and the real
rust-overlay, with stand-ins (real-inputs-pkgs.nix) only for the builders
and packages nixpkgs would provide. The full nixpkgs tree cannot be fetched
on these machines, but these two public repositories can be checked out:

    TATARA_NIXPKGS_LIB=<checkout of github:nix-community/nixpkgs.lib>
    TATARA_RUST_OVERLAY=<checkout of github:oxalica/rust-overlay at flake.lock's rev
                         (a git worktree, or the tree without .git)>

Skipped, with that reason, when either is unset. The rust-overlay tree is
verified against flake.lock's narHash before anything else, so the test
evaluates exactly the pinned rust-overlay."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.tlisp"))
LOCK = json.loads((ROOT / "flake.lock").read_text())["nodes"]
NO_IFD = ["--option", "allow-import-from-derivation", "false"]

pytestmark = [
    pytest.mark.skipif(shutil.which("nix") is None, reason="nix not installed (Debian: apt-get install nix-bin)"),
    pytest.mark.skipif(not os.environ.get("TATARA_NIXPKGS_LIB") or not os.environ.get("TATARA_RUST_OVERLAY"),
                       reason="set TATARA_NIXPKGS_LIB (nix-community/nixpkgs.lib checkout) and TATARA_RUST_OVERLAY "
                              "(oxalica/rust-overlay checkout at flake.lock's rev) to evaluate against them"),
]


@pytest.fixture(autouse=True)
def _tests_own_nix_config(nix_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in nix_env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    lib = Path(os.environ["TATARA_NIXPKGS_LIB"]).resolve()
    overlay = Path(os.environ["TATARA_RUST_OVERLAY"]).resolve()
    if not (lib / "lib/default.nix").is_file():
        pytest.fail(f"TATARA_NIXPKGS_LIB={lib} has no lib/default.nix")
    # The nixpkgs input: `import nixpkgs { system; overlays; }` -> the stand-ins over real lib.
    nixpkgs = tmp_path_factory.mktemp("nixpkgs")
    (nixpkgs / "default.nix").write_text(
        f"args: import {HERE}/real-inputs-pkgs.nix (args // {{ lib = import {lib}/lib; }})\n")
    return {"lib": lib, "overlay": overlay, "nixpkgs": nixpkgs}


def nar_hash(path: Path) -> str:
    ran = subprocess.run(["nix", "hash", "path", str(path)], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.strip()


def flake_expr(inputs: dict[str, Path]) -> str:
    """flake.nix's outputs with the real rust-overlay flake (its own
    outputs function, given the real lib) and the stand-in nixpkgs."""
    nixpkgs, overlay = LOCK["nixpkgs"]["locked"], LOCK["rust-overlay"]["locked"]
    return f"""let
      lib = import {inputs['lib']}/lib;
      nixpkgs = {{ outPath = {inputs['nixpkgs']}; inherit lib; rev = "{nixpkgs['rev']}"; narHash = "{nixpkgs['narHash']}"; }};
      rust-overlay = (import {inputs['overlay']}/flake.nix).outputs {{ self = rust-overlay; inherit nixpkgs; }}
        // {{ outPath = {inputs['overlay']}; rev = "{overlay['rev']}"; narHash = "{overlay['narHash']}"; }};
    in (import {ROOT}/flake.nix).outputs {{ self = {{ outPath = {ROOT}; }}; inherit nixpkgs rust-overlay; }}"""


def ev(expr: str):
    ran = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "--readonly-mode", *NO_IFD, "-E", expr],
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-4000:]
    return json.loads(ran.stdout)


def test_the_rust_overlay_checkout_is_the_locked_one(inputs, tmp_path: Path) -> None:
    """The tree hashes to flake.lock's narHash (as GitHub's tarball would).
    A git checkout is hashed without .git, and its commit time must be the
    lock's lastModified (what `nix flake lock` records)."""
    locked, tree = LOCK["rust-overlay"]["locked"], inputs["overlay"]
    if (tree / ".git").exists():
        head = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%H %ct"], capture_output=True, text=True)
        rev, committed = head.stdout.split()
        assert (rev, int(committed)) == (locked["rev"], locked["lastModified"])
        export = tmp_path / "rust-overlay"
        export.mkdir()
        archive = subprocess.run(["git", "-C", str(tree), "archive", "HEAD"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(export)], input=archive.stdout, check=True)
        tree = export
    assert nar_hash(tree) == locked["narHash"]


def test_every_output_evaluates_with_real_lib_and_rust_overlay_without_ifd(inputs) -> None:
    got = ev(f"""let o = {flake_expr(inputs)}; s = "x86_64-linux";
      pkgs = import {inputs['nixpkgs']} {{ system = s; }};  # a caller's nixpkgs, without rust-overlay
    in {{
      packages = builtins.mapAttrs (n: p: p.drvPath) o.packages.${{s}};
      checks = builtins.mapAttrs (n: p: p.drvPath) o.checks.${{s}};
      shell = o.devShells.${{s}}.default.drvPath;
      formatter = o.formatter.${{s}}.drvPath;
      app = o.apps.${{s}}.default.program;
      overlay = (pkgs.extend o.overlays.default).tatara-build.drvPath;
      userAya = (o.lib.mkBpfObject {{ inherit pkgs; src = {ROOT}/examples/drop-syn.tlisp; }}).drvPath;
      userC = (o.lib.mkBpfObject {{ inherit pkgs; src = {ROOT}/examples/drop-syn.tlisp; backend = "c"; }}).drvPath;
      flakeAya = o.packages.${{s}}.drop-syn.drvPath;
    }}""")
    assert set(got["packages"]) == {*EXAMPLES, "default", "tatara-build", "rust-library-lock"}
    assert set(got["checks"]) == {*EXAMPLES, "vm-verifier"}
    drv = re.compile(r"/nix/store/[0-9a-z]{32}-.+\.drv")
    for path in [*got["packages"].values(), *got["checks"].values(), got["shell"], got["formatter"], got["overlay"],
                 got["userAya"], got["userC"]]:
        assert drv.fullmatch(path), path
    # The caller's nixpkgs plus rust-overlay gives the very derivation the flake builds.
    assert got["userAya"] == got["flakeAya"]


def test_the_nightly_comes_from_rust_overlays_manifest_with_rust_src(inputs) -> None:
    """The pins in nix/pins.nix against rust-overlay's own manifest for that
    date: version, and the dist tarballs (with their hashes) the toolchain
    derivation fetches."""
    pins = ev(f"import {ROOT}/nix/pins.nix")
    got = ev(f"""let o = {flake_expr(inputs)};
      lib = import {inputs['lib']}/lib;
      pkgs = import {inputs['nixpkgs']} {{ system = "x86_64-linux"; overlays = [ o.inputs.rust-overlay.overlays.default or (import {inputs['overlay']}) ]; }};
      t = (o.lib.mkLib {{ inherit pkgs; }}).toolchain;
      manifest = pkgs.rust-bin.nightly.${{"{pins['nightly']}"}}._manifest;
      fetched = d: map (s: {{ url = builtins.head s.urls; hash = s.outputHash; }})
        (builtins.filter (s: s ? urls) (map (c: c.src or {{ }}) (d.paths or [ ])));
    in {{
      version = t.rust.version;
      name = t.rust.name;
      components = map (c: c.pname or c.name) t.rust.paths;
      rustSrc = t.rustSrc.name;
      rustSrcUrl = builtins.head t.rustSrc.src.urls;
      # `nix build .#rust-library-lock` copies the lock out of this rust-src.
      lockPackage = o.packages.x86_64-linux.rust-library-lock.buildCommand;
      rustSrcPath = t.rustSrc.outPath;
      manifestVersion = manifest.version;
      manifestDate = manifest.date;
    }}""")
    assert got["manifestDate"] == pins["nightly"] == "2026-07-30"
    assert got["manifestVersion"].startswith(pins["rustVersion"]), got
    assert got["version"].startswith(pins["rustVersion"]), got
    assert "rust-src" in " ".join(got["components"]) and "rustc" in " ".join(got["components"])
    assert got["rustSrcUrl"] == f"https://static.rust-lang.org/dist/{pins['nightly']}/rust-src-nightly.tar.xz"
    assert f"{got['rustSrcPath']}/lib/rustlib/src/rust/library/Cargo.lock" in got["lockPackage"]


def test_the_derivation_graph_runs_what_the_host_engine_runs(inputs, nix_build_env) -> None:
    """Instantiated (written to the store, not built): the object's
    derivation runs the host engine's command and depends on exactly the
    pinned pieces: the rust-overlay nightly (fetched from static.rust-lang.org
    by its manifest hash), bpf-linker on LLVM 22, the CLI, the vendored
    crates (fetched by the Cargo.lock checksums) and the library-lock check,
    which depends on rust-src."""
    ran = subprocess.run(["nix-instantiate", *NO_IFD, "-E", f'({flake_expr(inputs)}).packages.x86_64-linux.drop-syn'],
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-4000:]
    drv_path = ran.stdout.strip().splitlines()[-1]
    shown = subprocess.run(["nix", "show-derivation", "-r", drv_path], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    graph = {path: _env(d) | {"inputDrvs": list(d["inputDrvs"])} for path, d in json.loads(shown.stdout).items()}
    by_name = {d["name"]: d for d in graph.values()}
    obj = graph[drv_path]
    command = next(line for line in obj["buildPhase"].splitlines() if line.startswith("tatara-build build"))
    assert command.startswith("tatara-build build drop-syn.tlisp --backend aya --engine host --linker bpf-linker "
                              "--vendor-dir /nix/store/")
    names = " ".join(sorted(graph[p]["name"] for p in obj["inputDrvs"]))
    for piece in ("rust-minimal-1.99.0-nightly-2026-07-30", "bpf-linker-0.11.1", "tatara-build-",
                  "drop-syn-vendor", "rust-library-lock-check-2026-07-30"):
        assert piece in names, (piece, names)
    # The nightly's tarballs: fixed-output fetches from the dist server.
    urls = {u for d in graph.values() if "outputHash" in d for u in _list(d.get("urls"))}
    dist = {u for u in urls if u.startswith("https://static.rust-lang.org/dist/2026-07-30/")}
    assert any("rustc-nightly-x86_64-unknown-linux-gnu" in u for u in dist), sorted(urls)
    assert any("rust-src-nightly" in u for u in dist), sorted(urls)
    # The aya closure: every crate of the backend's lock, fetched by its checksum.
    lock = tomllib.loads((ROOT / "tatara_build/backends/aya_lock.toml").read_text())["package"]
    hashes = {d["outputHash"] for d in graph.values() if "outputHash" in d}
    for p in lock:
        if "checksum" in p:
            assert f"https://crates.io/api/v1/crates/{p['name']}/{p['version']}/download" in urls, p["name"]
            assert any(p["checksum"] in h or h.endswith(p["checksum"]) for h in hashes) or _sri(p["checksum"]) in hashes
    check = by_name["rust-library-lock-check-2026-07-30"]
    if (ROOT / "nix/rust-library-Cargo.lock").exists():  # compared with rust-src's copy
        assert any(graph[p]["name"].startswith("rust-src") for p in check["inputDrvs"]), check["inputDrvs"]
    else:  # no copy in the repo yet: the check fails the build and says how to make it
        assert "nix build .#rust-library-lock" in check["buildCommand"]


def _env(d: dict) -> dict:
    """A derivation's attributes, structured (__json) or not."""
    env = dict(d["env"])
    if "__json" in env:
        env |= json.loads(env.pop("__json"))
    return env


def _list(value) -> list[str]:
    if value is None:
        return []
    return value if isinstance(value, list) else value.split()


def _sri(hex_sha256: str) -> str:
    import base64

    return "sha256-" + base64.b64encode(bytes.fromhex(hex_sha256)).decode()


def test_nix_flake_check_no_build_passes(inputs, tmp_path: Path, nix_build_env) -> None:
    """`nix flake check --no-build` (Nix checks every output's type: packages,
    checks and devShells are derivations, apps name a program, formatter,
    overlays.default is `final: prev: …`) with IFD disabled, on a copy of the
    flake whose nixpkgs input is a path flake made of the real lib and the
    stand-ins, and whose rust-overlay input is the checkout."""
    src, nixpkgs = tmp_path / "src", tmp_path / "nixpkgs"
    src.mkdir()
    for name in ("flake.nix", "flake.lock", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("nix", "examples", "tatara_build"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    nixpkgs.mkdir()
    shutil.copytree(inputs["lib"] / "lib", nixpkgs / "lib")
    shutil.copy(HERE / "real-inputs-pkgs.nix", nixpkgs / "real-inputs-pkgs.nix")
    (nixpkgs / "default.nix").write_text("args: import ./real-inputs-pkgs.nix (args // { lib = import ./lib; })\n")
    (nixpkgs / "flake.nix").write_text("{ outputs = { self }: { lib = import ./lib; }; }\n")
    ran = subprocess.run(
        ["nix", "flake", "check", "--no-build", "--no-write-lock-file", *NO_IFD,
         "--override-input", "nixpkgs", f"path:{nixpkgs}",
         "--override-input", "rust-overlay", f"path:{inputs['overlay']}", f"path:{src}"],
        capture_output=True, text=True, timeout=900)
    assert ran.returncode == 0, ran.stderr[-4000:]
    assert (src / "flake.lock").read_text() == (ROOT / "flake.lock").read_text()  # not rewritten

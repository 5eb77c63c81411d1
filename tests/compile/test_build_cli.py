"""`tatara-build build` / `repro` / `schema manifest` end to end: every
example through the C backend, the nix engine's success and failure paths,
--json output for machines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tatara_build.compile import BuildOptions, compile_generated

from .conftest import REPO, has_backend_emit, needs_clang

EXAMPLES = sorted((REPO / "examples").glob("*.tlisp"))
needs_emit = pytest.mark.skipif(not has_backend_emit(), reason="backends.emit / check not landed yet")


def cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tatara_build", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=600)


def test_manifest_schema_is_published():
    ran = cli("schema", "manifest")
    assert ran.returncode == 0, ran.stderr
    schema = json.loads(ran.stdout)
    props = schema["properties"]
    for name in ("objects", "toolchain", "crates", "source_sha256", "backend", "verification"):
        assert name in props
    object_props = schema["$defs"]["ObjectInfo"]["properties"]
    assert {"sha256", "size", "programs", "sections", "maps"} <= set(object_props)


@needs_clang
@needs_emit
@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_every_example_builds_with_c(example, tmp_path):
    out = tmp_path / "out"
    ran = cli("build", str(example), "--backend", "c", "-o", str(out), "--json")
    assert ran.returncode == 0, ran.stderr + ran.stdout
    manifest = json.loads(ran.stdout)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    [obj] = manifest["objects"]
    assert obj["file"] == f"{example.stem}.o" and (out / obj["file"]).is_file()
    assert (out / "src" / f"{example.stem}.bpf.c").is_file()
    declared = subprocess.run(["grep", "-c", "(defbpf-program", str(example)], capture_output=True, text=True)
    assert len(obj["programs"]) == int(declared.stdout.strip())
    assert all(p["name"] and p["kind"] for p in obj["programs"])


@needs_clang
@needs_emit
@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_every_example_is_reproducible_with_c(example):
    ran = cli("repro", str(example), "--backend", "c", "--json")
    assert ran.returncode == 0, ran.stderr + ran.stdout
    report = json.loads(ran.stdout)
    assert report["identical"] and all(o["first"] == o["second"] for o in report["objects"])


@needs_emit
@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("TATARA_VENDOR_DIR"), reason="needs TATARA_VENDOR_DIR with aya's crates")
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_every_example_is_reproducible_with_aya(example):
    ran = cli("repro", str(example), "--backend", "aya", "--json")
    assert ran.returncode == 0, ran.stderr + ran.stdout
    assert json.loads(ran.stdout)["identical"]


def test_nix_engine_without_nix_is_exit_3_with_json_error(tmp_path):
    source = tmp_path / "demo.tlisp"
    source.write_text("; nothing\n")
    ran = cli("build", str(source), "--engine", "nix", "-o", str(tmp_path / "out"), "--json",
              env={"PATH": str(Path(sys.executable).parent)})
    assert ran.returncode == 3
    error = json.loads(ran.stdout)["error"]
    assert error["exit_code"] == 3 and "`nix` is not installed" in error["message"]
    assert "--engine host" in ran.stderr and "Traceback" not in ran.stderr
    assert not (tmp_path / "out").exists()


FLAKE = """\
{
  outputs = { self }: {
    packages.x86_64-linux.demo = derivation {
      name = "demo-bpf";
      system = "x86_64-linux";
      builder = "/bin/sh";
      args = [ "-c" "/bin/mkdir $out && /bin/cp ${./demo.o} $out/demo.o && /bin/cp ${./manifest.json} $out/manifest.json" ];
    };
  };
}
"""


@needs_clang
@pytest.mark.skipif(shutil.which("nix") is None, reason="nix not installed")
def test_nix_engine_copies_the_derivation_output(c_sources, tmp_path, nix_build_env):
    flake = tmp_path / "flake"
    built = compile_generated(c_sources, "pass", tmp_path / "host", BuildOptions(backend="c"))
    flake.mkdir()
    (flake / "flake.nix").write_text(FLAKE)
    shutil.copyfile(tmp_path / "host" / "pass.o", flake / "demo.o")
    shutil.copyfile(tmp_path / "host" / "manifest.json", flake / "manifest.json")
    (flake / "demo.tlisp").write_text("; built by the flake\n")
    out = tmp_path / "out"
    ran = cli("build", str(flake / "demo.tlisp"), "--engine", "nix", "-o", str(out), "--json", env=nix_build_env)
    assert ran.returncode == 0, ran.stderr
    manifest = json.loads(ran.stdout)
    assert manifest["engine"] == "nix"
    assert manifest["objects"][0]["sha256"] == built.objects[0].sha256
    assert (out / "demo.o").read_bytes() == (tmp_path / "host" / "pass.o").read_bytes()


@pytest.mark.skipif(shutil.which("nix") is None, reason="nix not installed")
def test_nix_engine_unbuildable_flake_is_exit_3(tmp_path, nix_env):
    (tmp_path / "flake.nix").write_text("{ outputs = { self }: { packages.x86_64-linux = { }; }; }\n")
    (tmp_path / "demo.tlisp").write_text("; nothing\n")
    ran = cli("build", str(tmp_path / "demo.tlisp"), "--engine", "nix", "-o", str(tmp_path / "out"), env=nix_env)
    assert ran.returncode == 3, ran.stderr
    assert "nix build failed" in ran.stderr and "does not provide attribute" in ran.stderr


# A machine whose Nix cannot build at all, as a fresh machine is: each case
# overrides the tests' own Nix configuration with what such a machine has.
NIX_CANNOT_BUILD = {
    "no build users": ({"NIX_CONFIG": "build-users-group = tatara-no-such-group\n"},
                       "group 'tatara-no-such-group'", "NIX_CONFIG='build-users-group ='"),
    "no daemon": ({"NIX_CONFIG": "store = unix://{tmp}/no-daemon-socket\n"},
                  "the Nix daemon is not running", "nix-daemon"),
    "sandbox without /bin": ({"NIX_CONFIG": "build-users-group =\nsandbox = true\n"},
                             "is not inside Nix's build sandbox", "sandbox = false"),
}


@pytest.mark.skipif(shutil.which("nix") is None, reason="nix not installed")
@pytest.mark.parametrize("case", NIX_CANNOT_BUILD)
def test_nix_engine_says_when_this_machines_nix_cannot_build(case, tmp_path, nix_env):
    """Exit 3, why Nix cannot build, what to do, no traceback, no output."""
    override, reason, todo = NIX_CANNOT_BUILD[case]
    flake = tmp_path / "flake"
    flake.mkdir()
    (flake / "flake.nix").write_text(FLAKE.replace("${./demo.o}", "/dev/null").replace("${./manifest.json}",
                                                                                         "/dev/null"))
    (flake / "demo.tlisp").write_text("; nothing\n")
    env = dict(nix_env)
    # Appended settings win over the tests' own.
    env["NIX_CONFIG"] += override["NIX_CONFIG"].format(tmp=tmp_path)
    out = tmp_path / "out"
    ran = cli("build", str(flake / "demo.tlisp"), "--engine", "nix", "-o", str(out), "--json", env=env)
    assert ran.returncode == 3, ran.stderr
    error = json.loads(ran.stdout)["error"]
    assert error["exit_code"] == 3
    assert "Nix cannot build on this machine" in ran.stderr and reason in ran.stderr, ran.stderr
    assert todo in ran.stderr and "--engine host" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert not out.exists()


def test_source_error_is_exit_1_with_span_and_no_out(tmp_path):
    source = tmp_path / "bad.tlisp"
    source.write_text('(defbpf-program p :kind :xdpp :attach (:target "eth0"))\n')
    ran = cli("build", str(source), "--backend", "c", "-o", str(tmp_path / "out"), "--json")
    assert ran.returncode == 1, ran.stderr
    assert json.loads(ran.stdout)["error"]["exit_code"] == 1
    assert "bad.tlisp:1:" in ran.stderr and "Traceback" not in ran.stderr
    assert not (tmp_path / "out").exists()

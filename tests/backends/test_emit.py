"""The emit stage: crate contents, pins, determinism, atomic writes, and
that no user text reaches generated code."""

from __future__ import annotations

import re
import tomllib

import pytest

from tatara_build import ir
from tatara_build.backends import emit, render
from tatara_build.backends.aya import AYA_EBPF_VERSION
from tatara_build.check import check
from tatara_build.errors import SourceError, TataraError

from .helpers import EXAMPLES, SOURCES, ids, load

DROP_SYN = next(p for p in EXAMPLES if p.stem == "drop-syn")


@pytest.fixture(scope="module")
def crate():
    return render(load(DROP_SYN), "aya")


def test_crate_layout(crate):
    assert sorted(crate) == [".cargo/config.toml", "Cargo.lock", "Cargo.toml", "rust-toolchain.toml", "src/main.rs"]


def test_cargo_toml_pins_aya_exactly_and_release_profile(crate):
    manifest = tomllib.loads(crate["Cargo.toml"])
    assert manifest["package"]["name"] == "drop-syn"
    assert manifest["dependencies"]["aya-ebpf"] == f"={AYA_EBPF_VERSION}"
    assert all(v.startswith("=") for v in manifest["dependencies"].values())
    release = manifest["profile"]["release"]
    assert (release["panic"], release["opt-level"], release["codegen-units"], release["debug"]) == ("abort", 3, 1, 2)


def test_cargo_lock_is_a_closed_pinned_graph(crate):
    lock = tomllib.loads(crate["Cargo.lock"])
    assert lock["version"] == 4
    packages = {p["name"]: p for p in lock["package"]}
    assert len(packages) == len(lock["package"]), "one version per crate"
    root = packages.pop("drop-syn")
    assert "source" not in root and set(root["dependencies"]) >= {"aya-ebpf"}
    for p in packages.values():
        assert p["source"] == "registry+https://github.com/rust-lang/crates.io-index"
        assert re.fullmatch(r"[0-9a-f]{64}", p["checksum"]), p["name"]
    names = set(packages) | {"drop-syn"}
    for p in lock["package"]:
        for dep in p.get("dependencies", []):
            assert dep.split(" ")[0] in names, f"{p['name']} needs {dep}, not pinned"
    # aya-ebpf's build-dependencies are pinned too (aya-build and its closure).
    assert {"aya-build", "rustversion", "cargo_metadata", "proc-macro2", "syn", "quote"} <= set(packages)
    assert packages["aya-ebpf"]["version"] == AYA_EBPF_VERSION


def test_toolchain_and_cargo_config(crate):
    toolchain = tomllib.loads(crate["rust-toolchain.toml"])["toolchain"]
    assert re.fullmatch(r"nightly-\d{4}-\d{2}-\d{2}", toolchain["channel"])
    assert "rust-src" in toolchain["components"]
    config = tomllib.loads(crate[".cargo/config.toml"])
    assert config["build"]["target"] == "bpfel-unknown-none"
    assert config["unstable"]["build-std"] == ["core"]
    assert "link-arg=--btf" in config["target"]["bpfel-unknown-none"]["rustflags"]


def test_main_rs_shape(crate):
    main = crate["src/main.rs"]
    for needle in ("#![no_std]", "#![no_main]", "#[panic_handler]", "#[aya_ebpf::macros::xdp]",
                   "pub fn drop_syn(ctx: aya_ebpf::programs::XdpContext) -> u32",
                   '#[aya_ebpf::macros::btf_map(name = "syn_drops")]', "aya_ebpf::btf_maps::PerCpuArray<u64, 1>",
                   '#[unsafe(link_section = "license")]'):
        assert needle in main, needle
    assert "_i64" not in main and "#[map]" not in main


@pytest.mark.parametrize("kind", ["xdp", "tc", "socket-filter", "kprobe", "tracepoint", "cgroup-skb", "lsm", "perf-event"])
def test_every_program_kind_uses_its_own_attribute_and_context(kind):
    from tatara_build.backends import aya, libbpf

    source = next(p for p in SOURCES if p.stem == f"kind-{kind}")
    spec = aya.PROGRAMS[kind]
    main = render(load(source), "aya")["src/main.rs"]
    c = render(load(source), "c")[f"kind-{kind}.bpf.c"]
    attr = spec.attr.split("(")[0].removeprefix("#[").rstrip("]")
    assert f"#[aya_ebpf::macros::{attr}" in main
    assert f"ctx: aya_ebpf::programs::{spec.ctx}) -> {spec.ret}" in main
    assert f'SEC("{libbpf.PROGRAMS[kind].section.split("/")[0]}' in c


@pytest.mark.parametrize("backend", ["c", "aya"])
@pytest.mark.parametrize("source", SOURCES, ids=ids(SOURCES))
def test_output_is_deterministic(source, backend, tmp_path):
    first = emit(load(source), backend, tmp_path / "a")
    second = emit(load(source), backend, tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()


def test_failure_leaves_no_partial_output(tmp_path):
    module = load(DROP_SYN)
    module.maps[0].name = "Bad Name"  # not an identifier: rejected before anything is written
    out = tmp_path / "out"
    with pytest.raises(SourceError):
        emit(module, "aya", out)
    assert not out.exists() or not any(out.iterdir())


def test_rewrite_replaces_a_previous_crate_atomically(tmp_path):
    emit(load(DROP_SYN), "aya", tmp_path)
    (tmp_path / "src" / "stale.rs").write_text("// left over")
    emit(load(DROP_SYN), "aya", tmp_path)
    assert not (tmp_path / "src" / "stale.rs").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tatara-emit-")]


def test_unknown_backend_is_an_error(tmp_path):
    with pytest.raises(TataraError, match="unknown backend"):
        emit(load(DROP_SYN), "go", tmp_path)


@pytest.mark.parametrize("evil", ['x"); system("', "a b", "Name", "a__b", "1abc"])
def test_hand_built_ir_cannot_inject_identifiers(evil):
    module = load(DROP_SYN)
    module.functions[0].body[0].name = evil
    for backend in ("c", "aya"):
        with pytest.raises(SourceError):
            render(module, backend)


@pytest.mark.parametrize("license_text", ['GPL"; int x = 1; //', "GPL\n", "GPL\\"])
def test_license_text_is_validated(license_text):
    module = load(DROP_SYN)
    module.programs[0].license = license_text
    with pytest.raises(SourceError, match="license"):
        check(module)  # the one rule; a backend handed unchecked text refuses it (an internal error)
    for backend in ("c", "aya"):
        with pytest.raises(AssertionError, match="the checker validates the license"):
            render(module, backend)


def test_attach_target_is_validated():
    module = load(next(p for p in SOURCES if p.stem == "kind-kprobe"))
    module.programs[0].attach = ir.Attach(target='x")]\nfn evil() {}\n#[kprobe(function = "y')
    with pytest.raises(SourceError, match="attach target"):
        check(module)
    for backend in ("c", "aya"):
        with pytest.raises(AssertionError, match="the checker validates attach targets"):
            render(module, backend)

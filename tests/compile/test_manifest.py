"""OUT/manifest.json as users read it: two-space JSON ending in a newline, the schema version,
every field in its place; unknown fields and wrong literals are refused, not written."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tatara_build.compile import manifest


def sample(**overrides) -> manifest.Manifest:
    fields = dict(
        tatara_build_version="0.1.0", source="drop-syn.tlisp", source_sha256="ab" * 32, backend="c", engine="host",
        objects=[manifest.ObjectInfo(file="drop-syn.o", sha256="cd" * 32, size=1234, sections=["xdp", ".maps"],
                                     programs=[manifest.Program(symbol="drop_syn", section="xdp", name="drop-syn",
                                                                kind="xdp")],
                                     maps=["syn_drops"])],
        toolchain=manifest.Toolchain(compiler="clang version 19.1.0", linker="clang", target_cpu="v3", flags=["-O2"]),
    )
    fields.update(overrides)
    return manifest.Manifest(**fields)


def test_manifest_json_is_indented_by_two_and_ends_with_a_newline():
    text = sample().to_json()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    lines = text.splitlines()
    assert lines[0] == "{" and lines[1] == '  "schema_version": 1,'
    assert '    {\n      "file": "drop-syn.o",' in text
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


def test_manifest_round_trips_and_leaves_later_stages_empty():
    data = json.loads(sample().to_json())
    assert data["schema_version"] == manifest.SCHEMA_VERSION == 1
    assert data["verification"] is None and data["nix"] is None and data["crates"] == []
    assert data["objects"][0]["programs"][0] == {"symbol": "drop_syn", "section": "xdp", "name": "drop-syn", "kind": "xdp",
                                                 "attach": None, "direction": None}
    assert data["toolchain"] == {"compiler": "clang version 19.1.0", "compiler_choice": None, "llvm_version": None,
                                 "linker": "clang", "target_cpu": "v3", "cargo": None, "flags": ["-O2"]}
    assert manifest.Manifest.model_validate(data) == sample()


@pytest.mark.parametrize("bad", [{"backend": "rust"}, {"engine": "docker"}, {"schema_version": 2}, {"colour": "red"}])
def test_unknown_fields_and_values_are_refused(bad):
    with pytest.raises(ValidationError):
        sample(**bad)
    with pytest.raises(ValidationError):
        manifest.Program(symbol="x", section="xdp", extra=1)


def test_the_manifest_records_prog_array_slots_for_the_loader(tmp_path):
    import shutil
    from pathlib import Path

    from tatara_build.compile import BuildOptions
    from tatara_build.pipeline import build

    if shutil.which("clang") is None:
        pytest.skip("needs clang")
    source = Path(__file__).resolve().parents[2] / "examples" / "tail-dispatch.tlisp"
    manifest = build(source, tmp_path / "out", BuildOptions(backend="c", use_cache=False))
    slots = [(s.map, s.index, s.program) for s in manifest.objects[0].slots]
    assert slots == [("handlers", 0, "handle_ipv4"), ("handlers", 1, "handle_ipv6")]
    assert {p.symbol for p in manifest.objects[0].programs} >= {"handle_ipv4", "handle_ipv6"}


STRUCTS_SOURCE = """\
(defbpf-struct flow-key (src-ip u32) (dst-port u16) (proto u8))
(defbpf-struct flow (packets u64) (last-seen u64) (key flow-key))
(defbpf-map flow-table :kind :lru-hash :key flow-key :value flow :max-entries 64)
(defbpf-map drops :kind :array :key u32 :value u64 :max-entries 1)
(defbpf-program p :kind :xdp :attach (:target "eth0") :uses-maps (flow-table drops))
(bpf-fn p (ctx) (return :xdp-pass))
"""


def test_struct_layouts_and_map_types_give_each_tatara_name_its_c_name():
    """A loader decodes map values by these records: hyphens become underscores in the BTF
    names (struct and member alike) while the tatara names stay as written, and each offset,
    size and alignment is C's."""
    from tatara_build.check import check
    from tatara_build.frontend import parse

    module = check(parse(STRUCTS_SOURCE, "t.tlisp"))
    layouts = [lay.model_dump() for lay in manifest.struct_layouts(module)]
    assert layouts == [
        {"name": "flow-key", "btf_name": "flow_key", "size": 8, "align": 4, "fields": [
            {"name": "src-ip", "btf_name": "src_ip", "type": "u32", "offset": 0, "size": 4},
            {"name": "dst-port", "btf_name": "dst_port", "type": "u16", "offset": 4, "size": 2},
            {"name": "proto", "btf_name": "proto", "type": "u8", "offset": 6, "size": 1}]},
        {"name": "flow", "btf_name": "flow", "size": 24, "align": 8, "fields": [
            {"name": "packets", "btf_name": "packets", "type": "u64", "offset": 0, "size": 8},
            {"name": "last-seen", "btf_name": "last_seen", "type": "u64", "offset": 8, "size": 8},
            {"name": "key", "btf_name": "key", "type": "struct:flow-key", "offset": 16, "size": 8}]},
    ]
    assert [m.model_dump() for m in manifest.map_types(module)] == [
        {"name": "flow-table", "symbol": "flow_table", "kind": "lru-hash", "key": "struct:flow-key",
         "value": "struct:flow"},
        {"name": "drops", "symbol": "drops", "kind": "array", "key": "u32", "value": "u64"},
    ]

"""What `emit` leaves on disk: the file names users get, other files in OUT untouched, a
previous output replaced whole, and no staging directory after success or failure."""

from __future__ import annotations

import pytest

from tatara_build import backends
from tatara_build.backends import emit, render

from .helpers import EXAMPLES, load

DROP_SYN = next(p for p in EXAMPLES if p.stem == "drop-syn")


def staging_dirs(out):
    return [p for p in out.rglob("*") if p.name.startswith(".tatara-emit-")]


@pytest.mark.parametrize("file, stem", [("drop-syn.tlisp", "drop-syn"), ("dir/a.b.tlisp", "a.b"), ("x", "x"),
                                        ("/abs/prog.lisp", "prog"), ("tlisp.tlisp", "tlisp")])
def test_the_c_file_is_named_after_the_source_stem(file, stem):
    module = load(DROP_SYN)
    module.file = file
    assert list(render(module, "c")) == [f"{stem}.bpf.c"]


def test_c_emit_refuses_a_directory_holding_files_it_did_not_write(tmp_path):
    from tatara_build.errors import UsageError

    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "drop-syn.bpf.c").write_text("my own, hand-written")
    with pytest.raises(UsageError, match="refusing to replace"):
        emit(load(DROP_SYN), "c", tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "drop-syn.bpf.c").read_text() == "my own, hand-written"
    assert staging_dirs(tmp_path) == [] and sorted(p.name for p in tmp_path.parent.glob(f".{tmp_path.name}.*")) == []


def test_c_emit_writes_one_file_and_replaces_its_own_earlier_output(tmp_path):
    out = tmp_path / "gen"
    emit(load(DROP_SYN), "c", out)
    written = emit(load(DROP_SYN), "c", out)
    assert written == [out / "drop-syn.bpf.c"]
    assert written[0].read_text() == render(load(DROP_SYN), "c")["drop-syn.bpf.c"]
    assert sorted(p.name for p in out.iterdir()) == [".tatara-emit.json", "drop-syn.bpf.c"]
    assert staging_dirs(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["gen"]


def test_aya_emit_returns_every_file_sorted_and_creates_missing_parents(tmp_path):
    out = tmp_path / "deep" / "er"
    written = emit(load(DROP_SYN), "aya", out)
    expected = sorted(render(load(DROP_SYN), "aya"))
    assert [p.relative_to(out).as_posix() for p in written] == expected
    assert all(p.is_file() for p in written)
    assert staging_dirs(out) == []


def test_a_write_that_fails_midway_leaves_no_staging_dir_and_the_old_output(tmp_path, monkeypatch):
    emit(load(DROP_SYN), "c", tmp_path)
    before = (tmp_path / "drop-syn.bpf.c").read_text()
    # a file and a directory of the same name: the second write fails after the first succeeded
    monkeypatch.setattr(backends, "render", lambda module, backend: {"drop-syn.bpf.c": "new", "drop-syn.bpf.c/x": "y"})
    with pytest.raises(OSError):
        emit(load(DROP_SYN), "c", tmp_path)
    assert (tmp_path / "drop-syn.bpf.c").read_text() == before
    assert staging_dirs(tmp_path) == []


def licensed(*licenses: str) -> str:
    return "".join(f'(defbpf-program p{i} :kind :xdp :attach (:target "lo") :license "{text}")\n'
                   f"(bpf-fn p{i} (c) (return :xdp-pass))\n" for i, text in enumerate(licenses))


@pytest.mark.parametrize("backend", ["c", "aya"])
def test_one_object_has_one_license_and_the_error_points_at_the_program_that_differs(backend):
    """The checker holds the rule (issue 14: the only validator of user text);
    the backends assert it."""
    from tatara_build.check import check
    from tatara_build.errors import SourceError
    from tatara_build.frontend import parse

    with pytest.raises(SourceError) as err:
        check(parse(licensed("GPL", "GPL", "Dual MIT/GPL"), "t.tlisp"))
    (d,) = err.value.diagnostics
    assert d.message == ("all programs of one file share one object and so one license: `p2` has 'Dual MIT/GPL', "
                         "`p0` has 'GPL'")
    assert d.span.line == 5
    text = "".join(render(check(parse(licensed("Dual MIT/GPL", "Dual MIT/GPL"), "t.tlisp")), backend).values())
    assert "Dual MIT/GPL" in text and text.count('"GPL"') == 0


@pytest.mark.parametrize("backend", ["c", "aya"])
@pytest.mark.parametrize("text, ok", [("G" * 64, True), ("G" * 65, False), ("GPL v2+/BSD-3.0", True), ("GPL (v2)", False)])
def test_license_text_in_the_object_is_at_most_64_plain_characters(backend, text, ok):
    from tatara_build.check import check
    from tatara_build.errors import SourceError
    from tatara_build.frontend import parse

    if ok:
        assert text in "".join(render(check(parse(licensed(text), "t.tlisp")), backend).values())
    else:
        with pytest.raises(SourceError) as err:
            check(parse(licensed(text), "t.tlisp"))
        assert err.value.diagnostics[0].message == (
            f"license `{text}` must be 1 to 64 characters among letters, digits, space and . / + -")


@pytest.mark.parametrize("target, ok", [("do_sys_open", True), ("do_sys:open", False), ("../x", False),
                                        ("a..b", False), ("tcp_v4_connect.isra.0", True)])
def test_an_attach_target_that_names_the_section_is_checked_before_emit(target, ok):
    from tatara_build.check import check
    from tatara_build.errors import SourceError
    from tatara_build.frontend import parse

    source = (f'(defbpf-program k :kind :kprobe :attach (:target "{target}") :license "GPL")\n'
              "(bpf-fn k (c) (return :ok))\n")
    if ok:
        assert f'SEC("kprobe/{target}")' in "".join(render(check(parse(source, "t.tlisp")), "c").values())
    else:
        with pytest.raises(SourceError) as err:
            check(parse(source, "t.tlisp"))
        (d,) = err.value.diagnostics
        assert d.message.startswith(f"kprobe attach target {target!r} is not a kernel function name")
        assert d.span.line == 1

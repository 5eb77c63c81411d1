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


def test_c_emit_writes_one_file_and_leaves_other_files_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "drop-syn.bpf.c").write_text("stale")
    written = emit(load(DROP_SYN), "c", tmp_path)
    assert written == [tmp_path / "drop-syn.bpf.c"]
    assert written[0].read_text() == render(load(DROP_SYN), "c")["drop-syn.bpf.c"]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert staging_dirs(tmp_path) == []


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

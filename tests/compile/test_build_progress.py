"""Progress modes and the atomic OUT replacement."""

from __future__ import annotations

import io

import pytest

from tatara_build.compile import staging
from tatara_build.compile.progress import Progress, Quiet, make_progress


def test_plain_lines_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    progress = make_progress()
    assert type(progress) is Progress
    progress.stream = io.StringIO()
    with progress.stage("compile", "drop-syn"):
        pass
    lines = progress.stream.getvalue().splitlines()
    assert lines[0] == "tatara-build: compile drop-syn ..."
    assert lines[1].startswith("tatara-build: compile done (")


def test_json_mode_is_quiet(capsys):
    progress = make_progress(json_mode=True)
    assert isinstance(progress, Quiet)
    with progress.stage("emit"):
        progress.note("hello")
    assert capsys.readouterr() == ("", "")


def test_staging_replaces_out_whole(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.o").write_text("old")  # an earlier build output: its manifest lists it
    (out / "manifest.json").write_text('{"tatara_build_version": "0", "objects": [{"file": "stale.o"}]}')
    with staging(out) as tmp:
        (tmp / "new.o").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.o"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp or old dirs left


def test_staging_failure_leaves_out_untouched(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with staging(out) as tmp:
            (tmp / "half.o").write_text("partial")
            raise RuntimeError("compile failed")
    assert not out.exists() and list(tmp_path.iterdir()) == []

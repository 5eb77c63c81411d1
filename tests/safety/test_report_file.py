"""--junit FILE follows the OUT ownership rule for a single file
(outdir.check_file / write_file): written only when absent, empty or an
earlier report of ours; never through a link, over a directory, a device,
a FIFO or someone else's file; atomically, with no temp file left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tatara_build import junit, outdir
from tatara_build.errors import ToolchainError, UsageError

OURS = outdir.XML_DECLARATION + b'<testsuites name="tatara-build verify" tests="0"/>\n'


def _write(path) -> bytes:
    junit.write(path, {}, "tatara-build verify")
    return path.read_bytes()


def test_absent_empty_and_our_own_report_are_written(tmp_path):
    absent = tmp_path / "sub" / "j.xml"
    assert _write(absent).startswith(outdir.XML_DECLARATION + b'<testsuites name="tatara-build verify"')
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    assert b"<testsuites" in _write(empty)
    own = tmp_path / "own.xml"
    own.write_bytes(OURS.replace(b'tests="0"', b'tests="9"'))
    assert b'tests="9"' not in _write(own)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.xml", "own.xml", "sub"]  # no temp file left


@pytest.mark.parametrize("make, why", [
    (lambda p: p.write_text("my notes\n"), "not an earlier tatara-build JUnit report"),
    (lambda p: p.write_bytes(b'<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest"/>'),
     "not an earlier tatara-build JUnit report"),
    (lambda p: p.mkdir(), "it is a directory"),
    (lambda p: os.mkfifo(p), "not a regular file"),
    (lambda p: p.symlink_to(p.parent / "elsewhere.xml"), "symbolic link"),
])
def test_anything_else_is_refused_untouched(tmp_path, make, why):
    (tmp_path / "elsewhere.xml").write_bytes(OURS)  # even a link to a report of ours is not followed
    target = tmp_path / "j.xml"
    make(target)
    before = os.lstat(target)
    with pytest.raises(UsageError) as caught:
        junit.check(target)
    assert why in caught.value.render() and str(target) in caught.value.render()
    with pytest.raises(UsageError):
        _write(target)
    after = os.lstat(target)
    assert (before.st_ino, before.st_mtime_ns, before.st_mode) == (after.st_ino, after.st_mtime_ns, after.st_mode)
    assert (tmp_path / "elsewhere.xml").read_bytes() == OURS


def test_an_empty_path_is_a_usage_error():
    with pytest.raises(UsageError, match="--junit is empty"):
        junit.check("")


def test_an_unwritable_place_is_exit_3_and_a_path_below_a_file_is_exit_2(tmp_path):
    with pytest.raises(ToolchainError, match="cannot write --junit /proc/tatara-no-such/j.xml"):
        _write(Path("/proc/tatara-no-such/j.xml"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        _write(blocker / "j.xml")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_our_report_inside_an_output_directory_keeps_it_ours(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text('{"tatara_build_version": "0", "objects": []}')
    (out / "junit.xml").write_bytes(OURS)
    assert outdir.check(out, outdir.BUILD) == out
    (out / "junit.xml").write_text("someone's notes")
    with pytest.raises(UsageError, match="junit.xml"):
        outdir.check(out, outdir.BUILD)
    (out / "junit.xml").write_text("")  # an empty file in OUT is still not ours to delete
    with pytest.raises(UsageError, match="junit.xml"):
        outdir.check(out, outdir.BUILD)

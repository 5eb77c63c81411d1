"""Generated sources are accepted by their compilers' front ends: every C
file compiles with clang -Wall -Werror for BPF, every main.rs is rustfmt
clean. (Building the aya crates needs aya's sources: see test_aya_build.)"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tatara_build.backends import emit

from .helpers import CLANG_FLAGS, SOURCES, ids, load, rustfmt


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed")
@pytest.mark.parametrize("source", SOURCES, ids=ids(SOURCES))
def test_c_compiles_without_warnings(source, tmp_path):
    [c_file] = emit(load(source), "c", tmp_path)
    obj = tmp_path / f"{source.stem}.o"
    done = subprocess.run(["clang", *CLANG_FLAGS, str(c_file), "-o", str(obj)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert obj.stat().st_size > 0


@pytest.mark.parametrize("source", SOURCES, ids=ids(SOURCES))
def test_aya_main_is_rustfmt_clean(source, tmp_path):
    exe = rustfmt()
    if exe is None:
        pytest.skip("rustfmt not available")
    emit(load(source), "aya", tmp_path)
    done = subprocess.run([exe, "--edition", "2024", "--check", str(tmp_path / "src" / "main.rs")],
                          capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stdout + done.stderr

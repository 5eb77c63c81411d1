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


PERF_RECORD = """(defbpf-struct rec (pid u64) (comm (array u8 16)) (pad (array u8 472)))
(defbpf-map out :kind :perf-event-array :value rec :max-entries 64)
(defbpf-map cnt :kind :hash :key u64 :value u64 :max-entries 64)
(defbpf-program p :kind :tracepoint :attach (:target "syscalls/sys_enter_openat") :license "GPL" :uses-maps (out cnt))
(bpf-fn p (ctx) (let ((pid (call get-current-pid-tgid))) (map-add cnt pid 1)
  (event-output out (make rec :pid pid :comm (current-comm))) (return :ok)))
"""


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed")
def test_a_perf_record_near_the_stack_limit_is_built_once_and_compiles(tmp_path):
    """A 496-byte perf-event-array record passes `check`; the C copied the
    `make` into a second struct for the helper, 992 bytes, and clang refused
    the 512-byte stack (exit 3 from `build`). The helper reads the make's own."""
    source = tmp_path / "perf.tlisp"
    source.write_text(PERF_RECORD)
    [c_file] = emit(load(source), "c", tmp_path / "c")
    assert c_file.read_text().count("struct rec __t") == 1
    done = subprocess.run(["clang", *CLANG_FLAGS, str(c_file), "-o", str(tmp_path / "p.o")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rust = (emit(load(source), "aya", tmp_path / "aya"), (tmp_path / "aya" / "src" / "main.rs").read_text())[1]
    assert "OUT.output(&ctx, &__t1, 0);" in rust

"""Names that pass `check` never break the generated code. The reserved set
is derived (scripts/reserved-names.py) from the headers the generated C
includes and from clang's library builtins; this test re-derives it, and
compiles every candidate name the derivation looked at: a name `check`
accepts must compile as a map, a program and a variable, and a name that
does not compile must be one `check` rejects."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

from tatara_build import tables
from tatara_build.backends import render
from tatara_build.compile.clang import multiarch_include
from tatara_build.frontend.names import GENERATED_ITEMS, ident_problem
from tatara_build.frontend.reserved_c import C_LIBRARY, C_MACROS, C_RESERVED, C_STRUCT_TAGS

from .helpers import checked, problems

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("reserved_names", REPO / "scripts" / "reserved-names.py")
derivation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(derivation)

needs_clang = pytest.mark.skipif(not shutil.which("clang") or not Path("/usr/include/bpf/bpf_helpers.h").exists(),
                                 reason="clang and libbpf-dev are needed")


def program(map_name: str = "hits", prog: str = "pass", var: str = "n", ctx: str = "ctx") -> str:
    return f"""(defbpf-map {map_name} :kind :array :key u32 :value u64 :max-entries 1)
(defbpf-program {prog} :kind :xdp :attach (:target "eth0") :license "GPL" :uses-maps ({map_name}))
(bpf-fn {prog} ({ctx}) (let (({var} (u64 1))) (map-add {map_name} 0 {var})) (return :xdp-pass))
"""


@needs_clang
def test_the_committed_reserved_names_are_what_the_headers_and_clang_give():
    assert derivation.module_text(derivation.derive()) == (
        REPO / "tatara_build" / "frontend" / "reserved_c.py").read_text(), \
        "regenerate: .venv/bin/python scripts/reserved-names.py > tatara_build/frontend/reserved_c.py"


@pytest.mark.parametrize("name", sorted(C_RESERVED | GENERATED_ITEMS))
def test_every_reserved_name_is_rejected_by_check_as_a_global(name):
    for text in (program(map_name=name), program(prog=name)):
        assert any(f"`{name}` is reserved" in message for message, _, _ in problems(text)), text


@pytest.mark.parametrize("name", sorted(C_MACROS))
def test_a_header_macro_is_rejected_as_a_local_too(name):
    """A macro expands wherever its name occurs, so no role may use it."""
    for text in (program(var=name), program(ctx=name)):
        assert any(f"`{name}` is reserved" in message for message, _, _ in problems(text)), text


@pytest.mark.parametrize("name", ["index", "log", "free", "abs", "exit", "printf", "panic", "license"])
def test_a_library_builtin_or_crate_item_is_a_valid_local_name(name):
    """Only a global clashes with clang's builtins or the crate's items; a
    local shadows them (issue 12: `index`, `log` were refused everywhere)."""
    assert problems(program(var=name)) == []
    assert problems(program(ctx=name)) == []
    text = f"""(defbpf-program p :kind :xdp :attach (:target "eth0") :license "GPL")
(bpf-fn p (ctx) (loop ({name} 0 4) (if (= {name} (u32 9)) (break))) (let (({name} (u32 1))) (set! {name} (+ {name} (u32 1)))
  (if-let (ip (header ctx :ipv4)) (return :xdp-pass) (return :xdp-pass))))
"""
    assert problems(text) == []
    module = checked(text)
    rust = render(module, "aya")["src/main.rs"]
    assert f"let {name}: u32" in rust or f"let mut {name}: u32" in rust
    (c_text,) = render(module, "c").values()
    assert f"__u32 {name} = " in c_text


@pytest.mark.parametrize("name", ["trunc", "index", "log", "panic", "license"])
def test_tests_cases_and_policies_may_take_a_library_builtin_name(name):
    """Test, case and policy names never reach the generated code, so a C
    builtin's name (a DNS test's case `trunc`) is no clash: `check` once
    refused it saying a map, program or function may not redefine it."""
    text = program() + f"""(defbpf-policy {name} :programs (pass) :maps (hits))
(defbpf-test {name} :program pass :cases (({name} :packet ((eth) (ipv4)) :expect :xdp-pass)))
"""
    assert problems(text) == []


def test_reserved_messages_say_why_and_whether_a_local_may_use_it():
    message = problems(program(map_name="index"))[0][0]
    assert "`index` is reserved" in message and "C library builtin" in message and "local variable may" in message
    message = problems(program(var="tc-gen"))[0][0]
    assert "`tc-gen` is reserved" in message and "macro `tc_gen`" in message
    message = problems(program(prog="panic"))[0][0]
    assert "generated Rust crate" in message
    message = problems(program(var="while"))[0][0]
    assert "`while` is reserved" in message


def _compile(c_source: str, tmp_path: Path) -> subprocess.CompletedProcess:
    src = tmp_path / "names.bpf.c"
    src.write_text(c_source)
    return subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-ferror-limit=0",
                           *multiarch_include(), "-c", str(src), "-o", str(tmp_path / "names.o")],
                          capture_output=True, text=True)


@needs_clang
def test_every_candidate_name_check_accepts_compiles_in_every_role(tmp_path):
    """All candidates the derivation considered (the headers' lowercase
    macros, every libc function, the Rust items): those `check` accepts go
    into one module as maps, programs and variables; clang must take it."""
    candidates = {n.replace("_", "-") for n in derivation.header_macros() | derivation.libc_candidates()}
    candidates |= GENERATED_ITEMS | {"ctx", "data", "data-end", "license-text", "main2", "tc-gen2", "xdp-md"}
    accepted = sorted(n for n in candidates if ident_problem(n) is None)
    locals_ = sorted(n for n in candidates if ident_problem(n, local=True) is None)
    assert {"index", "log", "free", "abs"} <= set(locals_) and not set(C_MACROS) & set(locals_)
    assert len(accepted) > 50, "the candidate set is too small to say anything"
    as_maps = [f"(defbpf-map {name} :kind :array :key u32 :value u64 :max-entries 1)" for name in accepted]
    as_maps += ['(defbpf-program p :kind :xdp :attach (:target "eth0") :license "GPL" :uses-maps '
                f"({' '.join(accepted)}))",
                "(bpf-fn p (c) " + " ".join(f"(map-add {name} 0 (u64 1))" for name in accepted) + " (return :xdp-pass))"]
    as_programs = [line for i, name in enumerate(accepted) for line in (
        f'(defbpf-program {name} :kind :xdp :attach (:target "eth0") :license "GPL")',
        f"(bpf-fn {name} (c) (if (= (u32 {i}) (u32 0)) (return :xdp-drop) (return :xdp-pass)))")]
    as_variables = ['(defbpf-map hits :kind :array :key u32 :value u64 :max-entries 1)',
                    '(defbpf-program p :kind :xdp :attach (:target "eth0") :license "GPL" :uses-maps (hits))',
                    "(bpf-fn p (c) " + " ".join(f"(let (({name} (u64 1))) (map-add hits 0 {name}))" for name in locals_)
                    + " (return :xdp-pass))"]
    for role, lines in (("maps", as_maps), ("programs", as_programs), ("variables", as_variables)):
        module = checked("\n".join(lines) + "\n")
        (c_text,) = render(module, "c").values()
        ran = _compile(c_text, tmp_path)
        assert ran.returncode == 0, f"as {role}: " + ran.stderr[-3000:]


def test_a_let_named_like_the_context_never_takes_its_spelling():
    """`ctx` in the generated code is always the program's context."""
    module = checked(program(ctx="c", var="ctx"))
    (c_text,) = render(module, "c").values()
    assert " ctx = " not in c_text and "__u64 ctx__2 = " in c_text
    rust = render(module, "aya")["src/main.rs"]
    assert "let ctx:" not in rust and "let ctx__2: u64" in rust


def test_names_longer_than_the_loader_takes_are_rejected_at_check():
    longest = "a" * tables.MAX_NAME_LENGTH
    assert problems(program(map_name=longest)) == []
    for role in ("map_name", "prog", "var"):
        messages = [m for m, _, _ in problems(program(**{role: longest + "b"}))]
        assert any("characters long" in m for m in messages), (role, messages)


def struct_program(name: str) -> str:
    return f"""(defbpf-struct {name} (a u32) (b u8))
(defbpf-map m :kind :hash :key {name} :value {name} :max-entries 4)
(defbpf-program p :kind :kprobe :attach (:target "tcp_v4_connect") :license "GPL" :uses-maps (m))
(bpf-fn p (regs) (map-set m (make {name} :a 1) (make {name} :b 2)) (return 0))
"""


@pytest.mark.parametrize("name", sorted(C_STRUCT_TAGS))
def test_every_header_struct_tag_is_rejected_as_a_struct_name(name):
    assert any(f"struct name `{name}` is reserved" in m for m, _, _ in problems(struct_program(name)))


@needs_clang
def test_struct_names_the_headers_only_declare_compile(tmp_path):
    """Tags the headers use only behind pointers (`struct file *` in helper
    prototypes) may be defined by a program: C completes the declaration."""
    for name in ("file", "socket", "inode", "path", "task-struct", "sockaddr", "cgroup", "iphdr", "tcphdr"):
        [(_, text)] = render(checked(struct_program(name)), "c").items()
        c_file = tmp_path / f"{name}.bpf.c"
        c_file.write_text(text)
        done = subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-Wall", "-Werror", *multiarch_include(), "-c",
                               str(c_file), "-o", str(tmp_path / f"{name}.o")], capture_output=True, text=True)
        assert done.returncode == 0, (name, done.stderr[-2000:])

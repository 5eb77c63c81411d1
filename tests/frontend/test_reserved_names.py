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
from tatara_build.frontend.reserved_c import C_RESERVED

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
def test_every_reserved_name_is_rejected_by_check_in_every_role(name):
    for text in (program(map_name=name), program(prog=name), program(var=name)):
        assert any(f"`{name}` is reserved" in message for message, _, _ in problems(text)), text


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
                    "(bpf-fn p (c) " + " ".join(f"(let (({name} (u64 1))) (map-add hits 0 {name}))" for name in accepted)
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

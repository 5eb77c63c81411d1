"""`#t` and `#f` reach the generated code as true and false in both
dialects (a mutation sample found that no test told them apart in C)."""

from __future__ import annotations

from tatara_build.backends import render
from tatara_build.check import check
from tatara_build.frontend import parse

TEXT = """(defbpf-program p :kind :xdp :attach (:target "eth0") :license "GPL")
(bpf-fn p (ctx) (let ((yes #t) (no #f)) (if (and yes (not no)) (return :xdp-pass) (return :xdp-drop))))
"""


def test_true_and_false_are_spelled_apart_in_c_and_rust():
    module = check(parse(TEXT, "b.tlisp"))
    (c_text,) = render(module, "c").values()
    c_lines = [line.split("/*")[0].strip() for line in c_text.splitlines()]
    assert any(line.endswith("yes = 1;") for line in c_lines), c_text
    assert any(line.endswith("no = 0;") for line in c_lines), c_text
    rust = render(module, "aya")["src/main.rs"]
    rust_lines = [line.split("//")[0].strip() for line in rust.splitlines()]
    assert any(line.startswith("let yes") and line.endswith("= true;") for line in rust_lines), rust
    assert any(line.startswith("let no") and line.endswith("= false;") for line in rust_lines), rust

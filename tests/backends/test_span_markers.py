"""Span markers: the C backend ends the first line each form produced with
`/* file.tlisp:L:C */`, so a verifier rejection (BTF line info carries the
whole source line) can name the form; the VM's source map reads them."""

from __future__ import annotations

import re

from tatara_build.backends import render
from tatara_build.vm import sourcemap

from .helpers import EXAMPLES, load

DROP_SYN = next(p for p in EXAMPLES if p.stem == "drop-syn")
MARKER = re.compile(r" /\* (\S+) \*/$")


def c_lines(module) -> list[str]:
    (text,) = render(module, "c").values()
    return text.splitlines()


def test_each_statement_form_marks_its_first_line_with_its_span():
    module = load(DROP_SYN)
    source = DROP_SYN.read_text().splitlines()
    marked = [(line, MARKER.search(line)[1]) for line in c_lines(module) if MARKER.search(line)]
    by_text = {code.strip().split(" /*")[0]: span for code, span in marked}
    assert by_text["return XDP_DROP;"].startswith("drop-syn.tlisp:")
    for span in by_text.values():
        name, line, col = span.split(":")
        assert name == DROP_SYN.name
        assert source[int(line) - 1][int(col) - 1] == "("  # every marker points at a form
    drop_line = int(by_text["return XDP_DROP;"].split(":")[1])
    assert "(return :xdp-drop)" in source[drop_line - 1]


def test_a_file_name_that_is_not_plain_is_left_out(tmp_path):
    odd = tmp_path / "drop syn;*.tlisp"
    odd.write_text(DROP_SYN.read_text())
    lines = c_lines(load(odd))
    spans = [MARKER.search(line)[1] for line in lines if MARKER.search(line)]
    assert spans and all(re.fullmatch(r"\d+:\d+", s) for s in spans)
    assert not any("syn;" in line for line in lines)


def test_markers_are_deterministic():
    assert c_lines(load(DROP_SYN)) == c_lines(load(DROP_SYN))


def test_source_map_prefers_the_marker_on_the_failing_line(tmp_path):
    log = "0: (85) call\n; return (int)v; /* x.tlisp:7:5 */ @ x.bpf.c:16\n2: (95) exit\n"
    where = sourcemap.failing_line(log)
    assert sourcemap.tlisp_span([], *where) == "x.tlisp:7:5"
    src = tmp_path / "x.tlisp"
    src.write_text("\n" * 6 + "    (return v)))\n")
    assert sourcemap.source_line("x.tlisp:7:5", src) == "    (return v)))"
    assert sourcemap.with_file("7:5", src) == "x.tlisp:7:5"


def test_source_map_does_not_cross_into_another_function(tmp_path):
    generated = tmp_path / "g.bpf.c"
    generated.write_text("int a(void)\n{\n    return 1; /* 3:5 */\n}\n\nint b(void)\n{\n    int q = 2;\n}\n")
    assert sourcemap.tlisp_span([generated], "int q = 2;", 8) is None
    assert sourcemap.tlisp_span([generated], "}", 4) == "3:5"


def test_rust_markers_and_glue_lines_fall_back_to_the_last_marked_line():
    log = ("; let v: i32 = (__t1 & 7u32) as i32; // r.tlisp:6:3 @ main.rs:11\n1: (54) w0 &= 7\n"
           "; #[aya_ebpf::macros::cgroup_skb(ingress)] @ main.rs:7\n2: (95) exit\n")
    text, line = sourcemap.failing_line(log)
    assert sourcemap.tlisp_span([], text, line) is None
    assert sourcemap.last_span_in_log(log) == "r.tlisp:6:3"
    assert sourcemap.last_span_in_log("; int x = 1;\n") is None


def test_aya_markers_never_follow_an_opening_brace():
    (text,) = [t for path, t in render(load(DROP_SYN), "aya").items() if path.endswith("main.rs")]
    marked = [line for line in text.splitlines() if re.search(r"// \S+\.tlisp:\d+:\d+$", line)]
    assert marked and not any(line.split(" //")[0].rstrip().endswith(("{", "}")) for line in marked)

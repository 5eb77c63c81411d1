"""The `check` and `ir` commands end to end: one test per error kind,
asserting the rendered `file:line:col: error: message`, the source line with
a caret under the offending text, and the exit code."""

import json

import pytest
from typer.testing import CliRunner

from tatara_build.cli import app

from .helpers import position, program

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def write(tmp_path, text, name="t.tlisp"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_check_ok_prints_one_line_per_file(tmp_path):
    a = write(tmp_path, program("(return :xdp-pass)"), "a.tlisp")
    b = write(tmp_path, program("(return :xdp-drop)"), "b.tlisp")
    result = run("check", str(a), str(b))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"OK {a}: 1 program(s), 3 map(s)")


def test_check_reports_every_file_and_fails_if_any_fails(tmp_path):
    good = write(tmp_path, program("(return :xdp-pass)"), "good.tlisp")
    bad = write(tmp_path, "(", "bad.tlisp")
    result = run("check", str(bad), str(good))
    assert result.exit_code == 1
    assert f"OK {good}" in result.stdout and f"FAILED {bad}: 1 error" in result.stderr


def test_ir_json(tmp_path):
    path = write(tmp_path, program("(return :xdp-pass)"))
    result = run("ir", str(path), "--json", "--no-spans")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["functions"][0]["body"] == [{"form": "return", "action": "xdp-pass", "type": "never"}]
    assert "span" not in result.stdout
    with_spans = json.loads(run("ir", str(path), "--json").stdout)
    assert with_spans["functions"][0]["body"][0]["span"]["line"] == 6


def test_ir_of_a_bad_file_is_an_error(tmp_path):
    path = write(tmp_path, program("(return :nope)"))
    result = run("ir", str(path), "--json")
    assert result.exit_code == 1 and "unknown return action" in result.stderr
    # `ir` prints JSON only: its failure is one JSON document too
    error = json.loads(result.stdout)["error"]
    assert error["exit_code"] == 1 and error["diagnostics"][0]["span"]["line"] == 6


def test_non_utf8_file_points_at_the_byte(tmp_path):
    path = tmp_path / "t.tlisp"
    path.write_bytes("(bpf-fn p (c)\n  ; é\n  (return :\xff))".encode("utf-8").replace(b"\xc3\xbf", b"\xff"))
    result = run("check", str(path))
    assert result.exit_code == 1
    assert f"{path}:3:12: error: not UTF-8 text: byte 0xff" in result.stderr


def test_missing_file_is_a_usage_error(tmp_path):
    assert run("check", str(tmp_path / "absent.tlisp")).exit_code == 2


ERROR_KINDS = [
    # (name, source, message, snippet at the reported line:col)
    ("unclosed-paren", "(defbpf-map m\n  :kind :hash", "unclosed `(`", "(defbpf-map"),
    ("stray-paren", "(bpf-fn p (c) (return :ok)))\n", "unexpected `)`", ")\n"),
    ("bad-escape", '(defbpf-policy x :description "a\\qb")', "unknown escape `\\q`", "\\q"),
    ("unterminated-string", '(defbpf-policy x :description "abc\n)', "unterminated string", '"abc'),
    ("int-out-of-range", "(bpf-fn p (c) (return (u64 18446744073709551616)))", "out of range", "18446744073709551616"),
    ("unknown-top-level", "(defbpf-mapp m)", "unknown top-level form `defbpf-mapp`", "defbpf-mapp"),
    ("unknown-body-form", program("(retrun :xdp-pass)"), "unknown form `retrun`", "retrun"),
    ("bad-identifier", program("(let ((Big (u32 1))) (return :xdp-pass))"), "invalid name `Big`", "Big"),
    ("type-mismatch", program("(map-set counts (u32 0) (u8 1)) (return :xdp-pass)"), "expected u64, found u8", "(u8 1)"),
    ("literal-range", program("(return (u8 256))"), "256 does not fit in u8", "256"),
    ("cannot-infer", program("(let ((x 1)) (return :xdp-pass))"), "cannot infer the integer type of 1", "1))"),
    ("unknown-action", program("(return :tc-act-ok)"), "unknown return action `:tc-act-ok`", "(return :tc"),
    ("unknown-map", program("(map-add hits (u32 0) (u64 1)) (return :xdp-pass)"), "unknown map `hits`", "(map-add"),
    ("map-op", program("(map-delete arr (u32 0)) (return :xdp-pass)"), "not supported on array map", "(map-delete"),
    ("helper-kind", program("(call get-current-uid-gid) (return :xdp-pass)"), "not available to xdp", "(call"),
    ("no-return", program("(map-add arr (u32 0) (u64 1))"), "can reach its end without returning", "(map-add"),
    ("break-outside-loop", program("(break)"), "(break) outside of a loop", "(break)"),
    ("packet-kind", program("(if-let (t (header ctx :tcp)) (return :ok)) (return :ok)", ":kprobe", "vfs_read"), "packet access", "(header"),
]


@pytest.mark.parametrize("name, text, message, snippet", ERROR_KINDS, ids=[e[0] for e in ERROR_KINDS])
def test_error_kinds_render_with_caret(tmp_path, name, text, message, snippet):
    path = write(tmp_path, text)
    result = run("check", str(path))
    assert result.exit_code == 1
    line, col = position(text, snippet)
    lines = result.stderr.splitlines()
    header = [i for i, ln in enumerate(lines) if ln.startswith(f"{path}:{line}:{col}: error: ") and message in ln]
    assert header, result.stderr
    source_line, caret = lines[header[0] + 1], lines[header[0] + 2]
    assert source_line.endswith(text.splitlines()[line - 1])
    gutter = len(source_line) - len(text.splitlines()[line - 1])
    assert caret.index("^") == gutter + col - 1
    assert "Traceback" not in result.stderr


def test_caret_lines_up_under_a_tab():
    from tatara_build.errors import Diagnostic, Span

    span = Span(file="x.tlisp", line=1, col=8, end_line=1, end_col=14)
    _, source, caret = Diagnostic("unknown map kind", span).render("\t:kind :bogus").splitlines()
    assert caret.index("^") == source.index(":bogus")
    assert caret.strip(" ").startswith("\t")

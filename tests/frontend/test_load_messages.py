"""What a user sees when a source cannot be read or a form is malformed:
the exact message, its file:line:col and the caret (issue 20: tests that
pin behaviour, written against survivors of a mutation sample)."""

from __future__ import annotations

import hashlib
import json
import os
import signal

import pytest

from tatara_build import tables
from tatara_build.errors import SourceError, UsageError
from tatara_build.frontend import load, parse
from tatara_build.ir import to_json

PROGRAM = '(defbpf-program p :kind :xdp :attach (:target "eth0") :license "GPL")\n(bpf-fn p (ctx) {body})\n'


def _error(text: str, file: str = "t.tlisp") -> tuple[str, str]:
    """(the first message, the first diagnostic rendered with its caret)."""
    with pytest.raises(SourceError) as caught:
        parse(text, file)
    d = caught.value.diagnostics[0]
    return d.message, d.render(text)


def test_invalid_utf8_names_the_file_line_column_and_byte_with_one_caret(tmp_path):
    src = tmp_path / "bad.tlisp"
    src.write_bytes(b";; one\n;; two\n(ab\xffcd)\n")
    with pytest.raises(SourceError) as caught:
        load(src)
    (d,) = caught.value.diagnostics
    assert d.message == "not UTF-8 text: byte 0xff at offset 17"
    assert (d.span.file, d.span.line, d.span.col, d.span.end_line, d.span.end_col) == (str(src), 3, 4, 3, 5)
    rendered = caught.value.render()
    assert rendered.splitlines()[0].startswith(f"{src}:3:4: error: not UTF-8 text")
    assert rendered.splitlines()[-1] == " " * len("   3 | (ab") + "^"  # one character, under the bad byte


def test_the_source_size_cap_is_exact(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "MAX_SOURCE_BYTES", 64)
    at_cap = tmp_path / "cap.tlisp"
    at_cap.write_bytes(b";" * 63 + b"\n")
    assert load(at_cap).maps == []  # 64 bytes: read whole
    over = tmp_path / "over.tlisp"
    over.write_bytes(b";" * 64 + b"\n")
    with pytest.raises(UsageError, match=r"is larger than 0 MiB, the limit for a \.tlisp source"):
        load(over)


def test_a_fifo_is_refused_at_once_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe.tlisp"
    os.mkfifo(fifo)

    def hung(*_):
        raise AssertionError("load() waited for a writer on the FIFO")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        with pytest.raises(UsageError, match="is not a regular file"):
            load(fifo)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_an_unopenable_source_says_why_in_words(tmp_path):
    loop = tmp_path / "loop.tlisp"
    loop.symlink_to(loop)
    with pytest.raises(SourceError) as caught:
        load(loop)
    assert caught.value.diagnostics[0].message == f"cannot read {loop}: Too many levels of symbolic links"


def test_parse_records_the_sha256_of_the_text():
    text = PROGRAM.format(body="(return :xdp-pass)")
    assert parse(text, "t.tlisp").source_sha256 == hashlib.sha256(text.encode()).hexdigest()


def test_a_byte_order_mark_is_not_part_of_the_program(tmp_path):
    text = PROGRAM.format(body="(return :xdp-pass)")
    plain, marked = tmp_path / "a.tlisp", tmp_path / "b.tlisp"
    plain.write_text(text)
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode())
    a, b = load(plain), load(marked)
    def shape(m):
        data = json.loads(to_json(m, spans=False))
        data.pop("source_sha256", None)
        data.pop("file", None)
        return data

    assert shape(a) == shape(b)
    assert b.programs[0].span.col == 1 and b.functions[0].span.line == 2


@pytest.mark.parametrize("text, message, line, col", [
    ("(defbpf-policy 5)", "expected policy name, got integer 5", 1, 16),
    ("(defbpf-map 7 :kind :array :key u32 :value u64 :max-entries 1)", "expected map name, got integer 7", 1, 13),
    ("(defbpf-map m :kind :array :key :u32 :value u64 :max-entries 1)",
     f"expected an integer type ({', '.join(tables.INT_TYPES)}) or a defbpf-struct name for :key, got keyword `:u32`", 1, 33),
    ("(defbpf-map m :kind :array :value u64)", "defbpf-map needs `:max-entries`", 1, 1),
    ("(bpf-fn p)", "expected (bpf-fn name (ctx) body…)", 1, 1),
    ("(a :)", "`:` must be followed by a keyword name", 1, 4),
    ("(a) '  '", "quote prefix `quote` has nothing to quote", 1, 8),
    ("(a))", "unexpected `)` with no matching `(`", 1, 4),
    (PROGRAM.format(body="(if-let x (return :xdp-pass))"), "expected (if-let (name (header ctx :tcp)) then [else])", 2, 25),
])
def test_malformed_forms_give_this_message_at_this_place(text, message, line, col):
    with pytest.raises(SourceError) as caught:
        parse(text, "t.tlisp")
    d = caught.value.diagnostics[0]
    assert (d.message, d.span.line, d.span.col) == (message, line, col)


def test_an_unknown_keyword_lists_what_is_known_and_the_closest():
    with pytest.raises(SourceError) as caught:
        parse("(defbpf-map m :kind :hashh :key u32 :value u64 :max-entries 1)", "t.tlisp")
    d = caught.value.diagnostics[0]
    assert d.message == "unknown map kind `:hashh`"
    assert d.notes[0] == "did you mean `hash`?"
    assert d.notes[1].startswith("known: hash, ")


def test_an_unknown_option_lists_the_options():
    with pytest.raises(SourceError) as caught:
        parse("(defbpf-map m :kind :hash :kee u32 :value u64 :max-entries 1)", "t.tlisp")
    d = caught.value.diagnostics[0]
    assert d.notes == ["did you mean `key`?",
                       "options: :kind :key :value :key-size :value-size :max-entries :pin-path :programs"]


def test_a_negative_expected_map_value_is_read():
    text = ('(defbpf-map m :kind :array :key u32 :value i64 :max-entries 1)\n'
            '(defbpf-program p :kind :xdp :attach (:target "eth0") :license "GPL" :uses-maps (m))\n'
            "(bpf-fn p (ctx) (return :xdp-pass))\n"
            "(defbpf-test t :program p :cases ((c :packet ((eth) (ipv4) (tcp :flags (syn))) :expect :xdp-pass))"
            " :expect-maps ((m 0 -5)))\n")
    module = parse(text, "t.tlisp")
    assert module.tests[0].expect_maps[0].value == -5


def test_the_size_limit_message_names_the_real_limit_in_mib(tmp_path):
    over = tmp_path / "huge.tlisp"
    over.write_bytes(b";" * (4 << 20) + b"\n")
    with pytest.raises(UsageError, match=r"is larger than 4 MiB, the limit for a \.tlisp source \(is it the right file\?\)"):
        load(over)


def test_text_holding_a_lone_surrogate_is_a_source_error_not_a_crash():
    """parse() hashes the text it is given; a str from elsewhere may hold a lone surrogate,
    which must reach the reader (and its messages) rather than break the digest."""
    with pytest.raises(SourceError) as err:
        parse("(defbpf-map \udcff)\n", "t.tlisp")
    assert [(d.message, d.span.line) for d in err.value.diagnostics] == [("defbpf-map needs `:kind`", 1)]

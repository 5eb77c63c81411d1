"""Reader: values, spans, quote prefixes, escapes, and every syntax error."""

import pytest

from tatara_build.errors import SourceError
from tatara_build.frontend.reader import MAX_DEPTH, Boolean, Integer, Keyword, SList, String, Symbol, read


def one(text: str):
    (datum,) = read(text, "t.tlisp")
    return datum


def test_atoms():
    data = read('foo :bar "s" #t #f 42 -7 0xff -0x10 007 set! <= -', "t")
    assert [type(d).__name__ for d in data] == [
        "Symbol", "Keyword", "String", "Boolean", "Boolean", "Integer", "Integer", "Integer", "Integer", "Integer",
        "Symbol", "Symbol", "Symbol",
    ]
    assert data[1].name == "bar" and data[2].value == "s"
    assert [d.value for d in data[3:10]] == [True, False, 42, -7, 255, -16, 7]


def test_integer_range_limits():
    assert one(str(2**64 - 1)).value == 2**64 - 1
    assert one(str(-(2**63))).value == -(2**63)


def test_spans_are_one_based_and_end_exclusive():
    lst = one("\n  (a\n   bc)")
    assert isinstance(lst, SList)
    assert (lst.span.line, lst.span.col, lst.span.end_line, lst.span.end_col) == (2, 3, 3, 7)
    bc = lst.items[1]
    assert (bc.span.line, bc.span.col, bc.span.end_col) == (3, 4, 6)
    assert bc.span.file == "t.tlisp"


def test_comments_and_whitespace_are_skipped():
    data = read("; header\n(a ; inline\n b) ; tail\n", "t")
    assert len(data) == 1 and [x.name for x in data[0].items] == ["a", "b"]


@pytest.mark.parametrize(
    "prefix, name", [("'", "quote"), ("`", "quasiquote"), (",", "unquote"), (",@", "unquote-splicing")]
)
def test_quote_prefixes(prefix, name):
    d = one(f"{prefix}(x y)")
    assert isinstance(d, SList) and d.head == name
    assert isinstance(d.items[1], SList) and d.items[1].head == "x"
    assert d.span.col == 1 and d.span.end_col == len(prefix) + 6


def test_string_escapes():
    assert one(r'"a\nb\tc\rd\"e\\f"').value == 'a\nb\tc\rd"e\\f'


@pytest.mark.parametrize(
    "text, message, line, col",
    [
        ("(a (b c)", "unclosed `(`", 1, 1),
        ("(a\n  (b", "unclosed `(`", 2, 3),
        ("(a))", "unexpected `)`", 1, 4),
        ('"abc\\q"', "unknown escape `\\q`", 1, 5),
        ('(x "abc', "unterminated string", 1, 4),
        ('"abc\n"', "unterminated string", 1, 1),
        ("18446744073709551616", "out of range", 1, 1),
        ("(a -9223372036854775809)", "out of range", 1, 4),
        ("0x", "malformed integer", 1, 1),
        ("12ab", "malformed integer", 1, 1),
        ("#x", "unknown `#` syntax", 1, 1),
        ("(a :)", "must be followed by a keyword name", 1, 4),
        ("(a ')", "has nothing to quote", 1, 4),
        ("a\u00a0b", "unexpected character", 1, 2),
    ],
)
def test_syntax_errors(text, message, line, col):
    with pytest.raises(SourceError) as info:
        read(text, "t.tlisp")
    (diag,) = info.value.diagnostics
    assert message in diag.message
    assert (diag.span.line, diag.span.col) == (line, col)


def test_nesting_limit():
    read("(" * MAX_DEPTH + ")" * MAX_DEPTH)
    with pytest.raises(SourceError, match="nested more than"):
        read("(" * (MAX_DEPTH + 1) + ")" * (MAX_DEPTH + 1))


def test_huge_digit_string_is_a_clean_error():
    with pytest.raises(SourceError, match="out of range"):
        read("9" * 5000)


def test_types():
    assert isinstance(one("x"), Symbol) and isinstance(one(":k"), Keyword)
    assert isinstance(one('""'), String) and isinstance(one("#t"), Boolean) and isinstance(one("1"), Integer)


@pytest.mark.parametrize("text, col", [("(a)\n'`,", 3), ("(a)\n(b '`,)", 6)])
def test_of_several_dangling_quote_prefixes_the_last_is_named_where_it_stands(text, col):
    with pytest.raises(SourceError) as err:
        read(text, "t.tlisp")
    (d,) = err.value.diagnostics
    assert (d.message, d.span.line, d.span.col) == ("quote prefix `unquote` has nothing to quote", 2, col)


def test_an_unknown_escape_points_at_its_line_and_the_two_characters():
    with pytest.raises(SourceError) as err:
        read('\n\n(defbpf-program p :license "ab\\qc")', "t.tlisp")
    (d,) = err.value.diagnostics
    assert (d.message, d.span.line, d.span.col, d.span.end_line, d.span.end_col) == ("unknown escape `\\q` in string",
                                                                                  3, 31, 3, 33)

"""Forms -> IR: shapes, desugaring, identifier rules, option errors."""

import pytest

from tatara_build import ir
from tatara_build.errors import SourceError
from tatara_build.frontend import parse
from tatara_build.frontend.names import ident_problem

from .helpers import position, program


def body_of(text: str):
    return parse(text, "t.tlisp").functions[0].body


def test_multi_binding_let_desugars_to_nested_lets():
    (let,) = body_of(program("(let ((a (u32 1)) (b a)) (return :xdp-pass))"))
    assert isinstance(let, ir.Let) and let.name == "a"
    (inner,) = let.body
    assert isinstance(inner, ir.Let) and inner.name == "b" and isinstance(inner.body[0], ir.Return)


def test_if_without_else_gets_empty_begin():
    (if_,) = body_of(program("(if #t (return :xdp-pass))"))
    assert isinstance(if_.otherwise, ir.Begin) and if_.otherwise.body == []


def test_nary_operators_fold_left():
    (ret,) = body_of(program("(return (+ (u32 1) 2 3))"))
    add = ret.value
    assert add.op == "add" and isinstance(add.left, ir.Binary) and add.right.value == 3
    assert add.left.left.to == "u32" and add.left.right.value == 2


def test_cast_shorthand_and_long_form_are_the_same():
    (a,) = body_of(program("(return (u32 7))"))
    (b,) = body_of(program("(return (cast u32 7))"))
    assert ir._strip_spans(a.value.model_dump()) == ir._strip_spans(b.value.model_dump())


def test_return_keyword_and_value():
    r1, r2 = body_of(program("(return :xdp-pass) (return (u32 1))"))
    assert isinstance(r1, ir.Return) and r1.action == "xdp-pass"
    assert isinstance(r2, ir.ReturnValue)


def test_map_decl_sizes_in_bytes():
    m = parse("(defbpf-map m :kind :hash :key-size 2 :value-size 8 :max-entries 4)", "t").maps[0]
    assert (m.key, m.value, m.pin_path) == ("u16", "u64", None)


def test_pin_path_is_refused_at_its_value():
    """Accepted-and-ignored would be a lie: neither backend's object can carry
    a pin path (libbpf: pin by name under the loader's root; aya-ebpf 0.2.1's
    #[btf_map]: not even that), so the loader pins."""
    text = '(defbpf-map m :kind :hash :key u32 :value u64 :max-entries 4 :pin-path "/sys/fs/bpf/m")'
    with pytest.raises(SourceError) as err:
        parse(text, "t")
    (d,) = err.value.diagnostics
    assert "`:pin-path` is not supported" in d.message and (d.span.line, d.span.col) == (1, text.index('"/sys') + 1)
    assert any("map.pin(path)" in n for n in d.notes)


def test_test_case_shapes():
    t = parse(
        '(defbpf-test t :program p :cases ((a :packet ((eth) (tcp :flags (syn ack) :dport 80)) :truncate 40 :expect :xdp-pass :repeat 2)'
        ' (b :packet-hex "00ff" :expect :xdp-drop)) :expect-maps ((m 0 4)))',
        "t",
    ).tests[0]
    a, b = t.cases
    assert a.layers[1].fields == {"flags": ["syn", "ack"], "dport": 80} and (a.truncate, a.repeat) == (40, 2)
    assert b.packet_hex == "00ff" and t.expect_maps[0].value == 4


@pytest.mark.parametrize("good", ["a", "syn-drops", "x1", "a-1-b"])
def test_good_identifiers(good):
    assert ident_problem(good) is None


@pytest.mark.parametrize("bad", ["A", "1a", "a_b", "a--b", "a-", "-a", "é", "fn", "loop", "u32", "self", "int", "bpf-map-lookup-elem", "memcpy"])
def test_bad_identifiers(bad):
    assert ident_problem(bad)


ERRORS = [
    # (source, message part, snippet the error points at)
    ("(defbpf-map Bad :kind :hash :key u32 :value u32 :max-entries 1)", "invalid name `Bad`", "Bad"),
    ("(defbpf-map m :kind :hash :key u32 :value u32 :max-entries 1 :kind :array)", "given twice", ":kind :array"),
    ("(defbpf-map m :kind :hashh :key u32 :value u32 :max-entries 1)", "did you mean", ":hashh"),
    ("(defbpf-map m :kind :hash :key u32 :value u32 :max-entries 0)", "between 1 and", "0)"),
    ("(defbpf-map m :kind :hash :key u32 :key-size 4 :value u32 :max-entries 1)", "not both", "4 :value"),
    ("(defbpf-map m :kind :hash :key 24 :value u32 :max-entries 1)", "expected an integer type", "24"),
    ("(defbpf-map m :kind :hash :key u32 :value u32 :max-entrys 1)", "unknown option `:max-entrys`", ":max-entrys"),
    ("(defbpf-map m :kind :hash :key u32 :value u32)", "needs `:max-entries`", "(defbpf-map"),
    ('(defbpf-program q :kind :xdp :attach (:target "eth0\\"; evil"))', "invalid attach target", '"eth0'),
    ('(defbpf-program q :kind :xdp :license "GPL\\n")', "invalid :license", '"GPL'),
    ('(defbpf-program q :kind :xdp :kernel "six")', "invalid :kernel", '"six"'),
    ('(defbpf-program q :kind :xdp :attach (:target "lo" :direction "up"))', "must be \"ingress\" or \"egress\"", '"up"'),
    ("(defbpf-prgram q :kind :xdp)", "did you mean `defbpf-program`", "defbpf-prgram"),
    ("(bpf-fn q (a b) (return :ok))", "exactly one parameter", "(a b)"),
    ("(bpf-fn q (c) (retrun :ok))", "did you mean `return`", "retrun"),
    ("(bpf-fn q (c) (if #t))", "wrong number of arguments to `if`", "(if"),
    ("(bpf-fn q (c) (- (u32 1)))", "negative literals", "(- (u32"),
    ("(bpf-fn q (c) (loop (i 0 n) (break)))", "must be integer literals", "n)"),
    ("(bpf-fn q (c) (return \"x\"))", "strings are only allowed in declarations", '"x"'),
    ("(bpf-fn q (c) (map-get :m 0))", "expected map name", ":m"),
    ("(bpf-fn q (c) (header c :tpc))", "did you mean `tcp`", ":tpc"),
    ("(bpf-fn q (c) (let ((my_var (u32 1))) my_var))", "invalid name `my_var`", "my_var"),
    ("(bpf-fn q (c) ((a) 1))", "expected a form name", "(a)"),
    ("(bpf-fn q (c) break)", "`break` is a form", "break)"),
    ("(defbpf-test t :program p :cases ((a :expect :ok)))", "exactly one of :packet or :packet-hex", "(a :expect"),
    ("(defbpf-test t :program p :cases ((a :packet ((tpc)) :expect :ok)))", "unknown packet layer `tpc`", "tpc"),
    ("(defbpf-test t :program p :cases ((a :packet ((tcp :dprt 1)) :expect :ok)))", "unknown option `:dprt`", ":dprt"),
    ("42", "expected a declaration", "42"),
    ("(bpf-fn q (c) (let ((a (u8 1)) (a (u8 2))) (return :ok)))", "`a` is bound twice", "a (u8 2)"),
]


@pytest.mark.parametrize("text, message, snippet", ERRORS, ids=[e[1][:40] for e in ERRORS])
def test_form_errors(text, message, snippet):
    with pytest.raises(SourceError) as info:
        parse(text, "t.tlisp")
    diags = info.value.diagnostics
    where = position(text, snippet)
    assert any(message in " ".join([d.message, *d.notes]) and (d.span.line, d.span.col) == where for d in diags), [
        (d.message, d.span) for d in diags
    ]


def test_errors_are_collected_per_declaration():
    text = "(defbpf-map A :kind :hash)\n(defbpf-map b :kind :nope :max-entries 1)\n(bogus)\n"
    with pytest.raises(SourceError) as info:
        parse(text, "t")
    assert [d.span.line for d in info.value.diagnostics] == [1, 2, 3]

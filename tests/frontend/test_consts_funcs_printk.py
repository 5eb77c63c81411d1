"""defbpf-const, defbpf-func and printk: what the frontend and checker accept,
and one message at the right place for each misuse (recursion, forward
calls, writes to a const, printk formats against argument types, stack
across calls, maps and helpers a function brings to its caller)."""

from __future__ import annotations

import pytest

from tatara_build import backends
from tatara_build.check.exprs import printk_conversions

from .helpers import checked, position, problems

HEAD = """\
(defbpf-const limit u64 100)
(defbpf-const on bool #t)
(defbpf-map hits :kind :hash :key u32 :value u64 :max-entries 16)
(defbpf-map events :kind :perf-event-array :max-entries 1)
"""


def src(funcs: str, body: str = "(return :xdp-pass)", uses: str = "(hits events)", kind: str = ":xdp",
        target: str = "eth0", license_: str = "GPL", extra: str = "") -> str:
    return (HEAD + funcs + f'\n(defbpf-program p :kind {kind} :attach (:target "{target}") :license "{license_}" '
            f":uses-maps {uses})\n(bpf-fn p (ctx)\n  {body})\n" + extra)


ACCEPTED = [
    ("", "(if (> (map-get hits (u32 1)) limit) (return :xdp-drop) (return :xdp-pass))"),
    ("", "(if on (return :xdp-drop) (return :xdp-pass))"),
    ("(defbpf-func bucket ((len u32)) :returns u32 (if (< len 128) (return 0) (return 1)))",
     "(if (= (bucket (u32 7)) 0) (return :xdp-drop) (return :xdp-pass))"),
    # the last expression is the result; a function without :returns gives none
    ("(defbpf-func twice ((x u64)) :returns u64 (* x 2))\n(defbpf-func bump ((k u32)) (map-add hits k (twice limit)))",
     "(bump (u32 1)) (return :xdp-pass)"),
    ("(defbpf-func f ((x u32)) :returns u32 (set! x (+ x 1)) x)", "(if (= (f (u32 1)) 2) (return :xdp-drop)) (return :xdp-pass)"),
    ("(defbpf-func f () :returns u64 (call ktime-ns))", "(printk \"t=%llu\" (f)) (return :xdp-pass)"),
    ("", "(printk \"no args 100%% \\\"quoted\\\" \\\\ ??=\") (return :xdp-pass)"),
    ("", "(printk \"%d %u %x\" (i32 -1) (u8 2) #t) (printk \"%lld %llx %lu\" (i64 -1) limit limit) (return :xdp-pass)"),
    ("", "(printk \"%u\" 5) (return :xdp-pass)"),  # a literal takes the conversion's width
    ("(defbpf-func show ((x u32)) (printk \"x=%u\" x))", "(show (u32 1)) (return :xdp-pass)"),
]


@pytest.mark.parametrize("funcs, body", ACCEPTED)
def test_accepted_and_emitted_by_every_dialect(funcs, body, tmp_path):
    module = checked(src(funcs, body))
    for i, name in enumerate(backends.names()):
        backends.emit(module, name, tmp_path / str(i))


REJECTED = [
    # funcs, body, message, snippet the error points at
    ("", "(set! limit (u64 1)) (return :xdp-pass)", "`limit` is a defbpf-const: it is read-only", "(set! limit"),
    ("", "(let ((limit (u64 1))) (return :xdp-pass))", "variable `limit` has the name of defbpf-const `limit`", "(let"),
    ("", "(if (> (map-get hits (u32 1)) limt) (return :xdp-drop)) (return :xdp-pass)", "unknown variable `limt`",
     "limt)"),
    ("", "(if (> (u32 1) limit) (return :xdp-drop)) (return :xdp-pass)", "type mismatch: expected u32, found u64", "limit)"),
    ("(defbpf-func f ((x u32)) :returns u32 (f x))", "(return :xdp-pass)", "recursion: `f` calls itself", "(f x))"),
    ("(defbpf-func f ((x u32)) :returns u32 (g x))\n(defbpf-func g ((x u32)) :returns u32 (h x))\n"
     "(defbpf-func h ((x u32)) :returns u32 (f x))", "(return :xdp-pass)", "recursion: f -> g -> h -> f", "(g x))"),
    ("(defbpf-func f ((x u32)) :returns u32 (g x))\n(defbpf-func g ((x u32)) :returns u32 x)", "(return :xdp-pass)",
     "`g` is declared after `f`: a function may call only functions declared before it", "(g x))"),
    ("(defbpf-func f ((x u32)) :returns u32 x)", "(if (= (f (u64 1)) 0) (return :xdp-drop)) (return :xdp-pass)",
     "type mismatch: expected u32, found u64", "(u64 1)"),
    ("(defbpf-func f ((x u32)) :returns u32 x)", "(if (= (f) 0) (return :xdp-drop)) (return :xdp-pass)",
     "function `f` takes 1 argument(s), got 0", "(f)"),
    ("(defbpf-func f ((x u32)) :returns u32 (return :xdp-pass))", "(return :xdp-pass)",
     "(return :xdp-pass) ends a program; defbpf-func `f` returns a value", "(return :xdp-pass))\n"),
    ("(defbpf-func f ((x u32)) (return x))", "(return :xdp-pass)", "defbpf-func `f` has no :returns type",
     "(return x)"),
    ("(defbpf-func f ((x u32)) :returns u32 (map-add hits x 1))", "(return :xdp-pass)",
     "type mismatch: expected u32, found no value (unit)", "(map-add"),
    ("(defbpf-func f ((x u32)) :returns u32 (if (> x 1) (return 1)))", "(return :xdp-pass)",
     "type mismatch: expected u32, found no value (unit)", "(if (> x"),
    ("(defbpf-func f ((x u32)) :returns u32 (ctx-field ctx :len))", "(return :xdp-pass)",
     "defbpf-func `f` has no program context", "(ctx-field"),
    ("(defbpf-func f ((x u32)) :returns u32 (if-let (t (header ctx :tcp)) (return x)) (u32 0))", "(return :xdp-pass)",
     "defbpf-func `f` has no program context: parse headers in the program and pass the fields it needs as "
     "arguments", "(header ctx"),
    ("(defbpf-func f ((x u32)) :returns u32 (redirect x))", "(return :xdp-pass)",
     "(redirect …) needs a program (its context or kind); defbpf-func `f` has none", "(redirect x)"),
    ("(defbpf-func f ((x u32)) (event-output events x))", "(return :xdp-pass)",
     "a perf-event-array output needs the program context", "(event-output"),
    ("(defbpf-func f ((x u32)) (map-add hits x 1))", "(f (u32 1)) (return :xdp-pass)",
     "function `f` uses map(s) hits, not listed in :uses-maps of program `p`", "(f (u32 1))", "()"),
    ("(defbpf-func f () :returns u64 (call get-current-pid-tgid))", "(printk \"%llu\" (f)) (return :xdp-pass)",
     "function `f` calls helper(s) get-current-pid-tgid, not available to xdp programs", "(f))"),
    ("(defbpf-func f ((ctx u32)) :returns u32 ctx)\n(defbpf-func hits2 ((hits u32)) :returns u32 hits)",
     "(return :xdp-pass)", "variable `hits` has the name of a map, program, function or struct", "(hits u32)"),
    ("", "(printk \"%d\" (u32 1)) (return :xdp-pass)", "printk argument 1 is u32 but `%d` formats i8 or i16 or i32",
     "(u32 1))"),
    ("", "(printk \"%u\" limit) (return :xdp-pass)", "printk argument 1 is u64 but `%u` formats u8 or u16 or u32 or bool",
     "limit)"),
    ("", "(printk \"%s\" (u32 1)) (return :xdp-pass)", "unsupported conversion '%s'", "(printk"),
    ("", "(printk \"%5u\" (u32 1)) (return :xdp-pass)", "unsupported conversion '%5u'", "(printk"),
    ("", "(printk \"ab=%s\" (u32 1)) (return :xdp-pass)",
     "printk format: unsupported conversion '%s' at character 4; allowed: %d %i %u %x %ld %li %lld %lli %lu %lx %llu "
     "%llx %% (no flags or widths)", "(printk"),
    ("", "(printk \"%u %u\" (u32 1)) (return :xdp-pass)", "printk format has 2 conversion(s) but 1 argument(s)",
     "(printk"),
    ("", "(printk \"%u%u%u%u\" (u32 1) (u32 1) (u32 1) (u32 1)) (return :xdp-pass)",
     "printk takes at most 3 arguments", "(printk"),
    ("", "(printk \"x\") (return :xdp-pass)", "printk (bpf_trace_printk) is GPL-only", "(printk", "()", "MIT"),
]


@pytest.mark.parametrize("case", REJECTED, ids=lambda c: c[2][:50])
def test_rejected_with_one_message_at_the_form(case):
    funcs, body, message, snippet, *rest = case
    uses = rest[0] if rest else "(hits events)"
    text = src(funcs, body, uses=uses, license_=rest[1] if len(rest) > 1 else "GPL")
    found = problems(text)
    assert any(message in m for m, _, _ in found), found
    line, col = position(text, snippet)
    assert any(message in m and (ln, c) == (line, col) for m, ln, c in found), (found, line, col)


SHAPES = [
    ("(defbpf-const limit u8 300)", "default of defbpf-const `limit`: 300 does not fit in u8"),
    ("(defbpf-const x bool 2)", "expected #t or #f for a bool"),
    ("(defbpf-const x f32 1)", "expected the type of the const"),
    ("(defbpf-const x u32)", "expected (defbpf-const name type default)"),
    ("(defbpf-const header u32 1)", "`header` is a body form; a const cannot take its name"),
    ("(defbpf-const hits u32 1)", "duplicate map, program, const, function or struct name `hits`"),
    ("(defbpf-func field ((x u32)) :returns u32 x)", "`field` is a body form; a function cannot take its name"),
    ("(defbpf-func f ((x u32) (x u32)) :returns u32 x)", "parameter `x` is declared twice"),
    ("(defbpf-func f (x) :returns u32 x)", "each parameter is (name type)"),
    ("(defbpf-func f ((x u32)) :result u32 x)", "unknown option `:result` for defbpf-func"),
    ("(defbpf-func f ((x u32)) :returns u32)", "defbpf-func `f` needs a body"),
    ("(defbpf-func p ((x u32)) :returns u32 x)", "duplicate map, program, const, function or struct name `p`"),
]


@pytest.mark.parametrize("decl, message", SHAPES)
def test_declaration_shapes(decl, message):
    found = problems(src("", extra=decl + "\n"))
    assert any(message in m for m, _, _ in found), found


def test_printk_formats_are_printable_ascii_only():
    for fmt, message in (("tab\\there", "printable ASCII only"), ("x" * 129, "over the limit of 128")):
        found = problems(src("", f'(printk "{fmt}") (return :xdp-pass)'))
        assert any(message in m for m, _, _ in found), found
    found = problems(src("", '(let ((x "s")) (return :xdp-pass))'))
    assert any("strings are only allowed in declarations and as the format of (printk" in m for m, _, _ in found)


def test_printk_conversions():
    assert printk_conversions("a %d %% %llx %lu %i%x") == ["d", "llx", "lu", "i", "x"]
    assert "unsupported conversion '%p'" in printk_conversions("%p")
    assert "unsupported conversion '%'" in printk_conversions("ends in %")


def test_test_consts_are_declared_in_range_and_once():
    tests = ('(defbpf-test t :program p :consts ((limt 1) (on 2) (limit 1) (limit 2)) '
             ':cases ((a :packet ((eth)) :expect :xdp-pass)))')
    messages = [m for m, _, _ in problems(src("", extra=tests + "\n"))]
    assert any("sets unknown const `limt`" in m for m in messages), messages
    assert any("value of const `on`: expected #t or #f" in m for m in messages), messages
    assert any("sets const `limit` twice" in m for m in messages), messages


def test_function_stack_counts_at_every_call_site():
    # 40 nested lets of 8 bytes in a function, called with 30 more live in the caller: 560 > 512
    lets = "".join(f"(let ((v{i} (u64 {i})))" for i in range(40))
    funcs = f"(defbpf-func deep () :returns u64 {lets} v0{')' * 40})"
    outer = "".join(f"(let ((w{i} (u64 {i})))" for i in range(30))
    body = f"{outer} (if (= (deep) 0) (return :xdp-drop) (return :xdp-pass)){')' * 30}"
    found = problems(src(funcs, body))
    assert any("estimated stack use of `p` reaches" in m and "over the BPF limit of 512" in m for m, _, _ in found), found
    assert not problems(src(funcs, "(if (= (deep) 0) (return :xdp-drop) (return :xdp-pass))"))


def test_kernel_promises_look_into_called_functions():
    funcs = "(defbpf-func now () :returns u64 (call ktime-tai-ns))"
    text = src(funcs, "(printk \"%llu\" (now)) (return :xdp-pass)").replace(":license", ':kernels ("5.10") :license')
    found = problems(text)
    assert any("kernel 5.10" in m and "ktime-tai-ns" in m for m, _, _ in found), found


def test_loops_in_functions_count_where_they_are_called():
    funcs = "(defbpf-func spin ((k u32)) (loop (i 0 256) (map-add hits k 1)))"
    assert not problems(src(funcs, "(spin (u32 1)) (return :xdp-pass)"))
    found = problems(src(funcs, "(loop (j 0 64) (spin j)) (return :xdp-pass)"))
    assert any("this loop runs 64 times" in m for m, _, _ in found), found


def test_a_function_whose_if_has_no_else_says_the_last_expression_is_its_result():
    """`(defbpf-func f ((x u32)) :returns u32 (if (> x 3) (return x)))`
    said only `expected u32, found no value (unit)` at the if."""
    text = """(defbpf-func f ((x u32)) :returns u32 (if (> x 3) (return x)))
(defbpf-program p :kind :xdp :attach (:target "eth0"))
(bpf-fn p (ctx) (if (= (f 1) (u32 1)) (return :xdp-drop)) (return :xdp-pass))
"""
    ((message, line, col),) = problems(text)
    assert message.startswith("type mismatch: expected u32, found no value (unit): the last expression is the result "
                              "of defbpf-func `f` (:returns u32)")
    assert "an ELSE branch" in message and (line, col) == position(text, "(if (> x 3)")

#!/usr/bin/env python3
"""Derive the names the generated C cannot use from the headers it includes
and from clang itself; print them (one per line, tatara spelling: `_` -> `-`).

    .venv/bin/python scripts/reserved-names.py > reserved_c.py && mv reserved_c.py tatara_build/frontend/

Two sources, both asked of clang (no list typed by hand):
  1. lowercase macros the generated C's #includes define (`clang -dM -E`):
     tc_gen (pkt_cls.h), offsetof, barrier_var, container_of, …;
  2. C library functions clang knows as builtins: every lowercase function a
     set of libc headers declares is compiled as a BPF program name, and the
     ones clang calls an "incompatible redeclaration of library function"
     (fatal under -Werror) are kept: abs, exit, log, index, free, …
`bpf_*` (already reserved by prefix) and `__*` (not a tatara name) are left out.
tests/frontend/test_reserved_names.py re-derives the list and compiles every
candidate name through the C backend.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tatara_build.backends import render  # noqa: E402
from tatara_build.check import check  # noqa: E402
from tatara_build.compile.clang import multiarch_include  # noqa: E402
from tatara_build.frontend import parse  # noqa: E402

# Any program: what matters is the #include lines the C backend writes.
PROBE = """(defbpf-program p :kind :xdp :attach (:target "eth0") :license "GPL")
(bpf-fn p (ctx) (return :xdp-pass))
"""

LIBC_HEADERS = ("stdlib.h", "string.h", "strings.h", "stdio.h", "math.h", "ctype.h", "setjmp.h", "alloca.h",
                "time.h", "signal.h", "unistd.h", "wchar.h", "wctype.h", "stdarg.h", "complex.h", "fenv.h")
TATARA_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def _clang(args: list[str], text: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(text)
        return subprocess.run(["clang", *args, str(src)], capture_output=True, text=True)


def includes() -> list[str]:
    (text,) = render(check(parse(PROBE, "probe.tlisp")), "c").values()
    return [line for line in text.splitlines() if line.startswith("#include")]


def header_macros() -> set[str]:
    ran = _clang(["-target", "bpf", *multiarch_include(), "-dM", "-E"], "\n".join(includes()) + "\n")
    ran.check_returncode()
    names = {line.split()[1].split("(")[0] for line in ran.stdout.splitlines() if line.startswith("#define ")}
    return {n for n in names if TATARA_NAME.fullmatch(n)}


def struct_tags() -> set[str]:
    """Struct and union tags the included headers define completely (a
    defbpf-struct of that name would redefine them), and those of the
    program contexts the C backend declares (`struct pt_regs`: a user
    struct of that name would become the kprobe context's type)."""
    from tatara_build.backends.libbpf import PROGRAMS

    ran = _clang(["-target", "bpf", *multiarch_include(), "-Xclang", "-ast-dump=json", "-fsyntax-only"],
                 "\n".join(includes()) + "\n")
    ran.check_returncode()
    found = {node["name"] for node in json.loads(ran.stdout).get("inner", [])
             if node.get("kind") == "RecordDecl" and node.get("completeDefinition")
             and TATARA_NAME.fullmatch(node.get("name", ""))}
    found |= {m.group(1) for p in PROGRAMS.values()
              if (m := re.fullmatch(r"struct ([a-z0-9_]+) \*", p.ctx)) and TATARA_NAME.fullmatch(m.group(1))}
    return found


def libc_candidates() -> set[str]:
    text = "".join(f"#include <{h}>\n" for h in LIBC_HEADERS)
    ran = _clang(["-Xclang", "-ast-dump=json", "-fsyntax-only"], text)
    found: set[str] = set()
    for node in json.loads(ran.stdout).get("inner", []):
        if node.get("kind") == "FunctionDecl" and TATARA_NAME.fullmatch(node.get("name", "")):
            found.add(node["name"])
    return found


def library_builtins(candidates: set[str]) -> set[str]:
    """Those of `candidates` clang refuses as a BPF program's name or as a
    global (what a map is): any error that quotes the name."""
    names = sorted(candidates)
    as_programs = "".join(f'__attribute__((section("xdp"))) int {n}(void *ctx) {{ return 0; }}\n' for n in names)
    as_globals = "".join(f'__attribute__((section(".maps"))) struct {{ int x; }} {n};\n' for n in names)
    refused: set[str] = set()
    for text in (as_programs, as_globals):
        ran = _clang(["-target", "bpf", "-O2", "-Wall", "-Werror", "-ferror-limit=0", "-fsyntax-only"], text)
        for line in ran.stderr.splitlines():
            if "error:" in line:
                refused |= {q for q in re.findall(r"'([a-z0-9_]+)'", line) if q in candidates}
    return refused


def derive() -> tuple[list[str], list[str], list[str]]:
    """(the headers' macros, clang's library builtins, the headers' struct
    tags), tatara spelling."""
    def spelled(names: set[str]) -> list[str]:
        return sorted(n.replace("_", "-") for n in names if not n.startswith("bpf_"))

    macros = header_macros()
    return spelled(macros), spelled(library_builtins(libc_candidates()) - macros), spelled(struct_tags())


def _wrapped(names: list[str]) -> str:
    lines, line = [], ""
    for name in names:
        if len(line) + len(name) + 1 > 100:
            lines.append(line)
            line = ""
        line = f"{line} {name}" if line else name
    lines.append(line)
    return "\n".join(lines)


def module_text(derived: tuple[list[str], list[str], list[str]]) -> str:
    """reserved_c.py: the derived names as data (wrapped, sorted)."""
    macros, library, tags = derived
    return (f'''"""Names the generated C cannot use, derived by scripts/reserved-names.py
from the headers the C backend includes (their lowercase macros: tc-gen,
offsetof, barrier-var, …) and from clang (C library functions it knows as
builtins: abs, exit, log, index, …). Regenerate, do not edit:

    .venv/bin/python scripts/reserved-names.py > reserved_c.py && mv reserved_c.py tatara_build/frontend/

A macro is refused for every name; a library builtin only for globals (maps,
programs, functions: clang refuses to redeclare it), since a local variable
may shadow a library function in C. A struct tag the headers define (or a
program context's) is refused as a defbpf-struct name only (`struct NAME`).
"""

C_MACROS = frozenset(
    """
{_wrapped(macros)}
    """.split()
)

C_LIBRARY = frozenset(
    """
{_wrapped(library)}
    """.split()
)

C_RESERVED = C_MACROS | C_LIBRARY

C_STRUCT_TAGS = frozenset(
    """
{_wrapped(tags)}
    """.split()
)
''')


if __name__ == "__main__":
    sys.stdout.write(module_text(derive()))

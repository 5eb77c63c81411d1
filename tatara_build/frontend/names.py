"""The identifier rule: every name a user writes (maps, programs, functions,
variables, tests, policies, test cases) must be `[a-z][a-z0-9]*` words joined
by single `-`. No `_`, no trailing or doubled `-`, so the backends' `-` -> `_`
spelling never contains `__`, a leading/trailing `_` or an upper-case letter:
generated code may use any such name for its own temporaries without a clash.
Words that are keywords (or reserved names) in C or Rust are rejected too, as
are `bpf-…` names (libbpf's `bpf_*` namespace) and the mem* builtins.

Globals (maps, programs, functions, …) and locals (variables, parameters)
differ in one thing: a C library builtin (`index`, `log`, `free`) or an item
of the generated Rust crate (`panic`, `license`) clashes only with a global
of that name; a local of that name shadows it, which C and Rust both allow.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..tables import MAX_NAME_LENGTH
from .reserved_c import C_LIBRARY, C_MACROS

IDENT = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")

# C11 keywords, common C macros/types, Rust keywords (strict and reserved),
# and the integer type names (they are cast forms: `(u32 x)`).
RESERVED = frozenset(
    """
    auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while bool true false null alignas alignof asm typeof
    as async await box crate dyn fn impl in let loop match mod move mut priv pub ref self super
    trait type unsafe unsized use virtual where yield abstract become final macro override try
    gen u8 u16 u32 u64 i8 i16 i32 i64 usize isize
    main memcpy memmove memset memcmp bcmp
    """.split()
)
# What the generated code defines or includes: the C headers' macros and
# clang's C library builtins (derived: reserved_c.py), and the aya crate's
# own items (`fn panic`, the #[panic_handler]; `static LICENSE`, which a map
# named `license` would also spell). `ctx` is not reserved: the backends
# rename a user binding called so (base.Generator.bind). Both sets (C_LIBRARY
# and GENERATED_ITEMS) bind globals only; C_MACROS expand wherever they occur.
GENERATED_ITEMS = frozenset({"panic", "license"})
# `bpf_*` is libbpf's and the kernel's namespace (helpers, macros).
RESERVED_PREFIXES = ("bpf-",)


def symbol(name: str) -> str:
    """The C/Rust/ELF spelling of a valid name: `-` becomes `_` (syn-drops
    -> syn_drops). The one place this rule lives: the backends spell names
    with it and the build and vm stages find programs and maps by it."""
    return name.replace("-", "_")


@lru_cache(maxsize=4096)  # the same few names recur all through a file
def ident_problem(name: str, local: bool = False) -> str | None:
    """Why `name` is not a valid identifier, or None when it is. `local`:
    the name of a variable or parameter (inside a function body)."""
    if not IDENT.fullmatch(name):
        return (
            f"invalid name `{name}`: names are lower-case words of [a-z0-9] joined by single `-`, "
            "starting with a letter (e.g. syn-drops)"
        )
    if len(name) > MAX_NAME_LENGTH:
        return (f"name `{name[:24]}…` is {len(name)} characters long; at most {MAX_NAME_LENGTH} fit the "
                "symbols the loader pins and runs")
    if symbol(name) in RESERVED or name.startswith(RESERVED_PREFIXES):
        return f"`{name}` is reserved in the generated C or Rust (keywords, `bpf-…`, mem*); choose another name"
    if name in C_MACROS:
        return (f"`{name}` is reserved: the headers the generated C includes define a macro "
                f"`{symbol(name)}`; choose another name")
    if local:
        return None
    if name in C_LIBRARY:
        return (f"`{name}` is reserved: `{symbol(name)}` is a C library builtin, which a map, program "
                "or function may not redefine in the generated C (a local variable may use it); choose another name")
    if name in GENERATED_ITEMS:
        return (f"`{name}` is reserved: the generated Rust crate defines an item of that name (a local variable "
                "may use it); choose another name")
    return None

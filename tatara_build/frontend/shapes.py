"""Shape checks shared by the declaration and body forms: the error type,
extractors for names, keywords, integers and strings, `:key value` options
and argument counts. Every failure is a FormError at the datum's span."""

from __future__ import annotations

import re
from typing import Sequence

from ..errors import Diagnostic, Span, suggestion as suggest
from .names import ident_problem
from .reader import Datum, Integer, Keyword, SList, String, Symbol

MAX_INT = (1 << 64) - 1


class FormError(Exception):
    def __init__(self, message: str, span: Span, *notes: str):
        super().__init__(message)
        self.diagnostic = Diagnostic(message, span, list(notes))


def describe(d: Datum) -> str:
    if isinstance(d, SList):
        return f"a list `({d.head} …)`" if d.head else "a list"
    if isinstance(d, Symbol):
        return f"`{d.name}`"
    if isinstance(d, Keyword):
        return f"keyword `:{d.name}`"
    if isinstance(d, String):
        return "a string"
    if isinstance(d, Integer):
        return f"integer {d.value}"
    return "a boolean"


# --- small extractors -----------------------------------------------------------


def name(d: Datum, what: str, local: bool = False) -> str:
    """A validated identifier; `local`: a name the generated code never declares
    as a global (a variable, parameter, test, test case or policy; names.py)."""
    if not isinstance(d, Symbol):
        raise FormError(f"expected {what} name, got {describe(d)}", d.span)
    problem = ident_problem(d.name, local)
    if problem:
        raise FormError(problem, d.span)
    return d.name


def name_list(d: Datum, what: str) -> list[str]:
    if not isinstance(d, SList):
        raise FormError(f"expected a list of {what} names, e.g. (a b), got {describe(d)}", d.span)
    return [name(x, what) for x in d.items]


def keyword(d: Datum, what: str, choices: Sequence[str] | None = None) -> str:
    if not isinstance(d, Keyword):
        raise FormError(f"expected {what} as a :keyword, got {describe(d)}", d.span)
    if choices is not None and d.name not in choices:
        raise FormError(
            f"unknown {what} `:{d.name}`", d.span, *suggest(d.name, choices), "known: " + ", ".join(choices)
        )
    return d.name


def integer(d: Datum, what: str, low: int = 0, high: int = MAX_INT) -> int:
    if not isinstance(d, Integer):
        raise FormError(f"expected an integer for {what}, got {describe(d)}", d.span)
    if not low <= d.value <= high:
        raise FormError(f"{what} must be between {low} and {high}, got {d.value}", d.span)
    return d.value


def string(d: Datum, what: str, shape: re.Pattern[str], rule: str) -> str:
    if not isinstance(d, String):
        raise FormError(f"expected a string for {what}, got {describe(d)}", d.span)
    if not shape.fullmatch(d.value):
        raise FormError(f"invalid {what} {d.value!r}: {rule}", d.span)
    return d.value


def options(form: SList, items: Sequence[Datum], allowed: Sequence[str], required: Sequence[str] = ()) -> dict[str, Datum]:
    """Parse `:key value …` pairs; unknown, repeated or missing keys are errors."""
    out: dict[str, Datum] = {}
    i = 0
    while i < len(items):
        key = items[i]
        if not isinstance(key, Keyword):
            raise FormError(f"expected a :keyword option, got {describe(key)}", key.span, "options: " + " ".join(f":{a}" for a in allowed))
        if key.name not in allowed:
            raise FormError(
                f"unknown option `:{key.name}` for {form.head}", key.span,
                *suggest(key.name, allowed), "options: " + " ".join(f":{a}" for a in allowed),
            )
        if key.name in out:
            raise FormError(f"option `:{key.name}` given twice", key.span)
        if i + 1 >= len(items):
            raise FormError(f"option `:{key.name}` needs a value", key.span)
        out[key.name] = items[i + 1]
        i += 2
    for key in required:
        if key not in out:
            raise FormError(f"{form.head} needs `:{key}`", form.span)
    return out


def arity(form: SList, low: int, high: int | None, usage: str) -> tuple[Datum, ...]:
    args = form.items[1:]
    if len(args) < low or (high is not None and len(args) > high):
        raise FormError(f"wrong number of arguments to `{form.head}`: expected {usage}", form.span)
    return args

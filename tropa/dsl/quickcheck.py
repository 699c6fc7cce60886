"""Quick checks of the most common templates and conditions without Jinja's lexer and parser,
which are most of validation's time. Each answers exactly as the full check would (see
`tropa.dsl.expressions`), or None when the source is not of the simple kind it knows."""

from __future__ import annotations

import re

# `{{ customer.first_name }}`, `{{ event.data.total | money('RUB') }}`: most texts hold only
# such outputs, checked without Jinja's lexer and parser (they are most of validation's time).
_SIMPLE_OUTPUT = re.compile(
    r"""\{\{\s*(customer|event|steps|journey)((?:\.(?:[A-Za-z_]\w*|\d+))*)\s*"""
    r"""(?:\|\s*[A-Za-z_]\w*(?:\(\s*(?:'[^'\\{}]*'|"[^"\\{}]*"|\d+)?\s*\))?\s*)*\}\}""")


def simple_template_problems(source: str) -> tuple[str, ...] | None:
    """The problems of a template made only of simple outputs, or None for any other."""
    return _private_problems(simple_template_paths(source))


def simple_template_paths(source: str) -> list[str] | None:
    """The paths (`event.data.total`) a template of simple outputs reads, or None for any
    other template."""
    if "{%" in source or "{#" in source:
        return None
    matches = list(_SIMPLE_OUTPUT.finditer(source))
    if source.count("{{") != len(matches):
        return None
    return [m.group(1) + m.group(2) for m in matches]


_CONDITION_TOKEN = re.compile(
    r"""\s*(?:(?P<path>(?:customer|event|steps|journey)(?:\.(?:[A-Za-z_]\w*|\d+))*)(?![\w.])"""
    r"""|(?P<value>\d+(?:\.\d+)?(?![\w.])|'[^'\\{}]*'|"[^"\\{}]*"|(?:true|false|none)\b)"""
    r"""|(?P<not>not\b)|(?P<op>==|!=|>=|<=|>|<|(?:and|or|in)\b))""")


def simple_condition_problems(source: str) -> tuple[str, ...] | None:
    """The problems of a condition like `customer.vip and event.data.total > 100` (paths,
    numbers, strings, comparisons, and/or/not), or None for any other."""
    return _private_problems(simple_condition_paths(source))


def simple_condition_paths(source: str) -> list[str] | None:
    """The paths a simple condition (see `simple_condition_problems`) reads, or None for
    any other condition."""
    paths: list[str] = []
    # `not` may stand first or after and/or/not; after a comparison Jinja refuses it
    # (`a == not b`), so such a condition is left to the full check.
    position, want_operand, may_negate = 0, True, True
    source = source.rstrip()
    while position < len(source):
        token = _CONDITION_TOKEN.match(source, position)
        if token is None:
            return None
        kind = token.lastgroup
        if want_operand and kind in ("path", "value"):
            want_operand = False
            if kind == "path":
                paths.append(token.group("path"))
        elif want_operand and kind == "not" and may_negate:
            pass
        elif not want_operand and kind == "op":
            want_operand = True
            may_negate = token.group("op") in ("and", "or")
        else:
            return None
        position = token.end()
    return None if want_operand else paths


def _private_problems(paths: list[str] | None) -> tuple[str, ...] | None:
    """A problem for each underscore attribute on these paths; None when there are none to
    judge (the source was not of a simple kind)."""
    if paths is None:
        return None
    return tuple(private_problem(attr) for path in paths for attr in path.split(".")[1:]
                 if attr.startswith("_"))


def private_problem(attr: str) -> str:
    """The problem of an attribute that starts with an underscore."""
    return (f"`{attr}` is not allowed: templates may not reach Python internals "
            "or private attributes")

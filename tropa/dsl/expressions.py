"""Sandboxed Jinja2 for conditions (`where`, `if`) and message texts.

Everything a marketer writes is rendered in a `SandboxedEnvironment` with strict undefined
variables, so a typo is an error instead of an empty string, and Python internals are out
of reach. Validation catches what can be known before a run: syntax, unknown roots,
attributes that start with an underscore; it only parses, never evaluates. Renders are
bounded in work and size (see `tropa.dsl.sandbox`), and compiled templates are cached.
"""

from __future__ import annotations

import contextlib
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes, pass_context
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.parser import Parser
from jinja2.runtime import Context

from tropa.dsl.quickcheck import (
    private_problem,
    simple_condition_problems,
    simple_template_problems,
)
from tropa.dsl.redact import data_failure, kind_of, scrub
from tropa.dsl.sandbox import BoundedEnvironment, bounded

ROOTS = ("customer", "event", "steps", "journey")


def _customer_field(ctx: Context, name: str) -> Any:
    customer = ctx.get("customer")
    return customer.get(name) if isinstance(customer, dict) else None


# Error texts name the filter and the kind of value, never the value: they reach workflow
# history and logs, and the value may be a customer's phone or email.
@pass_context
def _date_filter(ctx: Context, value: Any, fmt: str = "%d.%m.%Y") -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ExpressionError("`date` needs a date or an ISO timestamp, got a text "
                                  "that is not one") from None
    if isinstance(value, datetime) and value.tzinfo is not None:
        # A moment is shown on the customer's own calendar: a burn at 21:00 UTC is the next
        # day in Vladivostok.
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            value = value.astimezone(ZoneInfo(str(_customer_field(ctx, "time_zone") or "UTC")))
    if isinstance(value, datetime | date):
        return value.strftime(fmt)
    raise ExpressionError(f"`date` needs a date or an ISO timestamp, got {kind_of(value)}")


# Digit group separators by language; others group with a no-break space as Russian does.
_GROUPS = {"en": ",", "de": ".", "es": ".", "it": ".", "pt": ".", "tr": ".", "nl": "."}


@pass_context
def _points_filter(ctx: Context, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ExpressionError(f"`points` needs a whole number, got {kind_of(value)}")
    try:
        number = int(value)
    except ValueError:
        raise ExpressionError("`points` needs a whole number, got a text that is not "
                              "one") from None
    language = str(_customer_field(ctx, "locale") or "ru").split("-")[0].split("_")[0].lower()
    return f"{number:,}".replace(",", _GROUPS.get(language, "\u00a0"))


def _money_filter(value: Any, currency: str = "") -> str:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except ArithmeticError:
        raise ExpressionError(f"`money` needs a number, got {kind_of(value)}") from None
    text = f"{amount:,.2f}".replace(",", " ")
    return f"{text} {currency}".strip()


def _environment() -> BoundedEnvironment:
    env = BoundedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters["date"] = _date_filter
    env.filters["money"] = _money_filter
    env.filters["points"] = _points_filter
    env.bound_filters()
    return env


ENV = _environment()
_TOO_DEEP = "the expression nests brackets too deeply; simplify it"
# Names a template may use besides ROOTS without declaring them.
_BUILTIN_NAMES = frozenset({*ENV.globals, "loop", "caller", "varargs", "kwargs"})


class ExpressionError(ValueError):
    """A template or condition cannot be used; the message says why and how to fix it."""


def check_template(source: str) -> list[str]:
    """Problems of a message template or condition, found without rendering it."""
    return list(_check_template(source))


@lru_cache(maxsize=4096)
def _check_template(source: str) -> tuple[str, ...]:
    simple = simple_template_problems(source)
    if simple is not None:
        return simple
    try:
        tree = ENV.parse(source)  # parse only: nothing is evaluated or compiled
    except TemplateSyntaxError as exc:
        return (f"template does not parse: {exc.message}",)
    except RecursionError:
        return (_TOO_DEEP,)
    return tuple(_check_tree(tree))


def _check_tree(tree: nodes.Node) -> list[str]:
    problems: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attr = (node.attr if isinstance(node, nodes.Getattr)
                else _const_key(node) if isinstance(node, nodes.Getitem) else None)
        if isinstance(attr, str) and attr.startswith("_"):
            problems.append(private_problem(attr))
    unknown = sorted(_free_names(tree) - set(ROOTS))
    for name in unknown:
        problems.append(
            f"unknown variable `{name}`; templates can use {', '.join(ROOTS)} "
            f"(for example `customer.first_name` or `event.data.{name}`)"
        )
    return problems


def _free_names(tree: nodes.Node) -> set[str]:
    """Variables a template reads without setting them itself (a syntax-tree walk, which
    is much cheaper than Jinja's code-generating `meta.find_undeclared_variables`)."""
    loaded: set[str] = set()
    stored: set[str] = set()
    for name in tree.find_all(nodes.Name):
        (loaded if name.ctx == "load" else stored).add(name.name)
    return loaded - stored - _BUILTIN_NAMES


def _const_key(node: nodes.Getitem) -> Any:
    return node.arg.value if isinstance(node.arg, nodes.Const) else None


def check_condition(source: str) -> list[str]:
    """Problems of a condition (`if`, `where`): an expression, not a `{{ }}` template."""
    return list(_check_condition(source))


@lru_cache(maxsize=4096)
def _check_condition(source: str) -> tuple[str, ...]:
    stripped = source.strip()
    if stripped.startswith("{{") and stripped.endswith("}}"):
        stripped = stripped[2:-2]
    simple = simple_condition_problems(stripped)
    if simple is not None:
        return simple
    try:
        # Parse the expression as `compile_expression` would, but do not compile it: the
        # compiler may evaluate constant parts, and validation never evaluates anything.
        parser = Parser(ENV, stripped, state="variable")
        expression = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)
    except TemplateSyntaxError as exc:
        return (f"condition does not parse: {exc.message}",)
    except RecursionError:
        return (_TOO_DEEP,)
    return tuple(_check_tree(nodes.Output([expression])))  # the walk skips its root


@lru_cache(maxsize=1024)
def _template(source: str) -> Template:
    return ENV.from_string(source)


@lru_cache(maxsize=1024)
def _expression(source: str) -> TemplateExpression:
    return ENV.compile_expression(source, undefined_to_none=False)


def _plain(source: str) -> bool:
    """Whether Jinja would give `source` back unchanged: no tag, expression or comment, and
    no line ending it rewrites (it turns CR LF into LF and drops one trailing newline)."""
    return "{" not in source and "\r" not in source and not source.endswith("\n")


def render(source: str, context: dict[str, Any]) -> str:
    """Render a message text; raise ExpressionError naming the missing value or refusal."""
    if _plain(source):
        return source
    try:
        with bounded():
            return _template(source).render(**context)
    except UndefinedError as exc:
        raise ExpressionError("template uses a value this customer lacks: "
                              f"{scrub(exc.message or '', source)}") from None
    except SecurityError as exc:
        raise ExpressionError(f"template refused by the sandbox: {scrub(str(exc), source)}"
                              ) from None
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"template does not parse: {exc.message}") from exc
    except ExpressionError:
        raise
    except Exception as exc:
        # Data the template did not expect (a text where a number belongs, say): retrying
        # cannot help, so it is a content error like the others. Not chained (`from None`):
        # the cause's text would quote the value into history.
        raise ExpressionError(data_failure("template", exc)) from None


def evaluate(condition: str, context: dict[str, Any]) -> bool:
    """Evaluate a condition to a boolean; a missing value counts as false."""
    stripped = condition.strip()
    if stripped.startswith("{{") and stripped.endswith("}}"):
        stripped = stripped[2:-2]
    try:
        with bounded():
            return bool(_expression(stripped)(**context))
    except UndefinedError:
        return False
    except SecurityError as exc:
        raise ExpressionError(f"condition refused by the sandbox: {scrub(str(exc), condition)}"
                              ) from None
    except ExpressionError:
        raise
    except Exception as exc:
        # A condition is compiled inside a wrapper template: its line numbers mean nothing.
        raise ExpressionError(data_failure("condition", exc, lines=False)) from None

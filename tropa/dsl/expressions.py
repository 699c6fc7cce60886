"""Sandboxed Jinja2 for conditions (`where`, `if`) and message texts.

Everything a marketer writes is rendered in a `SandboxedEnvironment` with strict undefined
variables, so a typo is an error instead of an empty string, and Python internals are out
of reach. Validation catches what can be known before a run: syntax, unknown roots,
attributes that start with an underscore.
"""

from __future__ import annotations

import contextlib
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes, pass_context
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from tropa.dsl.redact import data_failure, kind_of, scrub

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


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters["date"] = _date_filter
    env.filters["money"] = _money_filter
    env.filters["points"] = _points_filter
    return env


ENV = _environment()


class ExpressionError(ValueError):
    """A template or condition cannot be used; the message says why and how to fix it."""


def check_template(source: str) -> list[str]:
    """Problems of a message template or condition, found without rendering it."""
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError as exc:
        return [f"template does not parse: {exc.message}"]
    problems: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attr = node.attr if isinstance(node, nodes.Getattr) else _const_key(node)
        if isinstance(attr, str) and attr.startswith("_"):
            problems.append(
                f"`{attr}` is not allowed: templates may not reach Python internals "
                "or private attributes"
            )
    unknown = sorted(meta.find_undeclared_variables(tree) - set(ROOTS))
    for name in unknown:
        problems.append(
            f"unknown variable `{name}`; templates can use {', '.join(ROOTS)} "
            f"(for example `customer.first_name` or `event.data.{name}`)"
        )
    return problems


def _const_key(node: nodes.Getitem) -> Any:
    return node.arg.value if isinstance(node.arg, nodes.Const) else None


def check_condition(source: str) -> list[str]:
    """Problems of a condition (`if`, `where`): an expression, not a `{{ }}` template."""
    stripped = source.strip()
    if stripped.startswith("{{") and stripped.endswith("}}"):
        stripped = stripped[2:-2]
    try:
        ENV.compile_expression(stripped)
    except TemplateSyntaxError as exc:
        return [f"condition does not parse: {exc.message}"]
    return check_template("{{ " + stripped + " }}")


def render(source: str, context: dict[str, Any]) -> str:
    """Render a message text; raise ExpressionError naming the missing value or refusal."""
    try:
        return ENV.from_string(source).render(**context)
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
        return bool(ENV.compile_expression(stripped, undefined_to_none=False)(**context))
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

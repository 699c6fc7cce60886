"""A Jinja sandbox with bounds: nothing is evaluated at compile time, and a render has a
budget of work and of output size, so a template cannot stall or exhaust a process.

The bounds (documented in docs/journeys.md, "Limits"):
- a value a template builds (text, list) holds at most `MAX_VALUE` items or characters;
- a render produces at most `MAX_OUTPUT` characters;
- a render spends at most `MAX_WORK` units: each loop iteration costs one unit plus one per
  100 characters of literal text in the loop body, each call one unit, each macro call
  `MACRO_COST` units;
- `range()` gives at most `MAX_RANGE` numbers; numbers keep below 2**`MAX_INT_BITS`.

The budget counts work, not wall time, so a condition evaluates the same way on every replay;
callers that must answer quickly (the API) also put a time bound around the whole render.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from jinja2 import Environment, nodes, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, Macro
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import Namespace

MAX_VALUE = 1_000_000
MAX_OUTPUT = 1_000_000
MAX_WORK = 100_000
MAX_RANGE = 10_000
MAX_INT_BITS = 4096
MAX_FORMAT_WIDTH = 10_000
MACRO_COST = 20

_FORMAT_NUMBER = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d+))?|\{[^{}]*?:[^{}]*?(\d+)")
_NESTED_FORMAT = re.compile(r"\{[^{}]*:[^{}]*\{")
# Filters and text methods whose number arguments are sizes of what they build.
_SIZED_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice"})
_SIZED_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_LOOP_FILTER = "tropa_loop"


class LimitExceeded(SecurityError):
    """A template went past one of the render bounds; the message names which."""


class _Budget:
    def __init__(self) -> None:
        self.work = 0
        self.output = 0

    def spend(self, units: int) -> None:
        self.work += units
        if self.work > MAX_WORK:
            raise LimitExceeded(f"the template does too much work (more than {MAX_WORK} loop "
                                "iterations and calls); loop over less data")

    def emit(self, size: int) -> None:
        self.output += size
        if self.output > MAX_OUTPUT:
            raise LimitExceeded(f"the template's output is longer than {MAX_OUTPUT} characters")


_BUDGET: ContextVar[_Budget | None] = ContextVar("tropa_template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # a render outside `bounded()`: give it a budget of its own
        budget = _Budget()
        _BUDGET.set(budget)
    return budget


class _Bounded:
    """Context manager giving the code inside a fresh budget."""

    def __enter__(self) -> _Budget:
        budget = _Budget()
        self._token = _BUDGET.set(budget)
        return budget

    def __exit__(self, *exc: object) -> None:
        _BUDGET.reset(self._token)


def bounded() -> _Bounded:
    """`with bounded(): ...` renders with a fresh work and output budget."""
    return _Bounded()


def check_size(value: Any) -> Any:
    """Refuse a text, list or mapping larger than MAX_VALUE; return the value."""
    if isinstance(value, str | list | tuple | dict | set | frozenset | bytes):
        if len(value) > MAX_VALUE:
            raise LimitExceeded(f"the template builds a value of {len(value)} items or "
                                f"characters; at most {MAX_VALUE}")
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise LimitExceeded("the template builds a number that is too large")
    return value


def _check_format(template: str) -> None:
    if "{" in template and _NESTED_FORMAT.search(template):
        raise LimitExceeded("a format width given by an argument (`{:{}}`)")
    for match in _FORMAT_NUMBER.finditer(template):
        for number in match.groups():
            if number and int(number) > MAX_FORMAT_WIDTH:
                raise LimitExceeded(f"a format width or precision above {MAX_FORMAT_WIDTH}")


def _check_args(args: Iterable[Any]) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_VALUE:
            raise LimitExceeded(f"a number argument above {MAX_VALUE}")


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict) else 0


def _check_join(separator: Any, items: Any) -> None:
    if isinstance(items, list | tuple | str):
        estimate = _sized(separator) * len(items) + sum(_sized(i) for i in items)
        if estimate > MAX_VALUE:
            raise LimitExceeded(f"the template builds a text longer than {MAX_VALUE}")


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        count = text.count(old) if old else len(text) + 1
        if len(text) + count * len(new) > MAX_VALUE:
            raise LimitExceeded(f"the template builds a text longer than {MAX_VALUE}")


def _bounded_filter(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        _budget().spend(1)
        plain = [a for a in args if not isinstance(a, EvalContext | Environment | Context)]
        if name in _SIZED_FILTERS:
            _check_args([*plain[1:], *kwargs.values()])
        if name == "format" and plain and isinstance(plain[0], str):
            _check_format(plain[0])
        elif name == "replace" and len(plain) >= 3:
            _check_replace(plain[0], plain[1], plain[2])
        elif name == "join" and plain:
            _check_join(plain[1] if len(plain) > 1 else kwargs.get("d", ""), plain[0])
        return check_size(func(*args, **kwargs))

    return call


def _loop(items: Any, cost: int = 1) -> Iterator[Any]:
    """Every `for` loop iterates through here, spending budget per iteration."""
    budget = _budget()
    for item in items:
        budget.spend(cost)
        yield item


def _range(*args: int) -> range:
    _check_args(args)
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitExceeded(f"range() of {len(numbers)} numbers; at most {MAX_RANGE}")
    return numbers


class _Namespace(Namespace):
    """`namespace()` whose attributes keep to the value bound."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, check_size(value))


@pass_eval_context
def _finalize(_ctx: EvalContext, value: Any) -> Any:
    # Declared with a context so Jinja never folds an output into a constant at compile time.
    if isinstance(value, str):
        _budget().emit(len(value))
    return value


def _concat(parts: Iterable[Any]) -> str:
    items = [str(p) for p in parts]
    if sum(len(i) for i in items) > MAX_VALUE:
        raise LimitExceeded(f"the template builds a text longer than {MAX_VALUE}")
    return "".join(items)


class _Generator(CodeGenerator):
    """Concatenation (`~`) goes through the size check."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802
        self.write("environment.tropa_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _literal_size(node: nodes.Node) -> int:
    return sum(len(n.data) for n in node.find_all(nodes.TemplateData))


def _meter_loops(tree: nodes.Node) -> None:
    """Wrap every `for` loop's iterable so each iteration spends budget."""
    for loop in tree.find_all(nodes.For):
        cost = 1 + sum(_literal_size(n) for n in loop.body) // 100
        loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [nodes.Const(cost)], [], None, None,
                                 lineno=loop.lineno)


class BoundedEnvironment(SandboxedEnvironment):
    """Sandboxed Jinja with no compile-time evaluation and bounded renders."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "%", "+", "//"})

    def __init__(self, **options: Any) -> None:
        super().__init__(optimized=False, finalize=_finalize, **options)
        self.globals.clear()
        self.globals.update(range=_range, dict=dict, namespace=_Namespace)

    def bound_filters(self) -> None:
        """Wrap every filter so its arguments and result keep to the bounds; call after
        adding filters."""
        for name, func in list(self.filters.items()):
            if name != _LOOP_FILTER:
                self.filters[name] = _bounded_filter(func, name)
        self.filters[_LOOP_FILTER] = _loop

    def tropa_concat(self, parts: Iterable[Any]) -> str:
        """`a ~ b` with the size check."""
        return _concat(parts)

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        _meter_loops(source)
        return super()._generate(source, name, filename, defer_init)

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        """Arithmetic with size checks before the result is built."""
        _budget().spend(1)
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    check_size_estimate(len(seq) * max(times, 0))
        elif (operator_ == "**" and isinstance(left, int) and isinstance(right, int)
              and abs(left) > 1 and right > 0 and left.bit_length() * right > MAX_INT_BITS):
            raise LimitExceeded("the template builds a number that is too large")
        elif operator_ == "%" and isinstance(left, str):
            _check_format(left)
        elif (operator_ == "+" and isinstance(left, str | list | tuple)
              and isinstance(right, str | list | tuple)):
            check_size_estimate(len(left) + len(right))
        return check_size(super().call_binop(context, operator_, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`text.format(...)` with the format widths checked first."""
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str):
            _check_format(owner)
        return super().wrap_str_format(value)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Every call spends budget; arguments and results keep to the bounds."""
        _budget().spend(MACRO_COST if isinstance(__obj, Macro) else 1)
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name in _SIZED_METHODS:
                _check_args([*args, *kwargs.values()])
            elif name == "join" and args:
                _check_join(owner, args[0])
            elif name == "replace" and len(args) >= 2:
                _check_replace(owner, args[0], args[1])
        return check_size(super().call(__context, __obj, *args, **kwargs))


def check_size_estimate(size: int) -> None:
    """Refuse before building a value of `size` items or characters over the bound."""
    if size > MAX_VALUE:
        raise LimitExceeded(f"the template builds a value of {size} items or characters; "
                            f"at most {MAX_VALUE}")

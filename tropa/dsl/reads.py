"""What a journey's templates and conditions read of the event and of earlier steps.

The compiler records it in the Plan, so a run's input and signals carry only the event
fields the journey uses and activities get only the step outputs it reads. Anything that
cannot be pinned down (`{{ event.data }}` whole, `event.data[some_variable]`, a `{% set %}`
alias) means "all of them".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from pydantic import BaseModel

from tropa.dsl.expressions import ENV
from tropa.dsl.quickcheck import simple_condition_paths, simple_template_paths

_DICT_METHODS = {"get", "items", "keys", "values"}


@dataclass
class Reads:
    """Event data keys and step outputs read; None means all of them."""

    event_fields: set[str] | None = field(default_factory=set)
    step_outputs: set[str] | None = field(default_factory=set)

    def add_source(self, source: str, *, condition: bool) -> None:
        """Take in one template (`{{ }}` text) or condition (a bare expression)."""
        found = _source_chains(source.strip(), condition)
        if found is None:
            self.event_fields = self.step_outputs = None  # validation reports it
            return
        for root, keys in found:
            if root == "event":
                self._event(keys)
            elif root == "steps":
                self._steps(keys)

    def add_params(self, params: BaseModel) -> None:
        """Take in every template and condition of a step's (or header's) parameters."""
        for name, info in type(params).model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            fields = extra.get("x-event-fields")
            if isinstance(fields, list) and getattr(params, name) is not None:
                # A step that reads event fields itself (an order total) declares them.
                for key in fields:
                    self._event(["data", str(key)])
            self._value(getattr(params, name), condition=bool(extra.get("x-condition")),
                        marked=bool(extra.get("x-condition") or extra.get("x-template")))

    def sorted(self) -> tuple[list[str] | None, list[str] | None]:
        """(event fields, step outputs) as the Plan stores them."""
        return (None if self.event_fields is None else sorted(self.event_fields),
                None if self.step_outputs is None else sorted(self.step_outputs))

    def _value(self, value: Any, *, condition: bool, marked: bool) -> None:
        if isinstance(value, BaseModel):
            self.add_params(value)
        elif isinstance(value, str):
            # An unmarked string is read as a template only if it looks like one: a plugin
            # activity may render fields it did not mark.
            if marked or "{{" in value or "{%" in value:
                self.add_source(value, condition=condition)
        elif isinstance(value, dict):
            for item in value.values():
                self._value(item, condition=False, marked=False)
        elif isinstance(value, Iterable) and not isinstance(value, bytes):
            for item in value:
                self._value(item, condition=condition, marked=marked)

    def _event(self, keys: list[str | None]) -> None:
        if keys and keys[0] not in ("data", None):
            return  # event.type, event.occurred_at, ...
        if len(keys) >= 2 and keys[1] is not None and keys[1] not in _DICT_METHODS:
            if self.event_fields is not None:
                self.event_fields.add(keys[1])
        else:
            self.event_fields = None

    def _steps(self, keys: list[str | None]) -> None:
        if not keys or keys[0] is None:
            self.step_outputs = None
        elif self.step_outputs is not None:
            self.step_outputs.add(keys[0])
        if len(keys) >= 2 and keys[1] in ("event", None):
            self._event(keys[2:])  # a wait_for's event: steps.<id>.event.data.<key>


Chain = tuple[str, list[str | None]]


def _source_chains(text: str, condition: bool) -> list[Chain] | None:
    """The chains a template or condition reads; None if it does not parse.

    The common simple forms are read without Jinja's lexer and parser (they were most of a
    large journey's compile time); their keys are what the parser would give: a digit part
    (`items.0`) is an item lookup by number, so its key is unknown (None).
    """
    wrapped = text.startswith("{{") and text.endswith("}}")
    paths = (simple_condition_paths(text[2:-2] if wrapped else text) if condition
             else simple_template_paths(text))
    if paths is not None:
        return [_path_chain(path) for path in paths]
    if condition and not wrapped:
        text = "{{ " + text + " }}"
    try:
        tree = ENV.parse(text)
    except TemplateSyntaxError:
        return None
    found: list[Chain] = []
    _chains(tree, found)
    return found


def _path_chain(path: str) -> Chain:
    root, *keys = path.split(".")
    return root, [None if key.isdigit() else key for key in keys]


def _chains(node: nodes.Node, out: list[Chain]) -> None:
    """Every maximal `name.attr[key]...` chain below `node`, as (root name, keys)."""
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        keys: list[str | None] = []
        current: nodes.Node = node
        while isinstance(current, nodes.Getattr | nodes.Getitem):
            if isinstance(current, nodes.Getattr):
                keys.append(current.attr)
            else:
                arg = current.arg
                keys.append(arg.value if isinstance(arg, nodes.Const)
                            and isinstance(arg.value, str) else None)
                _chains(arg, out)
            current = current.node
        if isinstance(current, nodes.Name):
            out.append((current.name, list(reversed(keys))))
        else:
            _chains(current, out)
        return
    if isinstance(node, nodes.Name):
        out.append((node.name, []))
        return
    for child in node.iter_child_nodes():
        _chains(child, out)

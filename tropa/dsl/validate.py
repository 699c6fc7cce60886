"""Validation of a journey file: every problem found, each with its line, column and fix."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from tropa.dsl.expressions import check_condition, check_template
from tropa.dsl.positions import Path, SourceMap
from tropa.dsl.spec import JourneySpec
from tropa.errors import Problem
from tropa.steps.registry import Registry, StepType


@dataclass
class CheckedStep:
    """A step whose parameters validated, with its nested step lists checked too."""

    type: StepType
    params: BaseModel
    path: Path
    children: dict[str, list[CheckedStep]] = field(default_factory=dict)


@dataclass
class CheckedJourney:
    """A journey that validated: its header and steps."""

    spec: JourneySpec
    steps: list[CheckedStep]


class Validator:
    """Collects every problem of one journey file."""

    def __init__(self, registry: Registry, smap: SourceMap) -> None:
        self.registry = registry
        self.smap = smap
        self.problems: list[Problem] = []

    def journey(self, raw: Any) -> CheckedJourney | None:
        """Validate a whole file; None when anything is wrong (see `problems`)."""
        if not isinstance(raw, dict):
            self.problems.append(self.smap.problem((), "a journey file is a mapping with "
                                 "`journey:`, `trigger:` and `steps:`"))
            return None
        spec = self._model(JourneySpec, raw, ())
        self._expressions(JourneySpec, raw, ())
        steps = self.steps(raw["steps"], ("steps",)) if isinstance(raw.get("steps"), list) else []
        if spec is not None:
            self._listener_keys(spec, steps)
        if spec is None or self.problems:
            self.problems.sort(key=lambda p: (p.line or 0, p.column or 0))
            return None
        return CheckedJourney(spec=spec, steps=steps)

    def _listener_keys(self, spec: JourneySpec, steps: list[CheckedStep]) -> None:
        """A listener's own `key:` tells runs of a keyed journey apart; without a trigger
        `key:` there is nothing to match it against."""
        if spec.trigger.key is not None:
            return
        hint = ("add `key:` to the trigger (e.g. `key: \"{{ event.data.order_id }}\"`), "
                "or remove this one") if spec.trigger.kind == "event" else (
                "date and inactivity runs have no key; remove this one")
        for index, rule in enumerate(spec.exit_on):
            if rule.key is not None:
                self.problems.append(self.smap.problem(
                    ("exit_on", index, "key"), "`key:` on an `exit_on` rule needs a trigger "
                    "`key:`", at_key=True, hint=hint))
        stack = list(steps)
        while stack:
            step = stack.pop()
            field = step.type.listen_key
            if field is not None and getattr(step.params, field, None) is not None:
                self.problems.append(self.smap.problem(
                    (*step.path, step.type.name, field), f"`key:` on `{step.type.name}` "
                    "needs a trigger `key:`", at_key=True, hint=hint))
            for children in step.children.values():
                stack.extend(children)

    def steps(self, items: list[Any], path: Path) -> list[CheckedStep]:
        """Validate a list of steps, recursing into nested lists."""
        checked: list[CheckedStep] = []
        for index, item in enumerate(items):
            step = self._step(item, (*path, index))
            if step is not None:
                checked.append(step)
        return checked

    def _step(self, item: Any, path: Path) -> CheckedStep | None:
        known = ", ".join(self.registry.names())
        if not isinstance(item, dict) or len(item) != 1:
            self.problems.append(self.smap.problem(
                path, "a step is a mapping with exactly one key, the step type",
                hint=f"write for example `- wait: 1h`; step types: {known}"))
            return None
        name, value = next(iter(item.items()))
        step_type = self.registry.get(name)
        if step_type is None:
            close = difflib.get_close_matches(name, self.registry.names(), n=1, cutoff=0.5)
            guess = f"did you mean `{close[0]}`? " if close else ""
            self.problems.append(self.smap.problem(
                (*path, name), f"unknown step type `{name}`", at_key=True,
                hint=f"{guess}known step types: {known}"))
            return None
        params_path = (*path, name)
        if value is None:
            value = {}
        elif not isinstance(value, dict):
            if step_type.shorthand is None:
                self.problems.append(self.smap.problem(
                    params_path, f"`{name}` takes a mapping of parameters",
                    hint=f"e.g. {_example(step_type)}"))
                return None
            value = {step_type.shorthand: value}
            # the scalar's own position stands for the shorthand field
            self.smap.values[(*params_path, step_type.shorthand)] = self.smap.position(
                params_path)
        params = self._model(step_type.params, value, params_path)
        self._expressions(step_type.params, value, params_path)
        children = {
            key: self.steps(steps, (*params_path, *sub))
            for key, sub, steps in nested_lists(step_type, value)
        }
        if params is None:
            return None
        return CheckedStep(type=step_type, params=params, path=path, children=children)

    def _model(self, model: type[BaseModel], value: Any, path: Path) -> Any:
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            for error in exc.errors():
                self.problems.append(self._translate(model, error, path))
            return None

    def _translate(self, model: type[BaseModel], error: Any, path: Path) -> Problem:
        loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
        full = (*path, *loc)
        kind = error["type"]
        where = ".".join(str(p) for p in loc) or "this step"
        if kind == "missing":
            target = _fields_of(model, loc[:-1])
            return self.smap.problem(
                full[:-1], f"missing required field `{loc[-1]}`",
                hint=f"add `{loc[-1]}:`" + (f"; fields here: {', '.join(target)}" if target
                                            else ""))
        if kind == "extra_forbidden":
            target = _fields_of(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), target, n=1, cutoff=0.5)
            guess = f"did you mean `{close[0]}`? " if close else ""
            return self.smap.problem(full, f"unknown field `{loc[-1]}`", at_key=True,
                                     hint=f"{guess}fields here: {', '.join(target)}")
        message = str(error["msg"]).removeprefix("Value error, ")
        return self.smap.problem(full, f"`{where}`: {message}")

    def _expressions(self, model: type[BaseModel], raw: Any, path: Path) -> None:
        """Check templates and conditions on the raw values, so they are checked even when
        a neighbouring field is wrong."""
        if not isinstance(raw, dict):
            return
        for name, info in model.model_fields.items():
            key = info.alias or name
            if key not in raw:
                continue
            value = raw[key]
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            sub = _model_in(info.annotation)
            if sub is not None and isinstance(value, dict):
                self._expressions(sub, value, (*path, key))
            elif sub is not None and isinstance(value, list):
                for i, item in enumerate(value):
                    self._expressions(sub, item, (*path, key, i))
            if not isinstance(value, str):
                continue
            if extra.get("x-condition"):
                found = check_condition(value)
            elif extra.get("x-template"):
                found = check_template(value)
            else:
                continue
            for message in found:
                self.problems.append(self.smap.problem((*path, key), message))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def nested_lists(step_type: StepType, value: dict[str, Any]) -> list[tuple[str, Path, list[Any]]]:
    """The step lists inside a step's parameters: (children key, relative path, items)."""
    found: list[tuple[str, Path, list[Any]]] = []
    for spec in step_type.nested:
        if "[]." in spec:
            outer, inner = spec.split("[].", 1)
            for i, element in enumerate(value.get(outer) or []):
                if isinstance(element, dict) and isinstance(element.get(inner), list):
                    found.append((f"{outer}[{i}].{inner}", (outer, i, inner), element[inner]))
        elif isinstance(value.get(spec), list):
            found.append((spec, (spec,), value[spec]))
    return found


def _fields_of(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        info = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        current = _model_in(info.annotation) if info is not None else None
    if current is None:
        return []
    return [f.alias or n for n, f in getattr(current, "model_fields", {}).items()]


def _example(step_type: StepType) -> str:
    import yaml

    if not step_type.examples:
        return f"`{step_type.name}: {{...}}`"
    return "`" + yaml.safe_dump(step_type.examples[0], default_flow_style=True).strip() + "`"

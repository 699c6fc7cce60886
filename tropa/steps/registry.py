"""The step-type registry.

A step type is declared once: its name, parameter model, UI hints, the step lists it holds
(parameter fields marked `x-steps`), the event it listens to and what performs it: the
workflow handler of a control step, or the activity of an activity step with its timeouts
and retries. DSL validation, the Plan compiler, the interpreter, the event router, the
worker's activity list and the JSON Schema all read this registry. Third-party
packages add step types through the entry-point group `tropa.steps`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

from pydantic import BaseModel

from tropa.dsl.plan import ActivityCall, Plan, PlanStep, exit_listener
from tropa.logs import get_logger

ENTRY_POINT_GROUP = "tropa.steps"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
log = get_logger("registry")

# Built by the worker from its dependencies; returns the activity callable (an
# `@activity.defn` function) that performs the step.
ActivityFactory = Callable[["WorkerDeps"], Callable[..., Any]]


# Workflow code performing a step inside JourneyRun: gets the run (see
# `tropa.workflows.control.Runtime`) and the step, returns (outcome, detail, steps to run next).
StepHandler = Callable[[Any, PlanStep], Awaitable[tuple[str, str, list[PlanStep]]]]


class WorkerDeps:
    """What activities get from the worker: the database and provider clients."""

    def __init__(self, **services: Any) -> None:
        self.services = services

    def __getattr__(self, name: str) -> Any:
        try:
            return self.services[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


@dataclass(frozen=True)
class StepType:
    """A step type of the journey language."""

    name: str
    params: type[BaseModel]
    description: str
    kind: Literal["control", "activity"]
    label: str = ""
    shorthand: str | None = None
    """Field that a scalar value fills: `wait: 1h` means `wait: {duration: 1h}`."""
    nested: tuple[str, ...] = ()
    """Parameter fields that hold step lists (`field` or `list_field[].field`), validated and
    compiled as steps. Derived from the fields the parameter model marks `x-steps`."""
    call: ActivityCall | None = None
    """The activity call the interpreter makes for this step: activity, timeouts, retries."""
    activity: ActivityFactory | None = None
    handler: StepHandler | None = None
    """Workflow code that performs the step: every control step has one; an activity step
    needs one only when it is more than one call of `call` (`send`)."""
    listens: str | None = None
    """The parameter naming an event type this step waits for: runs get such events."""
    listen_key: str | None = None
    """The parameter holding the step's own key template: in a keyed journey it renders the
    event to the key of the run it is for (default: the trigger's key template)."""
    ui: dict[str, Any] = field(default_factory=dict)
    examples: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.nested:
            object.__setattr__(self, "nested", step_lists(self.params))


def step_lists(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of a parameter model marked `x-steps`, one level of list nesting deep."""
    found: list[str] = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        if _marked(info.json_schema_extra):
            found.append(key)
            continue
        for inner in _list_models(info.annotation):
            found += [f"{key}[].{sub}" for sub in step_lists(inner) if "[]" not in sub]
    return tuple(found)


def _marked(extra: Any) -> bool:
    return isinstance(extra, dict) and extra.get("x-steps") is True


def _list_models(annotation: Any) -> list[type[BaseModel]]:
    args = getattr(annotation, "__args__", ())
    return [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]


@dataclass(frozen=True)
class Listener:
    """Something in a run that reads signalled events: an `exit_on` rule or a listening step
    (`name` as in `EventIn.listeners`), with its own key template, if any."""

    name: str
    key: str | None


class Registry:
    """Step types by name, built-ins first, then entry-point plugins."""

    def __init__(self) -> None:
        self._types: dict[str, StepType] = {}
        self.plugins: dict[str, str] = {}
        """Step types that came from entry points: name -> entry point value."""

    def register(self, step: StepType) -> None:
        """Add a step type; a name can be taken only once."""
        if not _NAME.match(step.name):
            raise ValueError(f"step type name `{step.name}` must be lower case letters, digits "
                             "and `_`, starting with a letter (it is a YAML key)")
        if step.name in self._types:
            raise ValueError(f"step type `{step.name}` is registered twice")
        if step.kind == "activity" and (step.call is None or step.activity is None):
            raise ValueError(f"activity step type `{step.name}` needs `call` and `activity`")
        if step.kind == "control" and step.handler is None:
            raise ValueError(f"control step type `{step.name}` needs a `handler`")
        if step.call is not None:
            taken = {s.call.activity: s.name for s in self if s.call is not None}
            if step.call.activity in taken:
                raise ValueError(f"step type `{step.name}` uses activity `{step.call.activity}`, "
                                 f"already used by `{taken[step.call.activity]}`")
        self._types[step.name] = step

    def get(self, name: str) -> StepType | None:
        """The step type called `name`, if any."""
        return self._types.get(name)

    def names(self) -> list[str]:
        """Every step type name, in registration order."""
        return list(self._types)

    def __iter__(self) -> Iterator[StepType]:
        return iter(self._types.values())

    def events_listened(self, plan: Plan) -> set[str]:
        """Event types a run of `plan` may receive as signals: its `exit_on` rules and every
        step whose type declares `listens`."""
        types = {rule.event for rule in plan.exit_on}
        for step in plan.walk():
            declared = self.get(step.type)
            if declared is not None and declared.listens and step.params.get(declared.listens):
                types.add(str(step.params[declared.listens]))
        return types

    def listeners(self, plan: Plan, event_type: str) -> list[Listener]:
        """The listeners of a run of `plan` that `event_type` may reach, each with its own key
        template (None: the trigger's): `exit_on` rules, then listening steps."""
        found = [Listener(exit_listener(i), rule.key) for i, rule in enumerate(plan.exit_on)
                 if rule.event == event_type]
        for step in plan.walk():
            declared = self.get(step.type)
            if declared is not None and declared.listens and \
                    step.params.get(declared.listens) == event_type:
                key = step.params.get(declared.listen_key) if declared.listen_key else None
                found.append(Listener(step.id, str(key) if key else None))
        return found

    def activities(self, deps: WorkerDeps) -> list[Callable[..., Any]]:
        """The activity callables of every activity step type, built for a worker."""
        return [s.activity(deps) for s in self if s.activity is not None]


class PluginError(RuntimeError):
    """An installed `tropa.steps` entry point could not be loaded or gave no step types."""


def load_plugins(registry: Registry) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point `{ep.name} = {ep.value}` of group {ENTRY_POINT_GROUP}"
        try:
            loaded = ep.load()
        except Exception as exc:
            # A broken plugin must stop the worker loudly: running without a step type that
            # published journeys use would fail their runs later and far from the cause.
            raise PluginError(f"{where} failed to import: {exc!r}; fix or uninstall the "
                              "package that declares it") from exc
        found = loaded() if callable(loaded) and not isinstance(loaded, StepType) else loaded
        for step in found if isinstance(found, list | tuple) else [found]:
            if not isinstance(step, StepType):
                raise PluginError(f"{where} gave {type(step).__name__}, not a StepType "
                                  "(or a list of them, or a callable returning them)")
            if step.kind != "activity":
                # The interpreter performs control steps itself; a plugin cannot add one.
                raise PluginError(f"{where}: step type `{step.name}` has kind `{step.kind}`; "
                                  "plugins declare activity steps")
            try:
                registry.register(step)
            except ValueError as exc:
                raise PluginError(f"{where}: {exc}") from exc
            # Logged once by the worker that serves it (`log_plugins`), not by every
            # `tropa validate` or API process that builds the registry.
            registry.plugins[step.name] = ep.value


def log_plugins(reg: Registry) -> None:
    """Say which plugin step types a worker serves: one line each, at worker start."""
    for name, entry_point in reg.plugins.items():
        log.info("step_type_plugin_loaded", step_type=name, entry_point=entry_point)

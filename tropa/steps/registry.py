"""The step-type registry.

A step type is declared once: its name, parameter model, UI hints and, for activity steps,
the activity that performs it with its retry policy. DSL validation, the Plan compiler,
the worker's activity list and the JSON Schema all read this registry. Third-party
packages add step types through the entry-point group `tropa.steps`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

from pydantic import BaseModel

from tropa.dsl.plan import ActivityCall
from tropa.logs import get_logger

ENTRY_POINT_GROUP = "tropa.steps"
log = get_logger("registry")

# Built by the worker from its dependencies; returns the activity callable (an
# `@activity.defn` function) that performs the step.
ActivityFactory = Callable[["WorkerDeps"], Callable[..., Any]]


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
    """Parameter fields that hold step lists, validated and compiled as steps."""
    call: ActivityCall | None = None
    activity: ActivityFactory | None = None
    ui: dict[str, Any] = field(default_factory=dict)
    examples: tuple[dict[str, Any], ...] = ()


class Registry:
    """Step types by name, built-ins first, then entry-point plugins."""

    def __init__(self) -> None:
        self._types: dict[str, StepType] = {}

    def register(self, step: StepType) -> None:
        """Add a step type; a name can be taken only once."""
        if step.name in self._types:
            raise ValueError(f"step type `{step.name}` is registered twice")
        if step.kind == "activity" and (step.call is None or step.activity is None):
            raise ValueError(f"activity step type `{step.name}` needs `call` and `activity`")
        self._types[step.name] = step

    def get(self, name: str) -> StepType | None:
        """The step type called `name`, if any."""
        return self._types.get(name)

    def names(self) -> list[str]:
        """Every step type name, in registration order."""
        return list(self._types)

    def __iter__(self) -> Iterator[StepType]:
        return iter(self._types.values())

    def activities(self, deps: WorkerDeps) -> list[Callable[..., Any]]:
        """The activity callables of every activity step type, built for a worker."""
        return [s.activity(deps) for s in self if s.activity is not None]


def _load_plugins(registry: Registry) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        loaded = ep.load()
        found = loaded() if callable(loaded) and not isinstance(loaded, StepType) else loaded
        for step in found if isinstance(found, list | tuple) else [found]:
            if not isinstance(step, StepType):
                raise TypeError(f"entry point {ep.name} gave {type(step).__name__}, not StepType")
            registry.register(step)
            log.info("step_type_plugin_loaded", step_type=step.name, entry_point=ep.value)


_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The process-wide registry: built-in step types plus installed plugins."""
    global _REGISTRY
    if _REGISTRY is None:
        from tropa.steps import builtin

        reg = Registry()
        for step in builtin.STEP_TYPES:
            reg.register(step)
        _load_plugins(reg)
        _REGISTRY = reg
    return _REGISTRY

"""Tropa's own step types, in the order the docs list them, and the process-wide registry
of them plus installed plugins."""

from __future__ import annotations

from tropa.steps import create_task, loyalty, send, update_customer, webhook
from tropa.steps.control import CONTROL_STEPS
from tropa.steps.registry import Registry, StepType, load_plugins

STEP_TYPES: tuple[StepType, ...] = (send.STEP, *CONTROL_STEPS, update_customer.STEP,
                                   webhook.STEP, *loyalty.STEPS, create_task.STEP)


def build_registry(*, plugins: bool = True) -> Registry:
    """A fresh registry of the built-in step types, plus installed plugins unless told not.

    `plugins=False` gives the language as Tropa ships it, whatever is installed; the
    checked-in `ui_schema/` is generated from that.
    """
    reg = Registry()
    for step in STEP_TYPES:
        reg.register(step)
    if plugins:
        load_plugins(reg)
    return reg


_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The process-wide registry: built-in step types plus installed plugins."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = build_registry(plugins=True)
    return _REGISTRY

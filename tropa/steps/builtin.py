"""Tropa's own step types, in the order the docs list them."""

from __future__ import annotations

from tropa.steps import create_task, loyalty, send, update_customer, webhook
from tropa.steps.control import CONTROL_STEPS
from tropa.steps.registry import StepType

STEP_TYPES: tuple[StepType, ...] = (send.STEP, *CONTROL_STEPS, update_customer.STEP,
                                   webhook.STEP, *loyalty.STEPS, create_task.STEP)

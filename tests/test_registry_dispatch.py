"""One registry: control steps are declared like activity steps and the interpreter
dispatches through it; the declared `send` call is the call made; the Web UI reads like
the journey (run, timer and activity summaries)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tropa.dsl.compiler import compile_journey
from tropa.settings import Settings
from tropa.steps.builtin import build_registry, registry
from tropa.steps.control import WaitParams
from tropa.steps.registry import Registry, StepType
from tropa.workflows.journey_run import JourneyRun

JOURNEY = """
journey: summaries
settings: {category: service}
trigger: {event: cart.updated}
steps:
  - wait: 1h
  - send: {channel: sms, text: "Your cart"}
  - wait_for: {event: order.paid, timeout: 1d}
"""


def test_every_step_type_is_performed_by_what_the_registry_declares() -> None:
    reg = build_registry(plugins=False)
    for step in reg:
        if step.kind == "control":
            assert step.handler is not None, step.name
        else:
            assert step.call is not None and step.activity is not None, step.name
    assert not [name for name in dir(JourneyRun) if name.startswith("_do_")]
    with pytest.raises(ValueError, match="needs a `handler`"):
        Registry().register(StepType(name="nap", params=WaitParams, kind="control",
                                     description="no handler"))


def test_step_lists_and_listened_events_are_declared_once() -> None:
    reg = registry()
    assert reg.get("wait_for").nested == ("on_timeout",)  # type: ignore[union-attr]
    assert reg.get("branch").nested == ("then", "else")  # type: ignore[union-attr]
    assert reg.get("split").nested == ("arms[].steps",)  # type: ignore[union-attr]
    plan = compile_journey("""
journey: listens
trigger: {event: a}
exit_on: [b]
steps:
  - branch: {if: "true", then: [{wait_for: {event: c, timeout: 1h}}]}
""")
    assert reg.events_listened(plan) == {"b", "c"}


def _summary(event: HistoryEvent) -> str:
    from temporalio.converter import PayloadConverter

    payload = event.user_metadata.summary
    return str(PayloadConverter.default.from_payloads([payload])[0]) if payload.data else ""


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


async def test_the_send_call_is_the_declared_one_and_the_web_ui_reads_like_the_journey(
        harness: Harness, time_skipping: WorkflowEnvironment) -> None:
    version = harness.publish(JOURNEY)
    add_customer(harness.engine, "c-1")
    await harness.fire("cart.updated", "c-1")
    await harness.at("journey/summaries/c-1", "1-wait")
    await time_skipping.sleep(timedelta(hours=2))
    await harness.at("journey/summaries/c-1", "3-wait_for")
    await time_skipping.sleep(timedelta(days=2))
    status = await harness.ended("journey/summaries/c-1")
    assert [s.outcome for s in status.steps] == ["waited", "accepted", "timed_out"]

    handle = harness.handle("journey/summaries/c-1")
    events = (await handle.fetch_history()).events
    # (the test server keeps the run's static summary in its first event, not in describe)
    assert _summary(events[0]) == f"summaries · version {version} · customer c-1"
    timers = [_summary(e) for e in events if e.HasField("timer_started_event_attributes")]
    activities = [(e.activity_task_scheduled_event_attributes, _summary(e)) for e in events
                  if e.HasField("activity_task_scheduled_event_attributes")]
    assert timers[0] == "1-wait: 1h"
    assert timers[-1].startswith("3-wait_for: wait_for order.paid until ")
    assert [summary for _, summary in activities] == ["2-send: sms",
                                                     "2-send: sms delivery round 1"]
    declared = registry().get("send").call  # type: ignore[union-attr]
    assert declared is not None
    prepare = activities[0][0]
    assert prepare.start_to_close_timeout.ToSeconds() == declared.start_to_close_seconds
    assert prepare.retry_policy.maximum_interval.ToSeconds() == \
        declared.retry.maximum_interval_seconds

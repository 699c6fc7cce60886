"""A condition that cannot be evaluated on the data at hand does not hold, and the run goes on.

Text compared with a number in an `exit_on` rule, a `wait_for` condition or a `branch` used
to fail the whole workflow execution; now it counts as "does not hold", the reason is in
the step's detail, and the router (which skips such a trigger) and the interpreter agree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tropa.settings import Settings

JOURNEY = """
journey: big-spender
trigger: {event: cart.updated, where: "event.data.total > 100"}
exit_on: [{event: order.placed, where: "event.data.total > 1000"}]
steps:
  - branch:
      if: event.data.total > 100
      then: [{update_customer: {add_tags: [big]}}]
  - wait_for: {event: order.paid, where: "event.data.total > 100", timeout: 1d}
  - wait: 2d
"""


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with running(time_skipping, engine, settings, task_queue) as h:
        h.publish(JOURNEY)
        add_customer(h.engine, "c-1")
        yield h


async def test_conditions_that_cannot_be_evaluated_do_not_hold_and_the_run_goes_on(
        harness: Harness) -> None:
    run = "journey/big-spender/c-1"
    # The router skips a trigger whose condition cannot be evaluated...
    skipped = await harness.fire("cart.updated", "c-1", {"total": "lots"})
    assert skipped.started == []
    assert "condition failed on this data" in skipped.skipped[0]["reason"]
    # ...and the interpreter counts such a condition as not holding.
    started = await harness.fire("cart.updated", "c-1", {"total": 500})
    assert started.started == [run]
    await harness.at(run, "2-wait_for")
    await harness.fire("order.placed", "c-1", {"total": "a lot"})  # exit_on: cannot compare
    await harness.fire("order.paid", "c-1", {"total": "n/a"})  # wait_for: cannot compare
    await harness.fire("order.paid", "c-1", {"total": 300})
    await harness.at(run, "3-wait")

    status = await harness.status(run)
    assert status.state == "running"
    wait_for = status.steps[2]
    assert (wait_for.step_id, wait_for.outcome) == ("2-wait_for", "received")
    assert "`event.data.total > 100` could not be evaluated on event" in wait_for.detail
    assert "it counts as not holding" in wait_for.detail
    assert "`event.data.total > 1000` could not be evaluated" in wait_for.detail

    await harness.fire("order.placed", "c-1", {"total": 5000})
    final = await harness.ended(run)
    assert final.state == "exited"
    assert final.steps[-1].outcome == "exited"


async def test_a_branch_on_data_it_cannot_compare_takes_else(
        harness: Harness, time_skipping: WorkflowEnvironment) -> None:
    harness.publish("""
journey: branchy
trigger: {event: cart.updated}
steps:
  - branch:
      if: event.data.total > 100
      then: [{update_customer: {add_tags: [big]}}]
      else: [{wait: 1h}]
""")
    await harness.fire("cart.updated", "c-1", {"total": "lots"})
    await harness.at("journey/branchy/c-1", "1-branch/else/1-wait")
    await time_skipping.sleep(timedelta(hours=2))

    status = await harness.ended("journey/branchy/c-1")

    assert status.state == "completed"
    assert status.steps[0].outcome == "else"
    assert "could not be evaluated" in status.steps[0].detail
    assert [s.step_id for s in status.steps] == ["1-branch", "1-branch/else/1-wait"]

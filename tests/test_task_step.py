"""The `create_task` step on the time-skipping server with a real worker and the sandbox:
one task per run and step, announced once to the assignee even when the activity retries,
its text kept out of the run's history; an unknown assignee or a missing contact is
recorded on the task and the run goes on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.harness import Harness, running
from tests.support.history import run_text
from tests.support.journeys import add_customer
from tests.support.waiting import eventually
from tropa.settings import Assignee, Settings
from tropa.store.db import session_scope
from tropa.store.task_models import Task

HANDOFF = """
journey: handoff
trigger: {event: cart.updated}
settings: {category: service}
steps:
  - create_task:
      text: "Call {{ customer.first_name }} about cart {{ event.data.cart_id }}"
      assignee: manager
      due_in: 4h
"""

NOBODY = """
journey: nobody
trigger: {event: cart.updated}
steps:
  - create_task: {text: "Ring {{ customer.first_name }}", assignee: nobody, notify: [email]}
  - create_task: {text: "Check the stock", assignee: cashier, notify: [email, sms]}
"""


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    settings.tasks.assignees = {"manager": Assignee(email="manager@shop.example"),
                                "cashier": Assignee(email="till@shop.example")}
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


def tasks(engine: sa.Engine) -> list[Task]:
    with session_scope(engine) as session:
        return list(session.exec(select(Task).order_by(col(Task.id))).all())


async def test_task_created_once_and_announced_once_across_a_retry(
        harness: Harness, sandbox: SandboxServer) -> None:
    harness.publish(HANDOFF)
    add_customer(harness.engine, "c-1")
    sandbox.box.faults.down = True  # the first attempts find the email provider down

    await harness.fire("cart.updated", "c-1", {"cart_id": "k9"})
    await eventually(lambda: len([c for c in sandbox.box.calls if c["channel"] == "email"])
                     >= 2, message="the announcement retried")
    with sandbox.box.lock:
        sandbox.box.faults.down = False
    status = await harness.finish("journey/handoff/c-1")

    assert status.state == "completed"
    [task] = tasks(harness.engine)
    assert (task.text, task.assignee, task.status, task.customer_id) == (
        "Call Anna about cart k9", "manager", "open", "c-1")
    assert task.due_at is not None and task.due_at - task.created_at == timedelta(hours=4)
    assert (task.announce_status, task.announcements["email"]["status"]) == ("sent", "sent")
    [mail] = sandbox.sent("email")
    assert mail["to"] == "manager@shop.example"
    assert "Call Anna about cart k9" in str(mail["text"])
    assert str(mail["subject"]).startswith(f"Task {task.id}: Call Anna")
    assert (status.steps[-1].outcome, status.steps[-1].detail) == (
        "created", f"task {task.id}, announce sent")
    history = await run_text(harness.handle("journey/handoff/c-1"))
    assert "Call Anna" not in history and "manager@shop.example" not in history


async def test_unknown_assignee_or_missing_contact_is_recorded_not_failed(
        harness: Harness, sandbox: SandboxServer) -> None:
    harness.publish(NOBODY)
    add_customer(harness.engine, "c-2")

    await harness.fire("cart.updated", "c-2")
    status = await harness.finish("journey/nobody/c-2")

    assert status.state == "completed"
    assert [s.outcome for s in status.steps] == ["created", "created"]
    nobody, cashier = tasks(harness.engine)
    assert (nobody.text, nobody.announce_status, nobody.status) == (
        "Ring Anna", "unknown_assignee", "open")
    assert cashier.announce_status == "partial"
    assert {c: a["status"] for c, a in cashier.announcements.items()} == {
        "email": "sent", "sms": "no_contact"}
    assert [m["to"] for m in sandbox.sent()] == ["till@shop.example"]

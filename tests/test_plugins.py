"""A step type from outside: the `slack` step of tests/plugins/tropa_slack_step.

The package is installed into the test environment (`make test` installs it) and declares
its step under the entry-point group `tropa.steps`; nothing in Tropa names it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request, Response
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import running
from tests.support.journeys import add_customer
from tests.support.servers import serve
from tests.support.temporal import time_skipping_server
from tropa.dsl.compiler import compile_journey
from tropa.errors import JourneyInvalid
from tropa.settings import Settings
from tropa.steps.builtin import build_registry, registry
from tropa.steps.registry import ENTRY_POINT_GROUP
from tropa.ui_schema import journey_schema

VIP = """
journey: vip-alert
trigger: {event: order.placed, where: "event.data.total > 1000"}
settings: {category: service}
steps:
  - wait: 1h
  - slack: {text: "VIP {{ customer.first_name }} paid {{ event.data.total }}", channel: "#sales"}
  - slack: "Follow-up for order {{ event.data.order_id }}"
"""


@dataclass
class Receiver:
    """A stand-in for Slack's webhook endpoint on a real port: records what it accepts."""

    fail_first: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.json()
            with self.lock:
                if self.refused < self.fail_first:
                    self.refused += 1
                    return Response("busy", status_code=503)
                self.posts.append({**body, "key": request.headers.get("idempotency-key")})
            return Response("ok")

        return app


@pytest.fixture(scope="module")
async def own_time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this module's own.

    Runs that earlier tests leave behind on the session's server (their workers gone) can
    hold its clock still, so a wait here would never end; a fresh server has none.
    """
    async with time_skipping_server() as env:
        yield env


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    box = Receiver(fail_first=1)
    with serve(box.app()) as url:
        yield box, f"{url}/hook"


def test_the_package_declares_its_step_under_the_entry_point_group() -> None:
    declared = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert declared.get("slack") == "tropa_slack_step:STEP", (
        "install the test plugin: .venv/bin/pip install -e tests/plugins/tropa_slack_step")
    assert "slack" in registry().names()
    assert "slack" not in build_registry(plugins=False).names()


def test_plugin_step_validates_in_yaml() -> None:
    plan = compile_journey(VIP, "vip.yaml")
    slack_steps = [s for s in plan.steps if s.type == "slack"]
    assert [s.params for s in slack_steps] == [
        {"text": "VIP {{ customer.first_name }} paid {{ event.data.total }}", "channel": "#sales"},
        {"text": "Follow-up for order {{ event.data.order_id }}", "channel": None}]
    assert slack_steps[0].call is not None
    assert slack_steps[0].call.activity == "slack.post_message"

    bad = ("journey: j\ntrigger: {event: go}\nsteps:\n"
           "  - slack: {text: \"{{ custmer.first_name }}\", chanel: \"#sales\"}\n")
    with pytest.raises(JourneyInvalid) as caught:
        compile_journey(bad, "j.yaml")
    messages = [p.render() for p in caught.value.problems]
    column = bad.splitlines()[3].index("chanel") + 1
    assert any(m.startswith(f"j.yaml:4:{column}: error: unknown field `chanel`") and
               "did you mean `channel`?" in m for m in messages), messages
    assert any(m.startswith("j.yaml:4:") and "unknown variable `custmer`" in m
               for m in messages), messages


def test_plugin_step_appears_in_the_schema_generated_with_plugins() -> None:
    schema = journey_schema(build_registry(plugins=True))
    slack = schema["$defs"]["step"]["properties"]["slack"]
    assert slack["title"] == "Slack message"
    assert slack["description"].startswith("Post a message to a Slack channel")
    params = schema["$defs"]["SlackParams"]["properties"]
    assert params["text"]["x-template"] is True
    assert params["channel"]["examples"] == ["#sales"]
    assert "slack" not in journey_schema(build_registry(plugins=False))["$defs"]["step"][
        "properties"]


async def test_plugin_step_runs_in_a_journey_on_a_real_worker(
        own_time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
        task_queue: str, receiver: tuple[Receiver, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    box, url = receiver
    # The plugin reads its own settings section when the worker builds its activity.
    monkeypatch.setenv("TROPA_SLACK_WEBHOOK_URL", url)
    async with running(own_time_skipping, engine, settings, task_queue) as harness:
        harness.publish(VIP)
        add_customer(engine, "c-1", first_name="Vera")
        routed = await harness.fire("order.placed", "c-1", {"total": 4200, "order_id": "o-7"})
        assert routed.started == ["journey/vip-alert/c-1"]

        status = await harness.finish("journey/vip-alert/c-1")

    assert status.state == "completed"
    assert [(r.step_id, r.outcome) for r in status.steps] == [
        ("1-wait", "waited"), ("2-slack", "posted"), ("3-slack", "posted")]
    # the first post met a 503 and was retried; each message arrived once
    assert box.refused == 1
    assert [(p["text"], p.get("channel")) for p in box.posts] == [
        ("VIP Vera paid 4200", "#sales"), ("Follow-up for order o-7", None)]
    assert [p["key"].rsplit("/", 1)[-1] for p in box.posts] == ["2-slack", "3-slack"]

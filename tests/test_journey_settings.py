"""Journey-level `settings.quiet_hours` and `settings.frequency_cap`, on top of the system's
policy and a step's own quiet hours: the stricter wins. On the time-skipping server with a
real worker and the sandbox providers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.delivery import delivering, messages
from tests.support.harness import Harness
from tests.support.journeys import add_customer
from tropa.dsl.compiler import compile_journey
from tropa.errors import JourneyInvalid
from tropa.settings import Settings

ZONE = ZoneInfo("Asia/Vladivostok")
EVENING = """
journey: {name}
trigger: {{event: go}}
settings: {{category: service{settings}}}
steps:
  - wait_until: "22:30"
  - send: {{channel: sms, text: "Your order is ready"{step}}}
"""
NIGHT = ', quiet_hours: {from: "21:00", to: "09:00", timezone: customer}'


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with delivering(time_skipping, engine, settings, task_queue) as h:
        add_customer(h.engine, "c-1", time_zone="Asia/Vladivostok")
        yield h


def _local(moment: object) -> str:
    assert moment is not None
    return moment.astimezone(ZONE).strftime("%H:%M")  # type: ignore[attr-defined]


async def test_a_send_at_2230_local_waits_until_0900_local(
        harness: Harness, sandbox: SandboxServer) -> None:
    harness.publish(EVENING.format(name="quiet", settings=NIGHT, step=""))
    harness.publish(EVENING.format(name="plain", settings="", step=""))
    await harness.fire("go", "c-1")

    quiet = await harness.finish("journey/quiet/c-1")
    plain = await harness.finish("journey/plain/c-1")

    send = quiet.steps[1]
    assert (send.step_id, send.outcome) == ("2-send", "accepted")
    assert (_local(send.started_at), _local(send.finished_at)) == ("22:30", "09:00")
    assert timedelta(hours=10, minutes=29) <= send.finished_at - send.started_at <= \
        timedelta(hours=10, minutes=31)  # type: ignore[operator]
    # the journey without settings sends at 22:30, as before
    assert (plain.steps[1].outcome, _local(plain.steps[1].finished_at)) == ("accepted", "22:30")
    assert [m["text"] for m in sandbox.sent("sms")] == ["Your order is ready"] * 2
    logged = {m.journey: m for m in messages(harness.engine)}
    assert _local(logged["quiet"].created_at) == "09:00"
    assert _local(logged["plain"].created_at) == "22:30"


async def test_the_stricter_of_the_journey_and_step_windows_wins(harness: Harness) -> None:
    # The journey's night ends at 09:00, the step's own window runs 08:30-10:00: the send
    # is not let out of one window into the other.
    harness.publish(EVENING.format(
        name="both", settings=NIGHT, step=', quiet_hours: {from: "08:30", to: "10:00"}'))
    await harness.fire("go", "c-1")

    status = await harness.finish("journey/both/c-1")

    assert (_local(status.steps[1].started_at), _local(status.steps[1].finished_at)) == (
        "22:30", "10:00")


async def test_quiet_hours_in_a_named_zone(harness: Harness) -> None:
    # 22:30 in Vladivostok is 15:30 in Moscow, inside the journey's Moscow afternoon window.
    harness.publish(EVENING.format(
        name="moscow", step="",
        settings=', quiet_hours: {from: "15:00", to: "16:00", timezone: Europe/Moscow}'))
    await harness.fire("go", "c-1")

    status = await harness.finish("journey/moscow/c-1")

    sent = status.steps[1].finished_at
    assert sent is not None
    assert sent.astimezone(ZoneInfo("Europe/Moscow")).strftime("%H:%M") == "16:00"
    assert _local(sent) == "23:00"


CAPPED = """
journey: capped
trigger: {event: go}
settings:
  category: service
  frequency_cap: {max: 3, per: 1d}
steps:
  - send: {channel: sms, text: "one"}
  - send: {channel: email, subject: "two", text: "two"}
  - send: {channel: sms, text: "three"}
  - send: {channel: email, subject: "four", text: "four"}
  - wait: 1d
  - send: {channel: sms, text: "next day"}
"""
OTHER = """
journey: other
trigger: {event: other}
settings: {category: service}
steps:
  - send: {channel: sms, text: "other 1"}
  - send: {channel: sms, text: "other 2"}
  - send: {channel: sms, text: "other 3"}
  - send: {channel: sms, text: "other 4"}
"""


async def test_the_fourth_message_of_a_journey_in_a_day_is_suppressed(
        harness: Harness, sandbox: SandboxServer) -> None:
    harness.publish(CAPPED)
    harness.publish(OTHER)
    await harness.fire("other", "c-1")
    other = await harness.finish("journey/other/c-1")
    await harness.fire("go", "c-1")

    capped = await harness.finish("journey/capped/c-1")

    # a journey without settings sends all four, as before, and they do not count against
    # the capped journey: its cap counts its own messages, over all channels
    assert [s.outcome for s in other.steps] == ["accepted"] * 4
    assert [(s.step_id, s.outcome, s.detail) for s in capped.steps if s.type == "send"] == [
        ("1-send", "accepted", "accepted via sms"),
        ("2-send", "accepted", "accepted via email"),
        ("3-send", "accepted", "accepted via sms"),
        ("4-send", "suppressed", "frequency_cap"),
        ("6-send", "accepted", "accepted via sms")]  # a day later the window has moved on
    assert [m["text"] for m in sandbox.sent()] == [
        "other 1", "other 2", "other 3", "other 4", "one", "two", "three", "next day"]
    suppressed = [m for m in messages(harness.engine) if m.status == "suppressed"]
    assert [(m.journey, m.step_id, m.reason) for m in suppressed] == [
        ("capped", "4-send", "frequency_cap")]
    assert suppressed[0].history[-1]["detail"] == (
        "journey frequency cap: at most 3 messages of capped per 1d")


BAD = """journey: bad
trigger: {{event: go}}
settings:
{settings}
steps:
  - send: {{channel: sms, text: hi}}
"""


@pytest.mark.parametrize(("settings", "where", "message"), [
    ('  quiet_hours: {from: "25:00", to: "09:00"}', (4, 23),
     "'25:00' is not a time of day"),
    ("  quiet_hours: {from: 21:00, to: \"09:00\"}", (4, 23),
     'a time of day must be in quotes: YAML reads 21:00 unquoted as a number; write '
     'from: "21:00"'),
    ('  quiet_hours: {from: "21:00", to: "09:00", timezone: Mars/Olympus}', (4, 55),
     "'Mars/Olympus' is not a time zone"),
    ('  quiet_hours: {from: "21:00", to: "21:00"}', (4, 16),
     "the window is empty"),
    ("  frequency_cap: {max: 0, per: 1d}", (4, 24), "greater than or equal to 1"),
    ("  frequency_cap: {max: 3, per: 1x}", (4, 32), "'1x' is not a duration"),
    ("  frequency_cap: {max: 3}", (4, 18), "missing required field `per`"),
])
def test_bad_settings_are_refused_with_their_place(
        settings: str, where: tuple[int, int], message: str) -> None:
    with pytest.raises(JourneyInvalid) as caught:
        compile_journey(BAD.format(settings=settings), "bad.yaml")

    [problem] = caught.value.problems
    assert (problem.line, problem.column) == where, problem
    assert message in problem.message, problem.message


def test_settings_go_into_the_plan_and_plans_without_them_keep_their_version() -> None:
    plan = compile_journey(CAPPED.replace("  category: service\n", "  category: service\n"
                                          "  quiet_hours: {from: \"22:00\", to: \"08:00\", "
                                          "timezone: Europe/Moscow}\n"))
    assert plan.frequency_cap is not None and plan.quiet_hours is not None
    assert (plan.frequency_cap.max, plan.frequency_cap.window_seconds) == (3, 86400)
    assert (plan.quiet_hours.start, plan.quiet_hours.end, plan.quiet_hours.timezone) == (
        "22:00", "08:00", "Europe/Moscow")
    # the version this journey had before journey settings existed: stored versions and
    # runs in flight keep matching the same YAML
    assert compile_journey(OTHER).version == "61b8676e9a97"

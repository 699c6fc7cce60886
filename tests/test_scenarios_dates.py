"""The shipped date journeys, `birthday-bonus` and `children-birthdays`, on the time-skipping
server with a real worker, the product's router and the sandbox: every bonus, coupon and
message at its local time in each customer's zone, once a year, a Feb 29 birthday on Feb 28
(eve Feb 27) in common years, one coupon per child naming the child. The expected timelines
are data (tests/support/scenario_timelines.py), shared with `tropa simulate`."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.conftest import SandboxServer
from tests.support import scenario_runner as run
from tests.support.harness import Harness
from tests.support.scenario_runner import harness, time_skipping
from tests.support.scenario_timelines import BIRTHDAY_BONUS, CHILDREN_BIRTHDAYS, Scenario
from tests.test_date_triggers import hour_before
from tropa.worker.example_series import declare_example_series

__all__ = ["harness", "time_skipping"]  # the fixtures: a server of each test's own


def run_starts(scenario: Scenario) -> list[datetime]:
    """When the runs start: the first happening of each run in the expected timelines."""
    starts = []
    for customer, happenings in scenario.expected.items():
        zone = ZoneInfo(scenario.customers[customer]["time_zone"])
        first = True
        for h in happenings:
            if first:
                starts.append(datetime.fromisoformat(h.at).replace(tzinfo=zone))
            first = h.kind == "run_ended"
    return starts


def sweeps(harness: Harness, scenario: Scenario) -> list[run.Action]:
    """The hourly sweep before each run's moment (twice: a second sweep starts nothing), an
    hour and a day after it, and on the first of every month of the period."""
    moments: set[datetime] = set()
    for start in run_starts(scenario):
        before = hour_before(start)
        moments.update({before, before + timedelta(hours=2), before + timedelta(days=1)})
    month = run.utc(scenario.start)
    while month < run.utc(scenario.until):
        moments.add(month)
        month = (month + timedelta(days=32)).replace(day=1)
    actions: list[run.Action] = []
    for moment in moments:
        actions.append((moment, 0, lambda: run.hourly_sweep(harness)))
    actions += [(hour_before(s), 1, lambda: run.hourly_sweep(harness))
                for s in run_starts(scenario)]
    return actions


async def play_dates(harness: Harness, scenario: Scenario) -> dict[str, list[object]]:
    run.publish_example(harness, scenario.journey)
    run.add_customers(harness, scenario)
    await run.advance_to(harness, run.utc(scenario.start))
    await run.play(harness, sweeps(harness, scenario), run.utc(scenario.until))
    return dict(await run.observed(harness, scenario))


async def test_birthday_bonus_once_a_year_at_ten_the_day_before(
        harness: Harness, sandbox: SandboxServer) -> None:
    seen = await play_dates(harness, BIRTHDAY_BONUS)

    assert seen == BIRTHDAY_BONUS.expected
    assert len(sandbox.sent("sms")) == 5  # each SMS reached the provider once


async def test_children_birthdays_one_coupon_per_child_naming_the_child(
        harness: Harness, sandbox: SandboxServer) -> None:
    declare_example_series(harness.engine, run.EXAMPLES)
    seen = await play_dates(harness, CHILDREN_BIRTHDAYS)

    assert seen == CHILDREN_BIRTHDAYS.expected
    codes = run.coupon_codes(harness, CHILDREN_BIRTHDAYS)
    assert len(set(codes)) == 3
    mails = sandbox.sent("email")
    assert sorted(str(m["to"]) for m in mails) == ["olga@example.com"] * 2 + ["petr@example.com"]
    assert all(any(code in str(m["text"]) for m in mails) for code in codes)

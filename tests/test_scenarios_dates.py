"""The shipped date journeys, `birthday-bonus` and `children-birthdays`, on the time-skipping
server with a real worker, the product's router and the sandbox: every bonus, coupon and
message at its local time in each customer's zone, once a year, a Feb 29 birthday on Feb 28
(eve Feb 27) in common years, one coupon per child naming the child. The expected timelines
are data (tests/support/scenario_timelines.py), shared with `tropa simulate`."""

from __future__ import annotations

from tests.conftest import SandboxServer
from tests.support import scenario_runner as run
from tests.support.harness import Harness
from tests.support.scenario_runner import harness, time_skipping
from tests.support.scenario_timelines import BIRTHDAY_BONUS, CHILDREN_BIRTHDAYS, Scenario
from tropa.worker.example_series import declare_example_series

__all__ = ["harness", "time_skipping"]  # the fixtures: a server of each test's own


async def play_dates(harness: Harness, scenario: Scenario) -> dict[str, list[object]]:
    run.publish_example(harness, scenario.journey)
    run.add_customers(harness, scenario)
    await run.advance_to(harness, run.utc(scenario.start))
    await run.play(harness, run.sweeps(harness, scenario), run.utc(scenario.until))
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

"""The shipped `winback` journey on the time-skipping server with a real worker, the product's
router and the sandbox, over a year: 90 days after the last purchase at 11:00 local, 500
bonuses for 14 days and an SMS, a reminder three days before they burn; a purchase ends the
run at once (no reminder), and 90 days after it the next lapse fires again. Two customers in
two zones; the expected timelines are data shared with `tropa simulate`."""

from __future__ import annotations

from tests.conftest import SandboxServer
from tests.support import scenario_runner as run
from tests.support.harness import Harness
from tests.support.scenario_runner import harness, time_skipping
from tests.support.scenario_timelines import WINBACK

__all__ = ["harness", "time_skipping"]  # the fixtures: a server of each test's own


async def test_winback_at_day_ninety_reminds_before_the_burn_and_stops_on_purchase(
        harness: Harness, sandbox: SandboxServer) -> None:
    run.publish_example(harness, WINBACK.journey)
    run.add_customers(harness, WINBACK)
    await run.advance_to(harness, run.utc(WINBACK.start))
    actions = run.sweeps(harness, WINBACK) + run.event_actions(harness, WINBACK)
    await run.play(harness, actions, run.utc(WINBACK.until))

    assert await run.observed(harness, WINBACK) == WINBACK.expected
    assert len(sandbox.sent("sms")) == 5

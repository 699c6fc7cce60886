"""The shipped RF journeys (`rf-at-risk`, `rf-dormant`, `rf-lost`, `rf-promising`) on the
time-skipping server with a real worker, the product's router and the sandbox: the daily RF
run (00:15 UTC) or a purchase moves a customer into the segment, the journey starts once and
speaks at 11:00 in the customer's zone, and two weeks of daily runs start nothing again. The
expected timelines are data shared with `tropa simulate`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import SandboxServer
from tests.support import scenario_runner as run
from tests.support.harness import Harness
from tests.support.scenario_runner import harness, time_skipping
from tests.support.scenario_timelines import (
    RF_AT_RISK,
    RF_DORMANT,
    RF_LOST,
    RF_PROMISING,
    Scenario,
)
from tropa.services import segments

__all__ = ["harness", "time_skipping"]  # the fixtures: a server of each test's own


@pytest.mark.parametrize("scenario", [RF_AT_RISK, RF_DORMANT, RF_LOST, RF_PROMISING],
                         ids=lambda s: s.journey)
async def test_rf_journey_starts_once_on_entering_its_segment(
        harness: Harness, sandbox: SandboxServer, scenario: Scenario) -> None:
    run.publish_example(harness, scenario.journey)
    run.add_customers(harness, scenario)
    start = run.utc(scenario.start)
    await run.advance_to(harness, start)
    for customer, times in scenario.orders.items():
        run.record_purchases(harness.engine, customer, [run.utc(t) for t in times])
        for event in segments.refresh_customers(harness.engine, [customer], now=start,
                                                cause="purchase"):
            await harness.router.ingest(event)
    actions: list[run.Action] = [
        (run.utc(e["occurred_at"]), 1, lambda e=e: run.purchase(harness, e["customer_id"]))
        for e in scenario.events]
    day = start + timedelta(minutes=15)
    while day < run.utc(scenario.until):
        actions.append((day, 0, lambda: run.rf_daily(harness)))
        day += timedelta(days=1)
    await run.play(harness, actions, run.utc(scenario.until))

    assert await run.observed(harness, scenario) == scenario.expected
    assert len(sandbox.sent()) == 1

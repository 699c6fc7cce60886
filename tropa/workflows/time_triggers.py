"""TimeTriggersHourly: the hourly sweep of date and inactivity triggers.

A Temporal Schedule (`tropa-time-triggers-hourly`) starts it on the hour. One activity claims
every occurrence due up to an hour ahead and starts its run with a start delay, so runs begin
at their local time; the run's "now" is the workflow clock, so tests and `tropa simulate`
move it with the time-skipping server. The history is one activity, so it never grows.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from tropa.activities.time_triggers import (
        TimeTriggerActivities,
        TimeTriggersInput,
        TimeTriggersResult,
    )


@workflow.defn(name="TimeTriggersHourly")
class TimeTriggersHourly:
    """One hourly pass over date and inactivity journeys."""

    @workflow.run
    async def run(self) -> TimeTriggersResult:
        """Start the runs whose date or inactivity falls due around now."""
        return await workflow.execute_activity_method(
            TimeTriggerActivities.sweep,
            TimeTriggersInput(now=workflow.now()),
            start_to_close_timeout=timedelta(minutes=50),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1),
                                     maximum_attempts=10),
            summary="date and inactivity triggers",
        )

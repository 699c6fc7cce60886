"""SegmentsDaily: the daily RF run that moves customers the calendar moved.

A Temporal Schedule (`tropa-rf-daily`) starts it once a day. One activity finds the customers
whose last purchase crossed a recency bound (or whose oldest purchase left the window) since
the last run, moves them, and routes the `segment.*` events of their moves. The run's "now" is
the workflow's clock, so tests and `tropa simulate` move it with the time-skipping server.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from tropa.activities.segments import (
        SegmentActivities,
        SegmentsSweepInput,
        SegmentsSweepResult,
    )


@workflow.defn(name="SegmentsDaily")
class SegmentsDaily:
    """One daily pass of RF time passing."""

    @workflow.run
    async def run(self) -> SegmentsSweepResult:
        """Move the customers whom the days since their last purchase moved."""
        return await workflow.execute_activity_method(
            SegmentActivities.time_passing,
            SegmentsSweepInput(now=workflow.now()),
            start_to_close_timeout=timedelta(hours=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5),
                                     maximum_attempts=20),
            summary="RF time passing",
        )

"""LoyaltyExpirySweep: burns expired points and announces coming burns; run by a Schedule.

Balances never wait for it (they are computed live); the sweep writes the `expiry` entries
a statement shows and emits `loyalty.expiring` N days ahead. It pages through the buckets
and continues as new after a bounded number of pages, so its history stays small.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from tropa.activities.loyalty_expiry import (
        AnnounceInput,
        BurnInput,
        BurnOutput,
        ExpiryActivities,
    )

PAGES_PER_RUN = 50
RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))


class SweepInput(BaseModel):
    """Expiry notices `notice_days` ahead; `as_of` and totals carry across continue-as-new."""

    notice_days: int = 7
    page_size: int = 200
    as_of: datetime | None = None
    buckets: int = 0
    points: int = 0


class SweepResult(BaseModel):
    """What one sweep burned and announced."""

    buckets: int
    points: int
    announced: int


@workflow.defn(name="LoyaltyExpirySweep")
class LoyaltyExpirySweep:
    """One pass over expired and soon-expiring buckets."""

    @workflow.run
    async def run(self, inp: SweepInput) -> SweepResult:
        """Burn page after page, then announce what burns within `notice_days`."""
        as_of = inp.as_of or workflow.now()
        buckets, points = inp.buckets, inp.points
        for _ in range(PAGES_PER_RUN):
            page: BurnOutput = await workflow.execute_activity_method(
                ExpiryActivities.burn, BurnInput(as_of=as_of, limit=inp.page_size),
                start_to_close_timeout=timedelta(minutes=2), retry_policy=RETRY,
                summary="burn expired points")
            buckets, points = buckets + page.buckets, points + page.points
            if not page.more:
                break
        else:
            workflow.continue_as_new(inp.model_copy(update={
                "as_of": as_of, "buckets": buckets, "points": points}))
        announced: int = await workflow.execute_activity_method(
            ExpiryActivities.announce, AnnounceInput(as_of=as_of, days=inp.notice_days),
            start_to_close_timeout=timedelta(minutes=2), retry_policy=RETRY,
            summary="announce coming burns")
        return SweepResult(buckets=buckets, points=points, announced=announced)

"""ScheduleFire: one fire of a schedule journey, started by its Temporal Schedule.

The fire time is the schedule's nominal time (the `TemporalScheduledStartTime` search
attribute the server sets), so a fire that starts late still names the time it stands for.
Each page is one activity holding at most a second's worth of starts at the configured
rate; after it the workflow sleeps the time the page is worth at that rate (a durable timer,
skipped by the time-skipping server in tests). It continues as new every PAGES_PER_RUN
pages, so its history stays small however large the audience.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from tropa.activities.schedule_fire import ScheduleFireActivities
    from tropa.services.schedule_fire import FirePageInput, ScheduleFireInput

SCHEDULED_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
PAGES_PER_RUN = 200


@workflow.defn(name="ScheduleFire")
class ScheduleFire:
    """Start one JourneyRun per audience customer for one fire time, paced."""

    @workflow.run  # noqa: RET503 - continue_as_new ends the last path by raising
    async def run(self, inp: ScheduleFireInput) -> ScheduleFireInput:
        """Page through the audience; returns the counts of the whole fire."""
        fire_time = (inp.fire_time
                     or workflow.info().typed_search_attributes.get(SCHEDULED_TIME)
                     or workflow.now())
        state = inp.model_copy(update={"fire_time": fire_time})
        for _ in range(PAGES_PER_RUN):
            page = await workflow.execute_activity_method(
                ScheduleFireActivities.fire_page,
                FirePageInput(journey=inp.journey, fire_time=fire_time, after_id=state.after_id),
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
                summary=f"audience page after {state.after_id or 'the start'}",
            )
            state.started += page.started
            state.existed += page.existed
            state.skipped += page.skipped
            state.after_id = page.last_id or state.after_id
            if page.done:
                return state
            # The full pace after the page's last start: no second of the clock, however it
            # is cut, sees more than one page, so the rate holds in any window.
            await workflow.sleep(timedelta(seconds=page.pace_seconds))
        workflow.continue_as_new(state)  # raises: the fire goes on in a fresh run

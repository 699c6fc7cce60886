"""The simulated "now" that `tropa.clock.utcnow()` follows during a simulation."""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from tropa.clock import ensure_aware


class SimulatedClock:
    """Inside an activity: the moment the time-skipping server started it (time does not skip
    while an activity runs, so that is the activity's now). Elsewhere (event intake, the
    sandbox, the simulator's own steps): the moment the simulator stands at."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        if activity.in_activity():
            return ensure_aware(activity.info().started_time)
        return self.at

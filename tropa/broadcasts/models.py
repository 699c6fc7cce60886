"""What the Broadcast workflow and its activities pass each other. No I/O: workflow code
imports this module."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

# Keys of the workflow memo (counts and states only, never personal data).
MEMO_PROGRESS = "progress"


class Counts(BaseModel):
    """What became of the recipients handled so far, as the workflow saw it."""

    queued: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    suppressed: dict[str, int] = Field(default_factory=dict)

    def add(self, other: Counts) -> Counts:
        """The sum of two counts."""
        suppressed = dict(self.suppressed)
        for reason, n in other.suppressed.items():
            suppressed[reason] = suppressed.get(reason, 0) + n
        return Counts(queued=self.queued + other.queued, sent=self.sent + other.sent,
                      failed=self.failed + other.failed, skipped=self.skipped + other.skipped,
                      suppressed=suppressed)


class BroadcastState(BaseModel):
    """A broadcast's progress carried across continue-as-new."""

    snapshotted: bool = False
    recipients: int = 0
    holdout: int = 0
    paused: bool = False
    cancelled: bool = False
    pages: int = 0
    continued: int = 0
    counts: Counts = Field(default_factory=Counts)


class BroadcastInput(BaseModel):
    """The Broadcast workflow's input: which broadcast, when to snapshot, page sizes."""

    broadcast_id: str
    snapshot_at: datetime
    """When the audience is taken: the start instant, or creation for local-time waves."""
    page_size: int = 500
    history_limit: int = 4000
    """Continue as new once the history is this long (events)."""
    page_timeout_seconds: float = 600.0
    state: BroadcastState = Field(default_factory=BroadcastState)


class SnapshotIn(BaseModel):
    """Take the audience of a broadcast as it is at `now`."""

    broadcast_id: str
    now: datetime


class SnapshotOut(BaseModel):
    """How many customers the snapshot holds, and how many of them are in the holdout."""

    recipients: int
    holdout: int


class PageIn(BaseModel):
    """Prepare the next page of recipients due at `now`."""

    broadcast_id: str
    now: datetime
    limit: int


class PageOut(BaseModel):
    """A prepared page: message keys to deliver, counts, and when the next wave is due."""

    keys: list[str] = Field(default_factory=list)
    deliver_queue: str | None = None
    batch_size: int = 100
    """Messages per deliver activity: 1 on a rate-limited channel, so the channel queue's
    server-side limit (shared with journeys) counts every message."""
    deliver_heartbeat_seconds: float = 60.0
    counts: Counts = Field(default_factory=Counts)
    handled: int = 0
    next_due: datetime | None = None
    """The earliest send time still pending (a later wave, quiet hours); None when none."""


class DeliverIn(BaseModel):
    """Hand these logged messages to their provider."""

    broadcast_id: str
    keys: list[str]


class DeliverOut(BaseModel):
    """How many of the batch the provider took, and how many failed finally."""

    sent: int = 0
    failed: int = 0


class FinishIn(BaseModel):
    """Record the broadcast's end: completed, or cancelled (pending recipients left out)."""

    broadcast_id: str
    status: str
    now: datetime


class StatusIn(BaseModel):
    """Record a state change the workflow made (paused, sending)."""

    broadcast_id: str
    status: str
    now: datetime

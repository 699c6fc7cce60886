"""Announcing a task to its assignee over the channels the step names.

Each channel is announced once: its idempotency key derives from the task's, outcomes are
kept on the task, and a repeat (a retried activity) skips channels already settled. An
unknown assignee, a missing contact or a message the provider refuses is recorded, not
raised; only an unavailable provider raises, so the step retries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from tropa.channels.base import ChannelAdapter, OutgoingMessage
from tropa.errors import MessageInvalid, ProviderError, ProviderUnavailable
from tropa.logs import get_logger
from tropa.settings import Assignee
from tropa.store.task_models import Task
from tropa.tasks.store import record_announcement, set_announce_status

NOTIFY_CHANNELS = ("email", "sms", "telegram")
SETTLED = frozenset({"sent", "no_contact", "failed"})
log = get_logger("tasks")


class AnnounceUnavailable(RuntimeError):
    """A provider could not take the announcement now; the step retries."""


def announcement_key(task: Task, channel: str) -> str:
    """The provider idempotency key of one announcement, derived from the task's."""
    return f"{task.idempotency_key}/announce/{channel}"


def _recipient(contact: Assignee, channel: str) -> str | None:
    return {"email": contact.email, "sms": contact.phone,
            "telegram": contact.telegram_chat_id}.get(channel)


def message_for(task: Task, channel: str, recipient: str) -> OutgoingMessage:
    """The announcement of `task` on `channel`: the task text and what it is about."""
    due = task.due_at.isoformat() if task.due_at else "none"
    lines = [task.text, "", f"Task {task.id} for {task.assignee}, due {due}",
             f"Customer {task.customer_id}, journey {task.journey}"]
    first = task.text.strip().splitlines()[0][:80] if task.text.strip() else "new task"
    return OutgoingMessage(
        idempotency_key=announcement_key(task, channel), channel=channel, category="service",
        recipient=recipient, text="\n".join(lines),
        subject=f"Task {task.id}: {first}" if channel == "email" else None)


def _summary(outcomes: Mapping[str, Any], notify: list[str]) -> str:
    states = [str(outcomes.get(c, {}).get("status", "pending")) for c in notify]
    if all(s == "sent" for s in states):
        return "sent"
    if any(s == "sent" for s in states):
        return "partial"
    if all(s == "no_contact" for s in states):
        return "no_contact"
    return "failed"


def announce(engine: sa.Engine, adapters: Mapping[str, ChannelAdapter],
             directory: Mapping[str, Assignee], task: Task) -> str:
    """Announce `task` on each of its channels not yet settled; return the announce status."""
    assert task.id is not None
    if not task.notify:
        return "not_requested"
    contact = directory.get(task.assignee)
    if contact is None:
        set_announce_status(engine, task.id, "unknown_assignee")
        log.warning("task_assignee_unknown", task_id=task.id, assignee=task.assignee)
        return "unknown_assignee"
    outcomes: dict[str, Any] = dict(task.announcements)
    for channel in task.notify:
        if str(outcomes.get(channel, {}).get("status")) in SETTLED:
            continue
        outcomes[channel] = _one(engine, adapters, task, channel, _recipient(contact, channel))
    summary = _summary(outcomes, task.notify)
    set_announce_status(engine, task.id, summary)
    return summary


def _one(engine: sa.Engine, adapters: Mapping[str, ChannelAdapter], task: Task, channel: str,
         recipient: str | None) -> dict[str, Any]:
    assert task.id is not None
    if not recipient:
        outcome: dict[str, Any] = {"status": "no_contact",
                                   "detail": f"{task.assignee} has no {channel} contact"}
        record_announcement(engine, task.id, channel, outcome)
        return outcome
    message = message_for(task, channel, recipient)
    adapter = adapters[channel]
    try:
        adapter.validate(message)
        accepted = adapter.send(message)
    except ProviderUnavailable as exc:
        record_announcement(engine, task.id, channel,
                            {"status": "retrying", "detail": exc.reason})
        log.warning("task_announce_retrying", task_id=task.id, channel=channel,
                    reason=exc.reason)
        raise AnnounceUnavailable(f"{channel} provider unavailable: {exc.reason}") from exc
    except (MessageInvalid, ProviderError) as exc:
        outcome = {"status": "failed", "detail": exc.reason}
        record_announcement(engine, task.id, channel, outcome)
        log.warning("task_announce_failed", task_id=task.id, channel=channel,
                    reason=exc.reason)
        return outcome
    outcome = {"status": "sent", "message_id": accepted.provider_message_id,
               "provider": accepted.provider}
    record_announcement(engine, task.id, channel, outcome)
    return outcome

"""The events a run was signalled, kept only while a listener may still look at them.

Two listeners read events: the `exit_on` watcher and the `wait_for` step under way. Each
reads from a cursor (an absolute position); an event every open cursor has passed is
dropped, and an event that arrives while nobody listens is not kept at all. Duplicates are
recognised in constant time by a bounded, ordered set of recent event ids, which travels
across continue-as-new with the events still pending.
"""

from __future__ import annotations

from tropa.dsl.plan import EventIn

RECENT_IDS = 1000
"""Event ids remembered for deduplication. The router stores each event once already; this
only guards against a signal delivered twice."""

EXIT = "exit"
STEP = "step"


class Inbox:
    """Pending events, listener cursors and recent event ids."""

    def __init__(self) -> None:
        self._events: list[EventIn] = []
        self._base = 0
        self._seen: dict[str, None] = {}
        # Until the run says otherwise, everything is kept for the exit watcher, which may
        # start after the first signals arrived.
        self._restored: dict[str, int] = {EXIT: 0}
        self._cursors: dict[str, int] = {}

    def restore(self, pending: list[EventIn], cursors: dict[str, int], seen: list[str]) -> None:
        """Take what a run continued-as-new carried; before any listener opens."""
        carried = set(seen)
        arrived = [e for e in self._events if e.event_id not in carried]
        self._events = [*pending, *arrived]
        self._base = 0
        self._seen = dict.fromkeys([*seen, *self._seen][-RECENT_IDS:])
        self._restored = dict(cursors)

    def add(self, event: EventIn) -> bool:
        """Take a signalled event; False for a duplicate."""
        if event.event_id in self._seen:
            return False
        self._seen[event.event_id] = None
        if len(self._seen) > RECENT_IDS:
            del self._seen[next(iter(self._seen))]
        self._events.append(event)
        self._trim()
        return True

    def end(self) -> int:
        """The position after the last event received."""
        return self._base + len(self._events)

    def since(self, position: int) -> list[EventIn]:
        """Events from `position` on (a copy)."""
        return self._events[max(position - self._base, 0):]

    def open(self, listener: str) -> int:
        """Start listening: from the carried-over cursor, else from now on."""
        position = self._restored.pop(listener, None)
        self._cursors[listener] = self.end() if position is None else self._base + position
        return self._cursors[listener]

    def advance(self, listener: str, position: int) -> None:
        """The listener has looked at everything before `position`."""
        self._cursors[listener] = position
        self._trim()

    def close(self, listener: str) -> None:
        """The listener is done (or will never start); its events may go."""
        self._cursors.pop(listener, None)
        self._restored.pop(listener, None)
        self._trim()

    def __len__(self) -> int:
        return len(self._events)

    def export(self) -> tuple[list[EventIn], dict[str, int], list[str]]:
        """(pending events, cursors relative to them, recent ids) for continue-as-new."""
        return (list(self._events),
                {name: pos - self._base for name, pos in self._cursors.items()},
                list(self._seen))

    def _trim(self) -> None:
        low = min([*self._cursors.values(), *(self._base + p for p in self._restored.values())],
                  default=self.end())
        drop = low - self._base
        if drop > 0:
            del self._events[:drop]
            self._base = low

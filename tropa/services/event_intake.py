"""Single events, one a request, stored and marked in shared transactions (group commit).

Requests that arrive while the database is being written wait for the next write, which
then claims (and marks routed) all of them at once: under load, N concurrent
`POST /v1/events` cost one worker-thread hop and two short transactions per write instead
of two hops and two transactions per event. Alone, a request still writes at once (nothing
waits for a batch to fill).
Outcomes are the same as one request at a time: a repeated `event_id` is a duplicate,
an unknown customer is refused, a failed routing releases the event for a retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from tropa.dsl.plan import EventIn
from tropa.services.event_batch import Failed, claim_many, finish
from tropa.services.events import EventRouter, Routed, UnknownCustomer

In = TypeVar("In")
Out = TypeVar("Out")
MAX_GROUP = 500


class Coalescer(Generic[In, Out]):
    """Runs `work(items)` in a worker thread for all items submitted while the previous
    call was running; each submitter gets its own item's result (or the call's error)."""

    def __init__(self, work: Callable[[list[In]], Sequence[Out]]) -> None:
        self._work = work
        # Per event loop: an app is served by one loop, but tests may use several.
        self._queues: dict[asyncio.AbstractEventLoop, list[tuple[In, asyncio.Future[Out]]]] = {}
        self._drains: set[asyncio.Task[None]] = set()  # referenced until done

    async def submit(self, item: In) -> Out:
        """The result of `work` for this item."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Out] = loop.create_future()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = []
            queue.append((item, future))
            drain = loop.create_task(self._drain(loop, queue))
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        else:
            queue.append((item, future))
        return await future

    async def _drain(self, loop: asyncio.AbstractEventLoop,
                     queue: list[tuple[In, asyncio.Future[Out]]]) -> None:
        try:
            while queue:
                group = queue[:MAX_GROUP]
                del queue[:MAX_GROUP]
                try:
                    results = await asyncio.to_thread(self._work, [item for item, _ in group])
                except Exception as exc:  # every waiter of this group sees the error
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(group, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            del self._queues[loop]


Claim = Routed | Failed | dict[str, Any]
Mark = tuple[str, Routed | None]  # event id, and how it was routed (None: release it)


class SingleIntake:
    """`POST /v1/events`: store, route and mark one event, sharing transactions."""

    def __init__(self, router: EventRouter) -> None:
        engine = router.engine
        self._router = router
        self._writes: Coalescer[EventIn | Mark, Claim | None] = Coalescer(
            lambda items: _write(engine, items))

    async def _claim(self, event: EventIn) -> Claim:
        return await self._writes.submit(event)  # type: ignore[return-value]

    async def _mark(self, event_id: str, routed: Routed | None) -> None:
        await self._writes.submit((event_id, routed))

    async def ingest(self, event: EventIn) -> Routed:
        """Store the event once; a repeated `event_id` is acknowledged and not routed again."""
        claim = await self._claim(event)
        if isinstance(claim, Failed):  # the one final refusal of a claim
            raise UnknownCustomer(event.customer_id)
        if isinstance(claim, Routed):
            return claim  # a duplicate
        try:
            routed = await self._router.route(event, claim)
        except BaseException:
            await self._mark(event.event_id, None)  # released for a retry
            raise
        await self._mark(event.event_id, routed)
        return routed


def _write(engine: Any, items: list[EventIn | Mark]) -> list[Claim | None]:
    """Marks first (their events are done), then the new claims, in one thread hop."""
    marks = [i for i in items if isinstance(i, tuple)]
    if marks:
        finish(engine, {event_id: routed for event_id, routed in marks if routed is not None},
               [event_id for event_id, routed in marks if routed is None])
    events = [i for i in items if isinstance(i, EventIn)]
    claims = iter(claim_many(engine, events) if events else [])
    return [next(claims) if isinstance(i, EventIn) else None for i in items]

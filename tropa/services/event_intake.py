"""Single events, one a request, stored and marked in shared transactions (group commit).

Requests that arrive while a claim or a mark is being written wait for the next one, which
then writes all of them at once: under load, N concurrent `POST /v1/events` cost one claim
transaction and one mark transaction instead of 2N, and one worker-thread hop each instead
of N. Alone, a request still writes at once (nothing waits for a batch to fill).
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


class SingleIntake:
    """`POST /v1/events`: store, route and mark one event, sharing transactions."""

    def __init__(self, router: EventRouter) -> None:
        engine = router.engine
        self._router = router
        self._claims: Coalescer[EventIn, Routed | Failed | dict[str, Any]] = Coalescer(
            lambda events: claim_many(engine, events))
        self._marks: Coalescer[tuple[str, Routed | None], None] = Coalescer(
            lambda marks: _mark(engine, marks))

    async def ingest(self, event: EventIn) -> Routed:
        """Store the event once; a repeated `event_id` is acknowledged and not routed again."""
        claim = await self._claims.submit(event)
        if isinstance(claim, Failed):  # the one final refusal of a claim
            raise UnknownCustomer(event.customer_id)
        if isinstance(claim, Routed):
            return claim  # a duplicate
        try:
            routed = await self._router.route(event, claim)
        except BaseException:
            await self._marks.submit((event.event_id, None))  # released for a retry
            raise
        await self._marks.submit((event.event_id, routed))
        return routed


def _mark(engine: Any, marks: list[tuple[str, Routed | None]]) -> list[None]:
    finish(engine, {event_id: routed for event_id, routed in marks if routed is not None},
           [event_id for event_id, routed in marks if routed is None])
    return [None] * len(marks)

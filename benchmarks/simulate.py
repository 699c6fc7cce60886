"""How long `tropa simulate` takes: the birthday journey over one and two years, and the
abandoned cart over a week, each timed from the call to the happenings (imports excluded).

    .venv/bin/python -m benchmarks.simulate
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tropa.logs import configure
from tropa.settings import Settings
from tropa.simulate import inputs
from tropa.simulate.runner import simulate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ANNA = {"id": "c-1", "first_name": "Anna", "phone": "+79160000001",
        "time_zone": "Europe/Moscow", "birthday": "2000-02-29"}
BORIS = {"id": "c-2", "first_name": "Boris", "email": "b@example.com", "phone": "+79160000002",
         "phone_verified": True, "time_zone": "Asia/Yekaterinburg",
         "consents": {"marketing": {"sms": True, "email": True}}}


async def timed(journey: str, customer: dict[str, object], days: int,
                events: list[dict[str, object]] | None = None) -> tuple[float, int]:
    start = datetime.now(UTC) + timedelta(minutes=5)
    customer_id, body = inputs.check_customer(customer, "customer")
    checked = inputs.check_events([(str(i), e) for i, e in enumerate(events or [])],
                                  customer_id)
    sim = inputs.prepare((EXAMPLES / journey).read_text(), journey, customer_id, body, checked,
                         start, start + timedelta(days=days))
    began = time.perf_counter()
    happenings = await simulate(sim, Settings())
    return time.perf_counter() - began, len(happenings)


async def main(repeat: int) -> None:
    day = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) + \
        timedelta(days=1)
    cart = [{"event_id": "e1", "type": "cart.updated", "customer_id": "c-2",
             "occurred_at": day.isoformat(), "data": {"cart_id": "K1", "cart_url": "u"}}]
    cases = [("birthday-bonus.yaml, 1 year", "birthday-bonus.yaml", ANNA, 365, None),
             ("birthday-bonus.yaml, 2 years", "birthday-bonus.yaml", ANNA, 730, None),
             ("abandoned-cart.yaml, 7 days", "abandoned-cart.yaml", BORIS, 7, cart)]
    for label, journey, customer, days, events in cases:
        for _ in range(repeat):
            seconds, count = await timed(journey, customer, days, events)
            print(f"{label:32s} {seconds:6.2f} s  ({count} happenings)", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2)
    configure("WARNING")
    logging.getLogger("temporalio").setLevel(logging.WARNING)
    asyncio.run(main(parser.parse_args().repeat))

"""`tropa simulate` against the expected timelines of every shipped journey
(tests/support/scenario_timelines.py): for each journey and each of its customers, the
simulated timeline, read in the customer's zone, equals what the timing tests assert.

The simulator runs one customer at a time; the customer's purchases from before the period
go in as `order.placed` events from before `--from`, which the simulator delivers at the start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.scenario_runner import _with_codes, local_text, utc
from tests.support.scenario_timelines import SCENARIOS, Happening, Scenario
from tropa.settings import Assignee, Settings
from tropa.simulate import inputs
from tropa.simulate.runner import simulate
from tropa.worker.example_series import SERIES_FILE

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RANK = {"loyalty": 0, "message": 1, "task": 2, "run_ended": 3}
CASES = [(journey, customer) for journey, scenario in SCENARIOS.items()
         for customer in scenario.customers]


def history(scenario: Scenario, customer: str) -> list[dict[str, Any]]:
    """Purchases before the period as the events that record them."""
    return [{"event_id": f"history-{customer}-{n}", "type": "order.placed",
             "customer_id": customer, "occurred_at": at,
             "data": {"order_id": f"{customer}-{n}", "total": 100000}}
            for n, at in enumerate(scenario.orders.get(customer, []))]


def as_expected(happenings: list[dict[str, Any]], zone: str) -> list[Happening]:
    """The simulator's happenings in the expected timelines' terms (local minutes)."""
    def local(at: str | None) -> str:
        return local_text(utc(at), zone) if at else ""

    out: list[tuple[str, int, Happening]] = []
    for h in happenings:
        at, kind = local(h["at"]), h["kind"]
        if kind == "message":
            seen = Happening(at, "message", channel=h["channel"], text=h["text"] or "",
                             subject=h.get("subject") or "", status=h["status"])
        elif kind == "loyalty" and h["operation"] == "accrue":
            seen = Happening(at, "loyalty", operation="accrue", amount=h["amount"],
                             balance=h["balance"], expires=local(h.get("expires_at")))
        elif kind == "loyalty" and h["operation"] == "issue_coupon":
            seen = Happening(at, "loyalty", operation="issue_coupon", text=h["code"],
                             expires=local(h.get("expires_at")))
        elif kind == "task":
            seen = Happening(at, "task", assignee=h["assignee"], text=h["text"],
                             due=local(h.get("due_at")))
        elif kind == "run_ended":
            seen = Happening(at, "run_ended", state=h["state"],
                             reason="" if h["state"] == "completed" else h["reason"])
        else:
            continue  # run starts, steps and burns: the expected timelines leave them out
        out.append((at, RANK[kind], seen))
    return _with_codes([h for _, _, h in sorted(out, key=lambda i: (i[0], i[1]))])


@pytest.mark.parametrize(("journey", "customer"), CASES)
async def test_simulated_timeline_equals_the_expected_one(journey: str, customer: str) -> None:
    scenario = SCENARIOS[journey]
    body = scenario.customers[customer]
    settings = Settings()
    settings.tasks.assignees = {"manager": Assignee(email="manager@shop.example")}
    customer_id, checked = inputs.check_customer({**body, "id": customer}, customer)
    events = inputs.check_events(
        [(e["event_id"], e) for e in [*history(scenario, customer), *scenario.events]
         if e["customer_id"] == customer], customer_id)
    series = inputs.read_series((EXAMPLES / SERIES_FILE).read_text(encoding="utf-8"),
                                str(SERIES_FILE))
    sim = inputs.prepare((EXAMPLES / f"{journey}.yaml").read_text(encoding="utf-8"),
                         f"{journey}.yaml", customer_id, checked, events,
                         utc(scenario.start), utc(scenario.until), series)
    happenings = await simulate(sim, settings)
    assert as_expected(happenings, body["time_zone"]) == scenario.expected[customer]

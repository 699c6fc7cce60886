"""`abandoned-cart` and `payment-link` end to end on the local dev server, through the real HTTP
API (published, customers written and events posted over HTTP), a real worker and the sandbox
providers posting delivery receipts back to the API. Waits of the cart chain are cut to a
second; real time runs, so quiet hours are real too: the customer who must get the whole chain
lives where it is daytime now, the one who orders lives where it is night, so his chain holds
at the first email (quiet until 09:00) when the order for the cart arrives."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.api import make_key
from tests.support.servers import serve
from tests.support.waiting import eventually
from tropa.api.main import create_app
from tropa.sandbox.app import Faults
from tropa.settings import Assignee, Settings
from tropa.worker.worker import workers_running

EXAMPLES = Path(__file__).parents[1] / "examples"
ZONES = ["Pacific/Honolulu", "America/Los_Angeles", "America/New_York", "Europe/London",
         "Europe/Moscow", "Asia/Kolkata", "Asia/Shanghai", "Asia/Vladivostok",
         "Pacific/Auckland"]


def zone_where(hours: range) -> str:
    """A zone whose local hour now lies in `hours`, with an hour to spare at the end."""
    now = datetime.now(UTC)
    for zone in ZONES:
        local = now.astimezone(ZoneInfo(zone))
        if local.hour in hours and local.hour + 1 in hours:
            return zone
    raise AssertionError(f"no zone has its hour in {hours} now")  # ZONES span the globe


@pytest.fixture
async def api(dev_server: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
              task_queue: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API on a real port, so the sandbox can post receipts to it, and a worker."""
    providers = settings.providers
    providers.whatsapp_url = providers.voice_url = providers.sms_url
    settings.tasks.assignees = {"manager": Assignee(email="manager@shop.example")}
    settings.delivery.redeliver_after_seconds = 0.5
    settings.temporal.task_queue = task_queue
    with serve(create_app(settings, engine, dev_server.client)) as url:
        settings.delivery.receipts_base_url = url
        async with workers_running(dev_server.client, settings, engine, task_queue=task_queue), \
                httpx.AsyncClient(base_url=url, timeout=30,
                                  headers={"X-API-Key": make_key(engine)}) as client:
            yield client


async def publish(api: httpx.AsyncClient, journey: str, text: str | None = None) -> None:
    text = text or (EXAMPLES / f"{journey}.yaml").read_text(encoding="utf-8")
    created = await api.post("/v1/journeys", content=text,
                             headers={"Content-Type": "application/yaml"})
    assert created.status_code == 201, created.text
    version = created.json()["version"]
    published = await api.post(f"/v1/journeys/{journey}/versions/{version}/publish")
    assert published.status_code == 200, published.text


async def customer(api: httpx.AsyncClient, customer_id: str, **body: Any) -> None:
    answer = await api.put(f"/v1/customers/{customer_id}", json={
        "phone_verified": True, "email_verified": True, **body})
    assert answer.status_code == 200, answer.text


async def post(api: httpx.AsyncClient, event_id: str, type_: str, customer_id: str,
               **data: Any) -> dict[str, Any]:
    answer = await api.post("/v1/events", json={
        "event_id": event_id, "type": type_, "customer_id": customer_id,
        "occurred_at": datetime.now(UTC).isoformat(), "data": data})
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


async def run(api: httpx.AsyncClient, workflow_id: str) -> dict[str, Any]:
    answer = await api.get(f"/v1/runs/{workflow_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def ended(api: httpx.AsyncClient, workflow_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        body = await run(api, workflow_id)
        return body if body["state"] != "running" else None
    return await eventually(done, timeout=90, message=f"{workflow_id} ended")


async def test_abandoned_cart_over_http(api: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    # Hours and days become a second; quiet hours stay as the file has them.
    sandbox.box.faults = Faults(whatsapp_webhook=f"{api.base_url}/v1/providers/whatsapp/receipts")
    await publish(api, "abandoned-cart", re.sub(
        r"wait: \d+[hd]\b", "wait: 1s",
        (EXAMPLES / "abandoned-cart.yaml").read_text(encoding="utf-8")))
    day = zone_where(range(10, 20))
    night = zone_where(range(0, 8))
    everything = {"sms": True, "email": True, "whatsapp": True, "voice": True}
    await customer(api, "ann", first_name="Ann", phone="+79160000701",
                   email="ann@example.com", time_zone=day,
                   consents={"marketing": everything})
    await customer(api, "bob", first_name="Bob", phone="+79160000702",
                   email="bob@example.com", time_zone=night,
                   consents={"marketing": everything})

    started = await post(api, "cart-a", "cart.updated", "ann", cart_id="a1",
                         cart_url="https://shop.example/cart/a1")
    assert started["started"] == ["journey/abandoned-cart/ann/a1"]
    await post(api, "cart-b", "cart.updated", "bob", cart_id="b1",
               cart_url="https://shop.example/cart/b1")
    # Ann's order for another cart leaves her a1 chain alone.
    other = await post(api, "order-a9", "order.placed", "ann", order_id="a9", cart_id="a9")
    assert other["signalled"] == []

    await eventually(lambda: _step(run(api, "journey/abandoned-cart/bob/b1"), "2-send"),
                     timeout=60, message="Bob's first email held by quiet hours")
    placed = await post(api, "order-b1", "order.placed", "bob", order_id="b1", cart_id="b1")
    assert placed["signalled"] == ["journey/abandoned-cart/bob/b1"]

    bob = await ended(api, "journey/abandoned-cart/bob/b1")
    ann = await ended(api, "journey/abandoned-cart/ann/a1")
    assert (bob["state"], ann["state"]) == ("exited", "completed")
    assert bob["steps"][-1]["detail"].endswith("exit_on order.placed")
    assert [s["outcome"] for s in ann["steps"] if s["type"] != "wait"] == [
        "accepted", "accepted", "delivered", "delivered", "accepted", "created"]
    to_ann = [(m["channel"], m["to"]) for m in sandbox.sent() if m["to"] != "manager@shop.example"
              and m["to"] not in ("bob@example.com", "+79160000702")]
    assert to_ann == [("email", "ann@example.com"), ("email", "ann@example.com"),
                      ("sms", "+79160000701"), ("whatsapp", "+79160000701"),
                      ("voice", "+79160000701")]
    [call] = sandbox.sent("voice")
    assert call["connect_to"] == "+74950000000"
    assert [m for m in sandbox.sent() if m["to"] in ("bob@example.com", "+79160000702")] == []
    tasks = (await api.get("/v1/tasks", params={"customer_id": "ann"})).json()["tasks"]
    assert [(t["assignee"], t["text"]) for t in tasks] == [
        ("manager", "Call Ann about cart a1: no order after three days")]


async def _step(status: Any, step_id: str) -> bool:
    return bool((await status)["current_step"] == step_id)


async def test_payment_link_over_http_until_delivered_and_ended_by_its_order(
        api: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    await publish(api, "payment-link")
    await customer(api, "pay", first_name="Pia", phone="+79160000801",
                   email="pia@example.com", time_zone="Europe/Moscow")
    sandbox.box.faults = Faults(undelivered_receipts=1)  # the first SMS is not delivered

    for order, total in (("p1", 149050), ("p2", 99000)):
        started = await post(api, f"await-{order}", "order.awaiting_payment", "pay",
                             order_id=order, total=total,
                             payment_url=f"https://pay.example/{order}")
        assert started["started"] == [f"journey/payment-link/pay/{order}"]

    async def waiting(order: str) -> bool:
        return (await run(api, f"journey/payment-link/pay/{order}"))["current_step"] == "2-wait"
    await eventually(lambda: waiting("p1"), timeout=60, message="p1's link delivered")
    await eventually(lambda: waiting("p2"), timeout=60, message="p2's link delivered")
    p1 = await run(api, "journey/payment-link/pay/p1")
    assert p1["steps"][0]["outcome"] == "delivered"
    # The first SMS came back undelivered and was sent again under a new key.
    links = sandbox.sent("sms")
    assert sorted({str(m["text"]) for m in links}) == [
        "Order p1: pay 1 490.50 RUB here https://pay.example/p1",
        "Order p2: pay 990.00 RUB here https://pay.example/p2"]
    assert sorted(str(m["status"]) for m in links) == ["delivered", "delivered", "undelivered"]
    assert len({m["idempotency_key"] for m in links}) == 3

    paid = await post(api, "paid-p2", "order.paid", "pay", order_id="p2")
    assert paid["signalled"] == ["journey/payment-link/pay/p2"]
    p2 = await ended(api, "journey/payment-link/pay/p2")
    assert p2["state"] == "exited" and p2["steps"][-1]["detail"].endswith("exit_on order.paid")
    assert (await run(api, "journey/payment-link/pay/p1"))["state"] == "running"

    await post(api, "paid-p1", "order.paid", "pay", order_id="p1")
    assert (await ended(api, "journey/payment-link/pay/p1"))["state"] == "exited"
    assert len(sandbox.sent("sms")) == 3  # no reminder: both orders were paid within the day

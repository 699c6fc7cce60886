"""An external loyalty platform plugged in through the `tropa.loyalty` entry-point group."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from typing import Any

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tropa.customers.identifiers import Identifier
from tropa.errors import LoyaltyError
from tropa.loyalty import platform, template_view
from tropa.loyalty.coupons import CouponView
from tropa.loyalty.models import OperationResult
from tropa.loyalty.platform import AccrueRequest, WriteOffRequest, load_platform
from tropa.settings import LoyaltySettings, Settings

CALLS: list[AccrueRequest] = []


class AcmeLoyalty:
    """A stand-in external platform: remembers what journeys asked of it."""

    def __init__(self, engine: sa.Engine, settings: LoyaltySettings) -> None:
        self.engine = engine
        self.settings = settings

    def accrue(self, request: AccrueRequest) -> OperationResult:
        CALLS.append(request)
        return OperationResult(operation_id=len(CALLS), kind="accrual",
                               customer_id=request.customer.value, account=request.account,
                               amount=request.amount, balance=4242, pending=0,
                               expires_at=request.expires_at)

    def write_off(self, request: WriteOffRequest) -> OperationResult:
        raise NotImplementedError

    def issue_coupon(self, *, series: str, customer: Identifier, idempotency_key: str,
                     now: datetime | None = None) -> CouponView:
        raise NotImplementedError

    def standing(self, customer_id: str, now: datetime | None = None) -> dict[str, Any]:
        return {"customer": customer_id, "as_of": now, "balance": 4242, "level": "Acme Gold"}


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    found = [EntryPoint(name="acme", value=f"{__name__}:AcmeLoyalty", group="tropa.loyalty")]
    monkeypatch.setattr(platform, "entry_points", lambda group: found if group ==
                        "tropa.loyalty" else [])
    template_view._PLATFORMS.clear()
    CALLS.clear()
    yield
    template_view._PLATFORMS.clear()


@pytest.mark.usefixtures("acme")
def test_an_unknown_adapter_is_named_with_the_installed_ones(engine: sa.Engine) -> None:
    with pytest.raises(LoyaltyError, match=r"'nope'.*installed: acme, embedded"):
        load_platform(engine, LoyaltySettings(adapter="nope"))
    assert isinstance(load_platform(engine, LoyaltySettings(adapter="acme")), AcmeLoyalty)


@pytest.fixture
async def harness(acme: None, time_skipping: WorkflowEnvironment, engine: sa.Engine,
                  settings: Settings, task_queue: str) -> AsyncIterator[Harness]:
    assert acme is None  # the entry point is in place before the worker starts
    settings.loyalty.adapter = "acme"
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


async def test_journeys_reach_the_external_platform(harness: Harness,
                                                    sandbox: SandboxServer) -> None:
    harness.publish("""
journey: acme-bonus
trigger: {event: order.placed}
settings: {category: service}
steps:
  - accrue_bonus: {percent_of_order: 10, expires_in: 30d, reason: purchase}
  - branch:
      if: "customer.loyalty.level == 'Acme Gold'"
      then:
        - send:
            channel: sms
            text: "+{{ steps.accrue_bonus.amount }}, now {{ steps.accrue_bonus.balance }}"
""")
    add_customer(harness.engine, "c-acme")
    await harness.fire("order.placed", "c-acme", {"order_id": "o-5", "total": 12_345})
    status = await harness.finish("journey/acme-bonus/c-acme")

    assert [s.outcome for s in status.steps] == ["accrued", "then", "accepted"]
    [call] = CALLS
    assert (call.amount, call.order_id, call.reason) == (1234, "o-5", "purchase")
    assert call.customer == Identifier(type="id", value="c-acme")
    assert call.source.kind == "journey" and call.source.step == "1-accrue_bonus"
    assert call.expires_at is not None and call.expires_at > datetime(2020, 1, 1, tzinfo=UTC)
    assert [m["text"] for m in sandbox.sent("sms")] == ["+1234, now 4242"]

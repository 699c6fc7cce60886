"""Marketing mail's unsubscribe link works: one click (RFC 8058) or the page, no API key,
the consent withdrawn with its source, and the token good for its own customer only."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from tests.support.api import make_app
from tests.support.delivery import delivering
from tests.support.harness import Harness
from tests.support.journeys import add_customer
from tests.support.servers import serve
from tests.support.smtp import Inbox, smtp_server
from tropa.policy.unsubscribe import list_unsubscribe
from tropa.settings import Settings
from tropa.store.models import ConsentChange, Customer

NEWS = """
journey: news
trigger: {event: promo}
steps:
  - send: {channel: email, subject: "Sale", text: "Everything half price"}
"""
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str, smtp: tuple[Inbox, int]) -> AsyncIterator[Harness]:
    settings.providers.email_transport, settings.providers.smtp_port = "smtp", smtp[1]
    # The API serves over real HTTP, as a mail provider would reach it.
    async with delivering(time_skipping, engine, settings, task_queue, receipts=True) as h:
        settings.providers.unsubscribe_url = f"{settings.delivery.receipts_base_url}/v1/unsubscribe"
        yield h


def _one_click_url(header: str) -> str:
    (url,) = re.findall(r"<(https?://[^>]+)>", header)
    return url


def _consents(engine: sa.Engine, customer_id: str) -> dict[str, dict[str, bool]]:
    with Session(engine) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return customer.consents


def _sources(engine: sa.Engine) -> list[tuple[str, str, bool, str]]:
    with Session(engine) as session:
        return [(c.customer_id, c.channel, c.granted, c.source)
                for c in session.exec(select(ConsentChange).order_by(ConsentChange.id))]  # type: ignore[arg-type]


async def test_one_click_from_the_received_mail_stops_the_next_marketing_mail(
        harness: Harness, smtp: tuple[Inbox, int]) -> None:
    harness.publish(NEWS)
    add_customer(harness.engine, "c-1")
    await harness.fire("promo", "c-1")
    first = await harness.finish("journey/news/c-1")
    (_, mail), = smtp[0].mails
    assert first.steps[0].outcome == "accepted"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = _one_click_url(mail["List-Unsubscribe"])

    # What a mail client does on "Unsubscribe" (RFC 8058): a form POST, no API key.
    async with httpx.AsyncClient() as client:
        response = await client.post(url, data=ONE_CLICK)
        again = await client.post(url, data=ONE_CLICK)

    assert response.status_code == again.status_code == 200, response.text
    assert response.json() == {"status": "unsubscribed", "category": "marketing",
                               "channel": "email"}
    assert _consents(harness.engine, "c-1")["marketing"] == {"sms": True, "email": False}
    assert _sources(harness.engine)[0] == ("c-1", "email", False, "unsubscribe:one_click")

    await harness.fire("promo", "c-1")
    second = await harness.finish("journey/news/c-1")
    assert (second.steps[0].outcome, second.steps[0].detail) == ("suppressed", "no_consent")
    assert len(smtp[0].mails) == 1


@pytest.fixture
async def api_url(time_skipping: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[str]:
    with serve(make_app(time_skipping.client, any_engine, settings, task_queue)) as url:
        yield url


def _link(settings: Settings, api_url: str, customer_id: str, channel: str = "email",
          secret: str | None = None) -> str:
    p = settings.providers
    header = list_unsubscribe(secret or p.unsubscribe_secret.get_secret_value(),
                              f"{api_url}/v1/unsubscribe", "", customer_id, channel)
    return _one_click_url(header["List-Unsubscribe"])


async def test_the_page_confirms_in_the_customers_language(
        any_engine: sa.Engine, settings: Settings, api_url: str) -> None:
    add_customer(any_engine, "c-ru", locale="ru")
    add_customer(any_engine, "c-en", locale="en-GB")
    async with httpx.AsyncClient() as client:
        ru = await client.get(_link(settings, api_url, "c-ru"))
        en = await client.get(_link(settings, api_url, "c-en", "sms"))

    assert ru.status_code == en.status_code == 200
    assert "Вы отписались" in ru.text and "по электронной почте" in ru.text
    assert "You are unsubscribed" in en.text and "by SMS" in en.text
    assert _consents(any_engine, "c-ru")["marketing"] == {"sms": True, "email": False}
    assert _consents(any_engine, "c-en")["marketing"] == {"sms": False, "email": True}
    assert _sources(any_engine) == [("c-ru", "email", False, "unsubscribe:page"),
                                    ("c-en", "sms", False, "unsubscribe:page")]


async def test_a_token_unsubscribes_its_own_customer_and_channel_only(
        any_engine: sa.Engine, settings: Settings, api_url: str) -> None:
    add_customer(any_engine, "c-1")
    add_customer(any_engine, "c-2")
    own = _link(settings, api_url, "c-1")
    other_customer = own.replace("t=c-1.", "t=c-2.")
    other_channel = own.replace(".email.", ".sms.")
    other_key = _link(settings, api_url, "c-2", secret="somebody-elses-key")
    unsigned = f"{api_url}/v1/unsubscribe?t=c-2.email.{'0' * 32}"
    async with httpx.AsyncClient() as client:
        refused = [await client.post(url, data=ONE_CLICK)
                   for url in (other_customer, other_channel, other_key, unsigned)]
        page = await client.get(other_customer)
        missing = await client.post(f"{api_url}/v1/unsubscribe", data=ONE_CLICK)

    assert [r.status_code for r in refused] == [400, 400, 400, 400]
    assert "not a valid unsubscribe link" in refused[0].json()["detail"]
    assert page.status_code == 400 and "This link is not valid" in page.text
    assert missing.status_code == 422
    for customer in ("c-1", "c-2"):
        assert _consents(any_engine, customer)["marketing"] == {"sms": True, "email": True}
    assert _sources(any_engine) == []

"""A customer's personal data stays in the database: it reaches no workflow history, search
attribute, memo or log line, even when templates, a webhook receiver or the database fail
on it."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlmodel import Session, select
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.harness import Harness, running
from tests.support.history import run_text
from tests.support.journeys import add_customer
from tests.support.receiver import SECRET, Receiver
from tests.support.servers import serve
from tests.support.waiting import eventually
from tropa.logs import get_logger, mask_personal
from tropa.settings import Settings
from tropa.store.models import Message

EXAMPLES = Path(__file__).parent.parent / "examples"
PERSON: dict[str, Any] = {
    "first_name": "Zqfirstmark",
    "last_name": "Zqlastmark",
    "phone": "+79161239876",
    "email": "zq.mailmark@example.com",
}
# Every form a value could take: as stored, national digits, the address's local part.
MARKERS = ("zqfirstmark", "zqlastmark", "9161239876", "zq.mailmark")

# Each step type that reads the customer, and each way a step can fail on the data.
EVERYTHING = """
journey: pii-all
trigger: {event: go}
settings: {category: service}
steps:
  - send:
      channel: email
      subject: "Hello {{ customer.first_name }} {{ customer.last_name }}"
      text: "Your contacts: {{ customer.email }}, {{ customer.phone }}"
  - branch:
      if: "customer.first_name and customer.phone_verified"
      then:
        - send: {channel: sms, text: "{{ customer.first_name }}, hello"}
  - wait_for:
      event: answer
      where: "event.data.ok"
      timeout: 1s
  - update_customer: {add_tags: [pii-checked]}
  - send: {channel: sms, text: "{{ customer.email | money }}"}
  - send: {channel: sms, text: "{{ event.data[customer.email] }}"}
  - send: {channel: sms, text: "{{ customer.phone | int + customer.first_name }}"}
  - send: {channel: email, subject: "Dates", text: "{{ customer.last_name | date }}"}
  - webhook:
      url: "RECEIVER/hooks/contact"
      body:
        name: "{{ customer.first_name }} {{ customer.last_name }}"
        phone: "{{ customer.phone }}"
        email: "{{ customer.email }}"
  - webhook:
      url: "RECEIVER/hooks/broken"
      body: {phone: "{{ customer.phone | date }}"}
"""
CONDITION = """
journey: pii-condition
trigger: {event: go}
settings: {category: service}
steps:
  - branch:
      if: "customer.email | money"
      then: [{send: {channel: sms, text: never}}]
"""
DATABASE = """
journey: pii-database
trigger: {event: db.go}
settings: {category: service}
steps:
  - send: {channel: sms, text: "dberror {{ customer.first_name }} {{ customer.phone }}"}
"""
# A real database error on the message INSERT, whose parameters hold the phone and text;
# PostgreSQL's error also quotes the row in its DETAIL, as its constraint errors do.
FAIL_INSERT = {
    "sqlite": ["CREATE TRIGGER pii_fail BEFORE INSERT ON messages WHEN NEW.text LIKE "
               "'dberror%' BEGIN SELECT RAISE(ABORT, 'refused by test'); END"],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION pii_fail() RETURNS trigger AS $$ BEGIN "
        "IF NEW.text LIKE 'dberror%' THEN RAISE EXCEPTION 'refused by test' "
        "USING DETAIL = 'Key (text)=(' || NEW.text || ')'; END IF; RETURN NEW; END "
        "$$ LANGUAGE plpgsql",
        "CREATE TRIGGER pii_fail BEFORE INSERT ON messages FOR EACH ROW "
        "EXECUTE FUNCTION pii_fail()"],
}
DROP_TRIGGER = {"sqlite": ["DROP TRIGGER IF EXISTS pii_fail"],
                "postgresql": ["DROP TRIGGER IF EXISTS pii_fail ON messages",
                               "DROP FUNCTION IF EXISTS pii_fail()"]}


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    box = Receiver()
    with serve(box.app()) as url:
        yield box, url


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, any_engine: sa.Engine,
                  settings: Settings, task_queue: str, receiver: tuple[Receiver, str]
                  ) -> AsyncIterator[Harness]:
    """Workers on SQLite and PostgreSQL in turn, whose message INSERT fails on `dberror`."""
    settings.providers.webhook_secret = SecretStr(SECRET)
    settings.webhook.allowed_hosts = [receiver[1].removeprefix("http://")]
    dialect = any_engine.dialect.name
    with any_engine.begin() as conn:
        for statement in FAIL_INSERT[dialect]:
            conn.execute(sa.text(statement))
    try:
        async with running(time_skipping, any_engine, settings, task_queue) as h:
            yield h
    finally:
        with any_engine.begin() as conn:  # the PostgreSQL database outlives this test
            for statement in DROP_TRIGGER[dialect]:
                conn.execute(sa.text(statement))


def seconds(journey: str) -> str:
    """The journey with every wait and timeout shortened to a second: the test then needs
    no time skipping (which an earlier test on the shared server may have left locked)."""
    return re.sub(r"(wait|timeout): \d+[mhdw]\b", r"\1: 1s", journey)


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    return [m for m in MARKERS if m in lowered]


async def test_personal_data_reaches_no_history_attribute_memo_or_log(
        harness: Harness, receiver: tuple[Receiver, str], sandbox: SandboxServer,
        caplog: pytest.LogCaptureFixture) -> None:
    box, base = receiver
    # The receiver refuses the first call and echoes what it got, as receivers do.
    box.answers = [(400, "no such contact: {first_name} {phone} {email}".format(**PERSON))]
    caplog.set_level(logging.INFO)
    who = f"pii-{harness.engine.dialect.name}"  # run ids differ on the shared test server
    for path in sorted(EXAMPLES.glob("*.yaml")):
        harness.publish(seconds(path.read_text()))
    for text in (EVERYTHING.replace("RECEIVER", base), CONDITION, DATABASE):
        harness.publish(text)
    add_customer(harness.engine, who, **PERSON)

    with capture_logs() as structured:
        runs = []
        for event, data in [("go", {}),
                            ("cart.updated", {"cart_id": "k1", "cart_url": "https://s/k1"}),
                            ("order.awaiting_payment", {"order_id": "o1", "total": 990,
                                                        "payment_url": "https://s/p"})]:
            runs += (await harness.fire(event, who, data)).started
        assert len(runs) == 4, runs
        await harness.fire("answer", who, {"ok": True})
        everything = await harness.finish(f"journey/pii-all/{who}")
        for workflow_id in (f"journey/abandoned-cart/{who}/k1",
                            f"journey/payment-link/{who}/o1"):
            await harness.finish(workflow_id)
        # A condition that cannot be evaluated counts as not holding; its step records why,
        # by the filter and the kind of value only.
        condition = await harness.finish(f"journey/pii-condition/{who}")
        assert condition.state == "completed"
        assert "`money` needs a number" in (condition.steps[0].detail or "")
        # Last, as its activity retries for ever (which holds the test server's clock back):
        # the database refuses the message row again and again; two attempts are enough.
        runs += (await harness.fire("db.go", who)).started
        await eventually(lambda: _database_failures(caplog) >= 2,
                         message="two failed attempts of the refused INSERT")
        texts = {run: await run_text(harness.handle(run)) for run in runs}

    # no marker anywhere Temporal or the logs keep
    for run, text in texts.items():
        assert leaks(text) == [], f"{run} holds personal data"
    lines = [r.getMessage() for r in caplog.records] + [
        logging.Formatter().formatException(r.exc_info) for r in caplog.records if r.exc_info]
    assert leaks("\n".join(lines)) == [], [line for line in lines if leaks(line)]
    assert leaks(repr(structured)) == [], structured

    # the journeys did run: messages went out, each failure was recorded with its field
    outcomes = [(s.step_id, s.outcome) for s in everything.steps]
    assert ("1-send", "accepted") in outcomes, outcomes
    assert [o for _, o in outcomes].count("cancelled") == 4, outcomes
    assert {m["channel"] for m in sandbox.sent()} == {"email", "sms"}
    assert [c["name"] for c in box.calls] == ["contact"]
    with Session(harness.engine) as session:
        # The shipped journeys' own cancellations (channels this test leaves unconfigured)
        # are not what this test is about.
        cancelled = session.exec(select(Message).where(
            Message.status == "cancelled", Message.reason != "channel_not_configured")).all()
    reasons = sorted(m.history[-1]["detail"] for m in cancelled)
    assert reasons == [
        "`date` needs a date or an ISO timestamp, got a text that is not one",
        "`money` needs a number, got a text",
        "template failed on this data: TypeError at line 1 of the template; a value is not "
        "of the kind the expression needs (the values are not shown, they may be personal "
        "data)",
        "template uses a value this customer lacks: 'dict object' has no attribute '…'"]
    details = [s.detail for s in everything.steps]
    assert "WebhookRejected: Webhook answered 400 Bad Request" in details
    assert any("`body.phone`" in d for d in details), details
    assert "database error in tropa.send" in texts[f"journey/pii-database/{who}"]


def _database_failures(caplog: pytest.LogCaptureFixture) -> int:
    """Failed attempts of the refused INSERT the worker logged (old or new wording)."""
    return sum(1 for r in caplog.records if r.exc_info is not None
               and ("refused by test" in str(r.exc_info[1])
                    or "database error" in str(r.exc_info[1])))


def test_a_database_error_text_holds_no_statement_values(any_engine: sa.Engine) -> None:
    add_customer(any_engine, "pii-db", **PERSON)
    with pytest.raises(sa.exc.IntegrityError) as caught:
        add_customer(any_engine, "pii-db", **PERSON)  # the same id again

    assert leaks(str(caught.value)) == [], str(caught.value)
    assert "parameters hidden" in str(caught.value)


def test_log_fields_named_for_personal_data_are_masked() -> None:
    with capture_logs(processors=[mask_personal]) as logs:
        get_logger("plugin").info("sent", to=PERSON["phone"], email=PERSON["email"],
                                  first_name=PERSON["first_name"], step_id="1-send")

    assert leaks(repr(logs)) == [], logs
    assert logs[0]["step_id"] == "1-send"

"""Storage on SQLite and PostgreSQL: migrations, uniqueness that makes side effects happen once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from tests.support.journeys import add_customer
from tropa.dsl.plan import RunRef, StepCall
from tropa.services import journeys
from tropa.steps.update_customer import apply_update
from tropa.store.db import session_scope
from tropa.store.models import Customer, Event, JourneyVersion, Message, SideEffect

RUN = RunRef(workflow_id="journey/j/c-1", run_id="r1", journey="j", version="v",
             customer_id="c-1", category="service")


def test_schema_is_migrated(any_engine: sa.Engine) -> None:
    tables = set(sa.inspect(any_engine).get_table_names())
    assert {"customers", "events", "journeys", "journey_versions", "messages", "side_effects",
            "api_keys", "active_runs", "alembic_version"} <= tables


def test_event_id_is_unique(any_engine: sa.Engine) -> None:
    now = datetime.now(UTC)
    with session_scope(any_engine) as session:
        session.add(Event(event_id="e-1", type="t", customer_id="c", occurred_at=now))
    with pytest.raises(IntegrityError), session_scope(any_engine) as session:
        session.add(Event(event_id="e-1", type="t", customer_id="c", occurred_at=now))
    with Session(any_engine) as session:
        stored = session.exec(select(Event)).all()
    assert len(stored) == 1
    assert stored[0].occurred_at == now
    assert stored[0].occurred_at.tzinfo is not None


def test_message_idempotency_key_is_unique(any_engine: sa.Engine) -> None:
    def message() -> Message:
        return Message(idempotency_key="journey/j/c-1/r1/1-send/sms", journey="j",
                       workflow_id="journey/j/c-1", step_id="1-send", customer_id="c-1",
                       channel="sms", category="service")

    with session_scope(any_engine) as session:
        session.add(message())
    with pytest.raises(IntegrityError), session_scope(any_engine) as session:
        session.add(message())


def test_customer_update_applies_once_per_key(any_engine: sa.Engine) -> None:
    add_customer(any_engine, "c-1", tags=["old"])
    call = StepCall(run=RUN, step_id="2-update_customer", step_type="update_customer",
                    params={"add_tags": ["vip"], "remove_tags": ["old"], "set": {"tier": 2}},
                    idempotency_key="journey/j/c-1/r1/2-update_customer")
    first = apply_update(any_engine, call)
    with session_scope(any_engine) as session:
        customer = session.get(Customer, "c-1")
        assert customer is not None
        customer.tags = [*customer.tags, "added-later"]
    again = apply_update(any_engine, call)

    assert first.outcome == again.outcome == "updated"
    assert again.detail == "already applied"
    with Session(any_engine) as session:
        customer = session.get(Customer, "c-1")
        assert customer is not None
        assert customer.tags == ["vip", "added-later"]
        assert customer.attributes == {"tier": 2}
        assert len(session.exec(select(SideEffect)).all()) == 1


def test_versions_keep_their_source_and_same_content_is_one_version(any_engine: sa.Engine) -> None:
    text = "journey: j\ntrigger: {event: e}\nsteps:\n  - wait: 1h\n"
    with session_scope(any_engine) as session:
        first = journeys.create_version(session, text)
        second = journeys.create_version(session, text + "# same content\n")
        third = journeys.create_version(session, text.replace("1h", "2h"))
        journeys.publish(session, "j", third.version)
    assert first.version == second.version != third.version
    with Session(any_engine) as session:
        rows = session.exec(select(JourneyVersion)).all()
    assert sorted(r.source_yaml for r in rows) == sorted([text, text.replace("1h", "2h")])

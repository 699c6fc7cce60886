"""A broadcast page on SQLite and PostgreSQL: two recipient ids merged into one person get one
message, and the progress still adds up to the recipients."""

from __future__ import annotations

from datetime import timedelta

import httpx
import sqlalchemy as sa

from tests.support.broadcasts import EMAIL, add_customers, progress_of
from tropa.broadcasts.pages import PagePreparer
from tropa.channels.catalog import build_adapters
from tropa.clock import utcnow
from tropa.settings import Settings
from tropa.store.broadcast_models import Broadcast, BroadcastRecipient
from tropa.store.customer_models import CustomerAlias
from tropa.store.db import session_scope


def test_two_ids_of_one_person_get_one_message_and_the_progress_adds_up(
        any_engine: sa.Engine, settings: Settings) -> None:
    now = utcnow()
    add_customers(any_engine, ["c-1", "c-2"])
    with session_scope(any_engine) as session:
        # c-old was merged into c-1 after the audience snapshot named both
        session.add(CustomerAlias(alias_id="c-old", customer_id="c-1"))
        session.add(Broadcast(id="bc-1", name="sale", channel="email", audience={"tag": "bc"},
                              send=EMAIL, start={"now": True}, starts_at=now,
                              workflow_id="broadcast/bc-1"))
        session.flush()
        for cid in ("c-1", "c-old", "c-2"):
            session.add(BroadcastRecipient(broadcast_id="bc-1", customer_id=cid,
                                           send_at=now - timedelta(seconds=1)))
    preparer = PagePreparer(any_engine, build_adapters(settings, httpx.Client(timeout=5)),
                            settings)

    page = preparer.prepare_page("bc-1", now, limit=10)

    assert (page.handled, page.counts.queued, page.counts.skipped) == (3, 2, 1)
    assert sorted(page.keys) == sorted(set(page.keys))  # one message per person
    p = progress_of(any_engine, "bc-1")
    assert (p.recipients, p.queued, p.failed, p.failed_by_reason) == (
        3, 2, 1, {"merged_customer": 1})
    assert p.recipients == (p.holdout + p.pending + p.queued + p.sent + p.failed
                            + p.cancelled + sum(p.suppressed.values()))

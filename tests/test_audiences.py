"""Audience filters in SQL: every kind of condition, nesting and `not:` select exactly the
customers a marketer expects, on SQLite and PostgreSQL; pages walk the audience in id order."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from tropa.audiences import audience_select, page_customer_ids, parse_audience, resolve
from tropa.audiences.sql import count
from tropa.store.customer_models import Card, Order, PurchaseStats
from tropa.store.db import session_scope
from tropa.store.loyalty_models import LoyaltyAccount, LoyaltyBucket, LoyaltyOperation
from tropa.store.models import Customer
from tropa.store.segment_models import CustomerSegment

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
ALL = {"c1", "c2", "c3", "c4"}


def _customers() -> list[Customer]:
    return [
        Customer(id="c1", phone="+79990000001", email="one@example.com", tags=["vip", "new"],
                 birthday=date(1990, 5, 14), created_at=datetime(2026, 1, 1, tzinfo=UTC),
                 consents={"marketing": {"email": True}},
                 attributes={"city": "Moscow", "interests": ["shoes", "bags"], "score": 7,
                             "vip_flag": True, "utm_source": "google", "referral": "FRIEND1",
                             "wedding_date": "2020-05-20",
                             "children": [{"birth_date": "2018-03-08"},
                                          {"birth_date": "2021-11-02"}]}),
        Customer(id="c2", email="two@example.com", birthday=date(1985, 12, 1),
                 created_at=NOW - timedelta(days=5),
                 consents={"marketing": {"email": False, "sms": True}},
                 attributes={"city": "Kazan", "interests": "shoes and more", "score": 3.5,
                             "vip_flag": False, "utm_source": "email"}),
        Customer(id="c3", created_at=datetime(2025, 1, 1, tzinfo=UTC),
                 attributes={"city": 42, "children": [{"birth_date": "2019-08-03"}]}),
        Customer(id="c4", phone="", external_id="X4", birthday=date(2000, 2, 29),
                 created_at=datetime(2025, 6, 1, tzinfo=UTC), attributes={"city": "moscow"}),
    ]


def _order(oid: str, customer: str, days_ago: int, total: int, currency: str = "RUB",
           counted: bool = True) -> Order:
    return Order(id=oid, customer_id=customer, placed_at=NOW - timedelta(days=days_ago),
                 status="paid", currency=currency, total=total, body_hash="x", counted=counted)


def _bucket(session: Any, account: LoyaltyAccount, key: str, amount: int,
            expires: datetime | None) -> None:
    op = LoyaltyOperation(idempotency_key=key, account_id=account.id,
                          customer_id=account.customer_id, kind="accrual", amount=amount)
    session.add(op)
    session.flush()
    session.add(LoyaltyBucket(account_id=account.id, operation_id=op.id, amount=amount,
                              remaining=amount, active_from=NOW - timedelta(days=30),
                              expires_at=expires))


@pytest.fixture
def base(any_engine: sa.Engine) -> sa.Engine:
    with session_scope(any_engine) as session:
        session.add_all(_customers())
        session.flush()
        session.add_all([Card(customer_id="c1", barcode="100", status="active"),
                         Card(customer_id="c4", barcode="400", status="blocked")])
        session.add_all([CustomerSegment(customer_id="c1", segment="loyal", since=NOW),
                         CustomerSegment(customer_id="c2", segment="at_risk", since=NOW)])
        session.add_all([_order("o1", "c1", 10, 10000), _order("o2", "c1", 20, 10000),
                         _order("o3", "c1", 60, 10000), _order("o4", "c2", 200, 5000),
                         _order("o5", "c4", 10, 10000, "USD"),
                         _order("o6", "c3", 5, 9000, counted=False)])
        session.add_all([
            PurchaseStats(customer_id="c1", currency="RUB", orders_count=3, total_spent=30000,
                          first_purchase_at=NOW - timedelta(days=60),
                          last_purchase_at=NOW - timedelta(days=10)),
            PurchaseStats(customer_id="c2", currency="RUB", orders_count=1, total_spent=5000,
                          first_purchase_at=NOW - timedelta(days=200),
                          last_purchase_at=NOW - timedelta(days=200)),
            PurchaseStats(customer_id="c4", currency="USD", orders_count=1, total_spent=10000,
                          first_purchase_at=NOW - timedelta(days=10),
                          last_purchase_at=NOW - timedelta(days=10))])
        bonus1 = LoyaltyAccount(customer_id="c1", programme="default", kind="bonus")
        qual1 = LoyaltyAccount(customer_id="c1", programme="default", kind="qualification",
                               level="Gold")
        bonus2 = LoyaltyAccount(customer_id="c2", programme="default", kind="bonus")
        session.add_all([bonus1, qual1, bonus2])
        session.flush()
        _bucket(session, bonus1, "a1", 800, None)
        _bucket(session, bonus2, "a2", 100, NOW + timedelta(days=10))
        _bucket(session, bonus2, "a3", 500, NOW - timedelta(days=1))  # burnt
    return any_engine


CASES: list[tuple[str, Any, set[str]]] = [
    ("identifier phone", {"has": "phone"}, {"c1"}),
    ("identifier email", {"has": "email"}, {"c1", "c2"}),
    ("identifier card (active only)", {"has": "card"}, {"c1"}),
    ("identifier external id", {"has": "external_id"}, {"c4"}),
    ("two identifiers", {"has": ["phone", "email"]}, {"c1"}),
    ("text eq is exact", {"field": "attributes.city", "eq": "Moscow"}, {"c1"}),
    ("text ne skips other kinds", {"field": "attributes.city", "ne": "Moscow"}, {"c2", "c4"}),
    ("in", {"field": "attributes.city", "in": ["Moscow", "Kazan"]}, {"c1", "c2"}),
    ("number eq", {"field": "attributes.city", "eq": 42}, {"c3"}),
    ("exists", {"field": "attributes.score", "exists": True}, {"c1", "c2"}),
    ("not exists", {"field": "attributes.score", "exists": False}, {"c3", "c4"}),
    ("contains: list element or substring", {"field": "attributes.interests",
                                             "contains": "shoes"}, {"c1", "c2"}),
    ("contains: a list element only", {"field": "attributes.interests", "contains": "bags"},
     {"c1"}),
    ("gt on numbers", {"field": "attributes.score", "gt": 3}, {"c1", "c2"}),
    ("lte on numbers", {"field": "attributes.score", "lte": 3.5}, {"c2"}),
    ("bool eq", {"field": "attributes.vip_flag", "eq": True}, {"c1"}),
    ("bool ne", {"field": "attributes.vip_flag", "ne": True}, {"c2"}),
    ("profile text", {"field": "external_id", "eq": "X4"}, {"c4"}),
    ("profile text contains", {"field": "email", "contains": "two@"}, {"c2"}),
    ("profile exists ignores empty text", {"field": "phone", "exists": True}, {"c1"}),
    ("birthday month", {"field": "birthday", "month": 5}, {"c1"}),
    ("birthday months", {"field": "birthday", "month": [5, 12]}, {"c1", "c2"}),
    ("birthday month and day", {"field": "birthday", "month": 2, "day": 29}, {"c4"}),
    ("birthday before", {"field": "birthday", "lt": "1989-01-01"}, {"c2"}),
    ("birthday exists", {"field": "birthday", "exists": False}, {"c3"}),
    ("attribute date month", {"field": "attributes.wedding_date", "month": 5}, {"c1"}),
    ("attribute date compare", {"field": "attributes.wedding_date", "gte": "2020-01-01"},
     {"c1"}),
    ("list date: one element holds both parts",
     {"field": "attributes.children[].birth_date", "month": 3, "day": 8}, {"c1"}),
    ("list date: parts of two elements do not mix",
     {"field": "attributes.children[].birth_date", "month": 3, "day": 2}, set()),
    ("list date exists", {"field": "attributes.children[].birth_date", "exists": True},
     {"c1", "c3"}),
    ("created_at older than", {"field": "created_at", "older_than": "30d"}, {"c1", "c3", "c4"}),
    ("registered within", {"registered": {"within": "30d"}}, {"c2"}),
    ("registered date part", {"field": "created_at", "month": 1, "day": 1}, {"c1", "c3"}),
    ("tag", {"tag": "vip"}, {"c1"}),
    ("not tag", {"not": {"tag": "vip"}}, {"c2", "c3", "c4"}),
    ("consent marketing", {"consent": "email"}, {"c1"}),
    ("consent channel", {"consent": {"category": "marketing", "channel": "sms"}}, {"c2"}),
    ("consent service needs none", {"consent": {"category": "service", "channel": "sms"}}, ALL),
    ("segment", {"segment": "loyal"}, {"c1"}),
    ("segments", {"segment": ["loyal", "at_risk"]}, {"c1", "c2"}),
    ("balance at least", {"loyalty": {"balance": {"gte": 500}}}, {"c1"}),
    ("balance below counts no account as 0", {"loyalty": {"balance": {"lt": 200}}},
     {"c2", "c3", "c4"}),
    ("level", {"loyalty": {"level": "Gold"}}, {"c1"}),
    ("purchases in a period", {"purchases": {"within": "90d", "count": {"gte": 2}}}, {"c1"}),
    ("no purchases in a period", {"purchases": {"within": "90d", "count": 0}}, {"c2", "c3"}),
    ("sum in a period and currency", {"purchases": {"within": "30d", "currency": "RUB",
                                                    "sum": {"gte": 20000}}}, {"c1"}),
    ("all-time count", {"purchases": {"count": {"gte": 1}}}, {"c1", "c2", "c4"}),
    ("all-time sum in a currency", {"purchases": {"currency": "USD", "sum": {"gt": 0}}},
     {"c4"}),
    ("last purchase long ago", {"last_purchase": {"older_than": "90d"}}, {"c2"}),
    ("last purchase recent", {"last_purchase": {"within": "30d"}}, {"c1", "c4"}),
    ("never bought", {"last_purchase": {"exists": False}}, {"c3"}),
    ("utm", {"utm": {"source": "google"}}, {"c1"}),
    ("referral", {"referral": "FRIEND1"}, {"c1"}),
    ("no referral", {"referral": {"exists": False}}, {"c2", "c3", "c4"}),
    ("everyone", {"all": []}, ALL),
    ("no one", {"any": []}, set()),
    ("nesting", {"any": [{"tag": "vip"},
                         {"all": [{"has": "email"}, {"not": {"segment": "loyal"}}]}]},
     {"c1", "c2"}),
    ("not of a comparison is exact",
     {"not": {"field": "attributes.score", "gt": 3}}, {"c3", "c4"}),
]


def test_each_condition_selects_whom_the_docs_say(base: sa.Engine) -> None:
    # One seeded base for the whole table: seeding per case would cost seconds each.
    wrong: dict[str, tuple[set[str], set[str]]] = {}
    with base.connect() as conn:
        for name, spec, expected in CASES:
            audience = parse_audience(spec)
            found = set(conn.execute(audience_select(audience, now=NOW)).scalars())
            # the YAML spelling and the stored JSON form read back the same
            again = parse_audience(yaml.safe_dump(spec))
            assert parse_audience(again.spec).spec == again.spec, name
            if found != expected:
                wrong[name] = (found, expected)
    assert wrong == {}
    assert count(base, parse_audience({"has": "email"}), now=NOW) == 2


def test_pages_walk_the_audience_in_id_order(base: sa.Engine) -> None:
    audience = parse_audience({"all": []})
    seen: list[str] = []
    after = None
    while True:
        page = page_customer_ids(base, audience, now=NOW, after_id=after, limit=3)
        seen += page
        if len(page) < 3:
            break
        after = page[-1]
    assert seen == sorted(ALL)


def test_audience_select_is_a_subquery(base: sa.Engine) -> None:
    inner = audience_select(parse_audience({"tag": "vip"}), now=NOW).subquery()
    with base.connect() as conn:
        emails = conn.execute(sa.select(Customer.email).where(  # type: ignore[call-overload]
            Customer.id.in_(sa.select(inner.c.customer_id)))).scalars().all()  # type: ignore[attr-defined]
    assert emails == ["one@example.com"]


def test_resolve_reads_a_saved_filter(base: sa.Engine) -> None:
    from tropa.audiences import saved

    with session_scope(base) as session:
        _, audience = saved.read_document("filter: {segment: loyal}\n")
        saved.put(session, "loyal", source="filter: {segment: loyal}\n", description="",
                  audience=audience, now=NOW)
    with session_scope(base) as session:
        resolved = resolve(session, {"saved": "loyal"})
        inline = resolve(session, {"tag": "vip"})
    assert page_customer_ids(base, resolved, now=NOW, after_id=None, limit=10) == ["c1"]
    assert page_customer_ids(base, inline, now=NOW, after_id=None, limit=10) == ["c1"]

"""RF segments in SQL: customers with given purchases land where the docs say, move once, and
a full recompute in pages agrees with the per-customer refresh, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.support.waiting import eventually_sync
from tropa.dsl.plan import EventIn
from tropa.segments import compute
from tropa.segments.config import load_default, parse
from tropa.services import segments

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
CONFIG = load_default()

# customer -> days ago of each counted purchase
HISTORIES: dict[str, list[int]] = {
    "c-new": [3],
    "c-promising": [2, 40, 100],
    "c-loyal": [1, 20, 50, 80, 120],
    "c-wandering": [45],
    "c-at-risk": [60, 70, 80, 100, 200, 300],
    "c-dormant": [150, 200],
    "c-lost": [400],
}
EXPECTED = {"c-new": "new", "c-promising": "promising", "c-loyal": "loyal",
            "c-wandering": "wandering", "c-at-risk": "at_risk", "c-dormant": "dormant",
            "c-lost": "lost"}


def _seed(engine: sa.Engine, histories: dict[str, list[int]]) -> None:
    with engine.begin() as conn:
        for customer, days in histories.items():
            conn.execute(sa.text("INSERT INTO customers (id, phone_verified, email_verified, "
                                 "time_zone, locale, consents, tags, attributes, created_at, "
                                 "updated_at) VALUES (:id, false, false, 'UTC', 'ru', '{}', '[]',"
                                 " '{}', :now, :now)"), {"id": customer, "now": NOW})
            for i, ago in enumerate(days):
                _order(conn, f"{customer}-o{i}", customer, NOW - timedelta(days=ago))


def _order(conn: sa.Connection, order_id: str, customer: str, placed_at: datetime) -> None:
    conn.execute(sa.text(
        "INSERT INTO orders (id, customer_id, placed_at, status, currency, total, refunded, "
        "channel, items, attributes, body_hash, counted, created_at, updated_at) VALUES "
        "(:id, :c, :at, 'placed', 'RUB', 1000, 0, 'online', '[]', '{}', 'h', true, :at, :at)"),
        {"id": order_id, "c": customer, "at": placed_at})


def _current(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {str(r[0]): str(r[1]) for r in conn.execute(
            sa.text("SELECT customer_id, segment FROM customer_segments"))}


def _moves(engine: sa.Engine) -> list[tuple[str, str | None, str | None, str]]:
    with engine.connect() as conn:
        return [(r[0], r[1], r[2], r[3]) for r in conn.execute(sa.text(
            "SELECT customer_id, from_segment, to_segment, cause FROM segment_moves ORDER BY id"))]


def test_purchase_histories_land_in_documented_segments(any_engine: sa.Engine) -> None:
    _seed(any_engine, HISTORIES)
    with any_engine.begin() as conn:
        moves = compute.refresh(conn, CONFIG, list(HISTORIES), now=NOW, cause="purchase")
    assert _current(any_engine) == EXPECTED
    assert sorted((m.customer_id, m.from_segment, m.to_segment) for m in moves) == sorted(
        (c, None, s) for c, s in EXPECTED.items())
    # Nothing changed: nothing moves, nothing is recorded twice.
    with any_engine.begin() as conn:
        assert compute.refresh(conn, CONFIG, list(HISTORIES), now=NOW, cause="time") == []
    assert len(_moves(any_engine)) == len(EXPECTED)


def test_second_purchase_days_passing_and_refund_move_as_documented(
        any_engine: sa.Engine) -> None:
    _seed(any_engine, {"c-1": [3]})
    with any_engine.begin() as conn:
        compute.refresh(conn, CONFIG, ["c-1"], now=NOW, cause="purchase")
        _order(conn, "c-1-o2", "c-1", NOW)
        second = compute.refresh(conn, CONFIG, ["c-1"], now=NOW, cause="purchase")
    assert [(m.from_segment, m.to_segment) for m in second] == [("new", "promising")]
    later = NOW + timedelta(days=31)  # the last purchase is now 31 days old: fairly recent
    with any_engine.begin() as conn:
        passed = compute.refresh(conn, CONFIG, ["c-1"], now=later, cause="time")
        conn.execute(sa.text("UPDATE orders SET counted = false WHERE customer_id = 'c-1'"))
        refunded = compute.refresh(conn, CONFIG, ["c-1"], now=later, cause="refund")
    assert [(m.from_segment, m.to_segment) for m in passed] == [("promising", "wandering")]
    assert [(m.from_segment, m.to_segment) for m in refunded] == [("wandering", None)]
    assert _current(any_engine) == {}
    assert [m[1:] for m in _moves(any_engine)] == [
        (None, "new", "purchase"), ("new", "promising", "purchase"),
        ("promising", "wandering", "time"), ("wandering", None, "refund")]


def test_full_recompute_moves_only_the_changed_and_preview_counts_moves(
        any_engine: sa.Engine) -> None:
    _seed(any_engine, {**HISTORIES, "c-never": []})
    moved, events = segments.recompute_all(any_engine, now=NOW, cause="config", page_size=3)
    assert (moved, len(events), _current(any_engine)) == (7, 7, EXPECTED)
    assert segments.recompute_all(any_engine, now=NOW, cause="config") == (0, [])
    stricter = parse(
        "window_days: 365\n"
        "recency: [{band: recent, max_days: 2}, {band: fairly_recent, max_days: 90},"
        " {band: long_ago}]\n"
        "frequency: [{band: once, max_purchases: 1}, {band: not_often, max_purchases: 4},"
        " {band: often}]\n"
        "grid:\n"
        "  recent: {once: new, not_often: promising, often: loyal}\n"
        "  fairly_recent: {once: wandering, not_often: wandering, often: at_risk}\n"
        "  long_ago: {once: lost, not_often: dormant, often: at_risk}\n")
    with any_engine.begin() as conn:
        # A 2-day "recent" band: c-new's purchase, 3 days old, is no longer recent.
        assert compute.preview(conn, stricter, now=NOW) == {("new", "wandering"): 1}
        conn.execute(sa.text("UPDATE orders SET counted = false WHERE customer_id = 'c-lost'"))
        assert compute.preview(conn, CONFIG, now=NOW) == {("lost", None): 1}
    # A preview writes nothing.
    assert _current(any_engine) == EXPECTED


def test_purchase_and_daily_run_racing_record_one_move(any_engine: sa.Engine) -> None:
    _seed(any_engine, {"c-r": [3]})
    results: list[list[compute.Move]] = []
    barrier = threading.Barrier(4)

    def refresh() -> None:
        barrier.wait()
        with any_engine.begin() as conn:
            results.append(compute.refresh(conn, CONFIG, ["c-r"], now=NOW, cause="purchase"))

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert [m[1:] for m in _moves(any_engine)] == [(None, "new", "purchase")]


def test_a_batch_of_purchases_stores_one_move_and_the_routed_events_for_each(
        any_engine: sa.Engine) -> None:
    # Ids as the API allows them (letters of any script, digits, `.:@-_`); one purchase each.
    customers = [f"кл-{i}.a:b@c_{i}" for i in range(40)]
    _seed(any_engine, {c: [400] for c in customers})  # lost: one purchase long ago
    events = segments.refresh_customers(any_engine, customers, now=NOW, cause="purchase")
    with any_engine.begin() as conn:
        for c in customers[:25]:
            _order(conn, f"{c}-new", c, NOW)
    later = segments.refresh_customers(any_engine, [*customers, "c-unknown"], now=NOW,
                                       cause="purchase")
    # Again: nothing moves twice.
    assert segments.refresh_customers(any_engine, customers, now=NOW, cause="purchase") == []
    assert [m[1:] for m in _moves(any_engine) if m[0] == customers[0]] == [
        (None, "lost", "purchase"), ("lost", "new", "purchase")]
    assert len(_moves(any_engine)) == 40 + 25
    assert len(later) == 2 * 25  # exited lost, entered new
    with any_engine.connect() as conn:
        stored = {r.event_id: (r.type, r.customer_id, r.data, r.routed_to)
                  for r in conn.execute(sa.text(
                      "SELECT event_id, type, customer_id, data, routed_to FROM events"))}
    # The events stored with the moves are the ones handed to the router, one per side.
    given = [*events, *later]
    assert len(stored) == len(given) == 40 + 50
    for e in given:
        data = stored[e.event_id][2]
        assert (stored[e.event_id][0], stored[e.event_id][1]) == (e.type, e.customer_id)
        assert (data if isinstance(data, dict) else json.loads(data)) == e.data
        assert stored[e.event_id][3] in ([], "[]")  # not routed yet
    assert later[0].data == {"segment": "lost", "from": "lost", "to": "new"}


def test_overlapping_batches_racing_record_each_move_once(any_engine: sa.Engine) -> None:
    # Customers with a segment (lost, then a purchase today) and customers buying for the
    # first time, refreshed by four overlapping batches at once.
    known = [f"c-known-{i}" for i in range(20)]
    first = [f"c-first-{i}" for i in range(10)]
    _seed(any_engine, {c: [400] for c in known})
    _seed(any_engine, {c: [] for c in first})
    segments.refresh_customers(any_engine, known, now=NOW, cause="purchase")
    with any_engine.begin() as conn:
        for c in [*known, *first]:
            _order(conn, f"{c}-today", c, NOW)
    everyone = [*known, *first]
    batches = [everyone, everyone[::-1], everyone[5:], [*first, *known[:10]]]
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(batches))

    def refresh(batch: list[str]) -> None:
        barrier.wait()
        try:
            events = segments.refresh_customers(any_engine, batch, now=NOW, cause="purchase")
            results.append([e.event_id for e in events])
        except BaseException as error:  # a deadlock would surface here
            errors.append(error)

    threads = [threading.Thread(target=refresh, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert _current(any_engine) == dict.fromkeys(everyone, "new")
    moves = [m for m in _moves(any_engine) if m[3] == "purchase"]
    assert sorted(moves, key=str) == sorted(
        [(c, None, "lost", "purchase") for c in known]
        + [(c, "lost", "new", "purchase") for c in known]
        + [(c, None, "new", "purchase") for c in first], key=str)
    # One event per side of each move of this round, from whichever batch made it.
    given = [e for r in results for e in r]
    assert len(given) == len(set(given)) == 2 * len(known) + len(first)


# PostgreSQL only: on SQLite a refresh holds the one write lock, so no purchase can commit
# while it runs and this interleaving cannot happen.
@pytest.mark.parametrize("any_engine", ["postgresql"], indirect=True)
def test_a_first_segment_given_meanwhile_is_computed_again_under_its_lock(
        any_engine: sa.Engine) -> None:
    _seed(any_engine, {"c-late": [3]})
    moved: list[list[EventIn]] = []
    with any_engine.begin() as conn:
        # This transaction gives c-late a first segment and has not committed...
        first = compute.refresh(conn, CONFIG, ["c-late"], now=NOW, cause="purchase")
        # ... when a second purchase commits and its refresh starts, finds no segment yet
        # and waits for the customer.
        with any_engine.begin() as other:
            _order(other, "c-late-o2", "c-late", NOW)
        second = threading.Thread(target=lambda: moved.append(segments.refresh_customers(
            any_engine, ["c-late"], now=NOW, cause="purchase")))
        second.start()
        _wait_for_a_lock_wait(any_engine)
    second.join(timeout=60)
    assert [(m.from_segment, m.to_segment) for m in first] == [(None, "new")]
    assert [(e.type, e.data["to"]) for e in moved[0]] == [
        ("segment.exited", "promising"), ("segment.entered", "promising")]
    assert [m[1:] for m in _moves(any_engine)] == [
        (None, "new", "purchase"), ("new", "promising", "purchase")]


def _wait_for_a_lock_wait(engine: sa.Engine) -> None:
    def waiting() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar() or 0)

    eventually_sync(waiting, timeout=30, interval=0.02,
                    message="the second refresh waiting for the customer")

"""Customers from a file: rows checked, matched to existing customers by any identifier,
written in batches (a batch is one transaction, so never half a row), rejected rows reported.

A row whose identifier another row of the file named earlier, or that another customer holds,
is rejected; the earlier one stays. A row that changes nothing is not written, so importing the
same file again changes nothing. On PostgreSQL a batch goes through COPY into a staging table
and one set-based INSERT ... ON CONFLICT; on SQLite through executemany of the same upsert.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tropa.clock import utcnow
from tropa.customers.audit import Actor, diff
from tropa.customers.imports.rows import Problem, Row
from tropa.store.bulk import among
from tropa.store.customer_dates import DATES, dates_of
from tropa.store.customer_models import AuditEntry, Card
from tropa.store.models import Customer

CUSTOMERS = Customer.__table__  # type: ignore[attr-defined]
CARDS = Card.__table__  # type: ignore[attr-defined]
AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]
# `version` is the customer's ETag counter: new rows take its default, updates bump it.
COLUMNS = [c.name for c in CUSTOMERS.columns if c.name != "version"]
JSON_COLUMNS = ("consents", "tags", "attributes")
COMPARED = [c for c in COLUMNS if c not in ("id", "created_at", "updated_at")]
DEFAULTS: dict[str, Any] = {"external_id": None, "first_name": None, "last_name": None,
                            "phone": None, "phone_verified": False, "email": None,
                            "email_verified": False, "time_zone": "UTC", "locale": "ru",
                            "birthday": None, "registered_at": None, "consents": {},
                            "tags": [], "attributes": {}}
CARD_COLUMNS = ["customer_id", "barcode", "track", "issued_at", "status", "created_at",
                "updated_at"]
DATE_COLUMNS = ["customer_id", "path", "item", "time_zone", "month_day", "value", "item_data"]
KINDS = ("id", "external_id", "phone", "email", "card")
KIND = {**{k: k for k in KINDS}, "card_track": "card"}  # a card's track is one of its names
AUDIT_COLUMNS = ["customer_id", "entity", "entity_id", "action", "actor_kind", "actor_id",
                 "actor_name", "changes", "at"]


@dataclass
class BatchResult:
    """What one batch did."""

    imported: int = 0
    unchanged: int = 0
    problems: list[Problem] = field(default_factory=list)


def new_id(row: Row) -> str:
    """A stable id for a new customer named only by contacts or a card."""
    kind, value = row.identifiers()[0]
    return "c-" + hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:20]


class CustomerImport:
    """Imports batches of checked rows; remembers identifiers of earlier rows of the file."""

    def __init__(self, engine: sa.Engine, actor: Actor, *, dry_run: bool,
                 headers: dict[str, str] | None = None) -> None:
        self.engine = engine
        self.headers = headers or {}
        self.actor = actor
        self.dry_run = dry_run
        # Row numbers by identifier, a dict per kind: a million rows' worth of (kind, value)
        # tuples would be objects the garbage collector walks again and again.
        self.seen: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        self.postgres = engine.dialect.name == "postgresql"

    def run(self, rows: list[Row]) -> BatchResult:
        """Check a batch against earlier rows and the database, then write it at once."""
        result = BatchResult()
        fresh = [r for r in rows if self._first_time(r, result)]
        written = BatchResult()
        try:
            with self.engine.begin() as conn:
                self._write(conn, fresh, written)
            result.imported, result.unchanged = written.imported, written.unchanged
            result.problems += written.problems
        except IntegrityError:
            # Another writer took an identifier meanwhile: the rows go one by one.
            for row in fresh:
                single = BatchResult()
                try:
                    with self.engine.begin() as conn:
                        self._write(conn, [row], single)
                except IntegrityError:
                    single = BatchResult(problems=[Problem(
                        row.number, "", "", "an identifier was taken by another customer "
                        "while importing", "import the file again")])
                result.imported += single.imported
                result.unchanged += single.unchanged
                result.problems += single.problems
        result.problems.sort(key=lambda p: p.row)
        return result

    def _first_time(self, row: Row, result: BatchResult) -> bool:
        seen, identifiers = self.seen, row.identifiers()
        for kind, value in identifiers:
            earlier = seen[KIND[kind]].get(value)
            if earlier is not None:
                result.problems.append(Problem(
                    row.number, self.headers.get(kind, kind), value,
                    f"{kind} already given in row {earlier}", "keep one row per customer"))
                return False
        for kind, value in identifiers:
            seen[KIND[kind]][value] = row.number
        return True

    def _owners(self, conn: sa.Connection, rows: list[Row]) -> dict[tuple[str, str], str]:
        """Which customer holds each identifier the rows name (one query per kind)."""
        owners: dict[tuple[str, str], str] = {}
        wanted: dict[str, set[str]] = {kind: set() for kind in KINDS}
        for row in rows:
            for kind, value in row.identifiers():
                wanted[KIND[kind]].add(value)
        for kind in ("id", "external_id", "phone", "email"):
            if wanted[kind]:
                column = CUSTOMERS.c[kind]
                query = sa.select(CUSTOMERS.c.id, column).where(
                    among(conn, column, sorted(wanted[kind])))
                for cid, value in conn.execute(query):
                    owners[(kind, value)] = cid
        cards = sorted(wanted["card"])
        for column in (CARDS.c.barcode, CARDS.c.track) if cards else ():
            query = sa.select(CARDS.c.customer_id, CARDS.c.barcode, CARDS.c.track).where(
                among(conn, column, cards))
            for cid, barcode, track in conn.execute(query):
                owners[("card", barcode)] = cid
                if track:
                    owners[("card", track)] = cid
        return owners

    def _target(self, row: Row, owners: dict[tuple[str, str], str],
                result: BatchResult) -> str | None:
        holders = {(k, v): owners[(KIND[k], v)] for k, v in row.identifiers()
                   if (KIND[k], v) in owners}
        target = row.id or (next(iter(holders.values())) if holders else new_id(row))
        for (kind, value), holder in holders.items():
            if holder != target:
                result.problems.append(Problem(
                    row.number, self.headers.get(kind, kind), value,
                    f"{kind} belongs to customer {holder!r}",
                    "fix the value, or merge the two customers before importing"))
                return None
        return target

    def _write(self, conn: sa.Connection, rows: list[Row], result: BatchResult) -> None:
        if not rows:
            return
        self._lock(conn)
        owners = self._owners(conn, rows)
        targets: list[tuple[Row, str]] = []
        for row in rows:
            target = self._target(row, owners, result)
            if target is not None:
                targets.append((row, target))
        existing = self._existing(conn, [t for _, t in targets])
        now = utcnow()
        upserts: list[dict[str, Any]] = []
        cards: list[dict[str, Any]] = []
        audits: list[dict[str, Any]] = []
        for row, target in targets:
            before = existing.get(target)
            after = _merged(before, row)
            card_new = row.card is not None and ("card", row.card) not in owners
            if before is not None and all(before[c] == after[c] for c in COMPARED) \
                    and not card_new:
                result.unchanged += 1
                continue
            result.imported += 1
            changed = before is None or any(before[c] != after[c] for c in COMPARED)
            if changed:
                upserts.append({**after, "id": target, "updated_at": now,
                                "created_at": before["created_at"] if before else now})
                audits.append({"customer_id": target, "entity": "customer", "entity_id": target,
                               "action": "imported" if before else "created",
                               "actor_kind": self.actor.kind, "actor_id": self.actor.id,
                               "actor_name": self.actor.name, "at": now,
                               "changes": diff({c: (before or DEFAULTS)[c] for c in COMPARED},
                                               {c: after[c] for c in COMPARED})})
            if card_new:
                cards.append({"customer_id": target, "barcode": row.card, "track": row.track,
                              "issued_at": None, "status": "active", "created_at": now,
                              "updated_at": now})
                audits.append({"customer_id": target, "entity": "card", "entity_id": row.card,
                               "action": "created", "actor_kind": self.actor.kind,
                               "actor_id": self.actor.id, "actor_name": self.actor.name,
                               "at": now, "changes": {"barcode": {"from": None,
                                                                  "to": row.card}}})
        if self.dry_run:
            return
        self._upsert(conn, upserts)
        self._dates(conn, upserts)
        if cards:
            self._copy_or_insert(conn, CARDS, CARD_COLUMNS, cards)
        if audits:
            self._copy_or_insert(conn, AUDIT, AUDIT_COLUMNS, audits)

    def _lock(self, conn: sa.Connection) -> None:
        # SQLite: take the write lock first, so the checks below see what the write meets.
        if not self.postgres and not self.dry_run:
            conn.execute(sa.text("UPDATE import_jobs SET rows_done = rows_done WHERE 0"))

    def _existing(self, conn: sa.Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        query = sa.select(CUSTOMERS).where(among(conn, CUSTOMERS.c.id, sorted(set(ids))))
        if self.postgres and not self.dry_run:
            query = query.with_for_update()
        return {r["id"]: dict(r) for r in conn.execute(query).mappings()}

    def _upsert(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        update = [c for c in COLUMNS if c not in ("id", "created_at")]
        if self.postgres:
            # New customers (none of these ids existed under the batch's locks) are copied
            # straight in; a writer racing in with the same id fails the batch, which then
            # goes row by row. Changed ones go through the staging table and one upsert.
            fresh = [r for r in rows if r["created_at"] == r["updated_at"]]
            if fresh:
                _copy(conn, "customers", COLUMNS, fresh)
            rows = [r for r in rows if r["created_at"] != r["updated_at"]]
            if not rows:
                return
            conn.execute(sa.text("CREATE TEMP TABLE IF NOT EXISTS import_stage "
                                 "(LIKE customers INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"))
            _copy(conn, "import_stage", COLUMNS, rows)
            sets = ", ".join([*(f"{c} = EXCLUDED.{c}" for c in update),
                              "version = customers.version + 1"])
            cols = ", ".join(COLUMNS)
            conn.execute(sa.text(f"INSERT INTO customers ({cols}) SELECT {cols} FROM "
                                 f"import_stage ON CONFLICT (id) DO UPDATE SET {sets}"))
            conn.execute(sa.text("DELETE FROM import_stage"))
            return
        conn.execute(_sqlite_upsert(tuple(update)), rows)

    def _dates(self, conn: sa.Connection, upserts: list[dict[str, Any]]) -> None:
        # The dates come from the rows just written (what `refresh_dates` would read back).
        # On PostgreSQL only customers that existed before can hold old ones (a new one that
        # raced in fails the COPY of customers); SQLite upserts by id, so it clears them all.
        changed = [u["id"] for u in upserts
                   if not self.postgres or u["created_at"] != u["updated_at"]]
        if changed:
            conn.execute(DATES.delete().where(among(conn, DATES.c.customer_id, changed)))
        dates = [d for u in upserts for d in dates_of(u)]
        if dates:
            self._copy_or_insert(conn, DATES, DATE_COLUMNS, dates)

    def _copy_or_insert(self, conn: sa.Connection, table: sa.Table, columns: list[str],
                        rows: list[dict[str, Any]]) -> None:
        if self.postgres:
            _copy(conn, table.name, columns, rows)
        else:
            conn.execute(table.insert(), rows)


@functools.cache
def _sqlite_upsert(update: tuple[str, ...]) -> Any:
    from sqlalchemy.dialects.sqlite import insert

    stmt = insert(CUSTOMERS)
    return stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={**{c: stmt.excluded[c] for c in update}, "version": CUSTOMERS.c.version + 1})


def _merged(before: dict[str, Any] | None, row: Row) -> dict[str, Any]:
    after = dict(before) if before is not None else dict(DEFAULTS)
    after.update(row.fields)
    if row.tags:
        after["tags"] = list(after["tags"]) + [t for t in row.tags if t not in after["tags"]]
    if row.attributes:
        after["attributes"] = {**after["attributes"], **row.attributes}
    if row.consents:
        consents = {k: dict(v) for k, v in after["consents"].items()}
        for category, channels in row.consents.items():
            consents.setdefault(category, {}).update(channels)
        after["consents"] = consents
    return after


_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode  # dumps() makes one a call


def _json(value: Any) -> str:
    # Most JSON cells of an import are empty; dumping them costs more than the COPY.
    if value is None:
        return "null"
    if not value and isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return _ENCODE(value)


def _copy(conn: sa.Connection, table: str, columns: list[str],
          rows: list[dict[str, Any]]) -> None:
    """COPY rows into a table over the connection's psycopg cursor (JSON columns as text); a
    unique violation comes out as SQLAlchemy's IntegrityError, like any other statement's."""
    import psycopg

    raw: Any = conn.connection.driver_connection
    as_json = [c in ("consents", "tags", "attributes", "changes", "item_data")
               for c in columns]
    try:
        with raw.cursor() as cur, \
                cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row([_json(row[c]) if j else row[c]
                              for c, j in zip(columns, as_json, strict=True)])
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(f"COPY {table}", None, exc) from exc


Progress = Callable[[int, BatchResult], None]

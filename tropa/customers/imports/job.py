"""An import run from start to end: read, check, write in batches, report, track progress."""

from __future__ import annotations

import csv
import secrets
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from tropa.clock import utcnow
from tropa.customers.audit import Actor
from tropa.customers.imports.checking import checked
from tropa.customers.imports.customers import BatchResult, CustomerImport
from tropa.customers.imports.rows import Problem, Row, columns_of
from tropa.customers.tabular import Mapping, TableUnreadable, open_table
from tropa.store.customer_models import ImportJob
from tropa.store.db import session_scope

BATCH = 2000
REPORT_HEADER = ["row", "column", "value", "reason", "fix"]
Kind = Literal["customers", "orders"]
ProgressFn = Callable[[int, int], None]


@dataclass
class Summary:
    """How an import ended."""

    job_id: str
    rows: int
    imported: int
    unchanged: int
    rejected: int
    report: Path | None
    dry_run: bool


def new_job(engine: sa.Engine, kind: Kind, filename: str, *, dry_run: bool) -> str:
    """Record a queued import job and return its id."""
    job_id = f"imp-{utcnow():%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    with session_scope(engine) as session:
        session.add(ImportJob(id=job_id, kind=kind, filename=filename[:400], dry_run=dry_run))
    return job_id


def update_job(engine: sa.Engine, job_id: str, **values: object) -> None:
    """Record an import job's progress or outcome."""
    with engine.begin() as conn:
        conn.execute(sa.update(ImportJob).where(ImportJob.id == job_id)  # type: ignore[arg-type]
                     .values(**values))


class Report:
    """The CSV of rejected rows; written only when a row is rejected."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.rows: set[int] = set()
        self._file: object | None = None
        self._writer: csv.DictWriter[str] | None = None

    def add(self, problems: list[Problem]) -> None:
        """Append problems in row order."""
        if not problems:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("w", encoding="utf-8", newline="")
            self._file = handle
            self._writer = csv.DictWriter(handle, REPORT_HEADER)
            self._writer.writeheader()
        for p in problems:
            self._writer.writerow({"row": p.row, "column": p.column, "value": p.value,
                                   "reason": p.reason, "fix": p.fix})
            if p.row > 1:
                self.rows.add(p.row)
        self.count = len(self.rows)

    def close(self) -> Path | None:
        """The report's path, or None when nothing was rejected."""
        if self._file is not None:
            self._file.close()  # type: ignore[attr-defined]
            return self.path
        return None


def import_customers(engine: sa.Engine, path: Path, *, job_id: str, actor: Actor | None = None,
                     mapping: Mapping | None = None, dry_run: bool = False,
                     report_path: Path | None = None, progress: ProgressFn | None = None,
                     batch_size: int = BATCH, parallel: bool | None = None) -> Summary:
    """Import customers from a .csv or .xlsx file; TableUnreadable if it is not a table.

    `parallel` checks rows in a second process (by default for a CSV of 20,000 rows or more).
    """
    mapping = mapping or Mapping()
    actor = actor or Actor("import", job_id, path.name[:200])
    report = Report(report_path or path.with_name(f"{path.stem}.rejected.csv"))
    update_job(engine, job_id, status="running")
    try:
        table = open_table(path, mapping)
        columns, header_problems = columns_of(table, mapping)
        report.add(header_problems)
        headers = {c.field: c.header for c in columns}
        importer = CustomerImport(engine, actor, dry_run=dry_run, headers=headers)
        total, done, imported, unchanged = table.total, 0, 0, 0
        update_job(engine, job_id, rows_total=total)
        batch: list[Row] = []
        pending: list[Problem] = []
        # One batch is written (in a thread, waiting on the database) while the next is read
        # and checked; batches are written in file order.
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import")
        in_flight: tuple[Future[BatchResult], list[Problem], int] | None = None

        def settle() -> None:
            nonlocal imported, unchanged, in_flight
            if in_flight is None:
                return
            future, problems, rows_done = in_flight
            in_flight = None
            result = future.result()
            imported += result.imported
            unchanged += result.unchanged
            report.add(sorted(problems + result.problems, key=lambda p: p.row))
            update_job(engine, job_id, rows_done=rows_done, imported=imported,
                    unchanged=unchanged, rejected=report.count)
            if progress is not None:
                progress(rows_done, max(total, rows_done))

        def flush() -> None:
            nonlocal in_flight
            settle()
            in_flight = (writer.submit(importer.run, list(batch)), list(pending), done)
            batch.clear()
            pending.clear()

        # Closed on the way out, so a failed write stops the checker process at once.
        rows = checked(table, path, mapping, columns, parallel=parallel)
        try:
            for parsed in rows:
                done += 1
                if isinstance(parsed, Row):
                    batch.append(parsed)
                else:
                    pending.extend(parsed)
                if len(batch) + len(pending) >= batch_size:
                    flush()
            flush()
            settle()
        finally:
            rows.close()
            writer.shutdown(wait=True)
    except (TableUnreadable, OSError) as exc:
        report.close()
        update_job(engine, job_id, status="failed", error=str(exc)[:2000], finished_at=utcnow())
        raise
    written = report.close()
    update_job(engine, job_id, status="done", rows_total=done, rows_done=done,
            imported=imported, unchanged=unchanged, rejected=report.count,
            report_path=str(written) if written else None, finished_at=utcnow())
    return Summary(job_id, done, imported, unchanged, report.count, written, dry_run)

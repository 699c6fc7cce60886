"""`tropa customers import|export` and `tropa orders import`: the base from and to files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _progress() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]} rows/s"), TextColumn("ETA"),
                    TimeRemainingColumn(), transient=False)


def _engine() -> Any:
    from tropa.settings import get_settings
    from tropa.worker.stack import open_database

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_database(settings)


def _run_import(args: argparse.Namespace, kind: str) -> int:
    import time

    from tropa.customers.audit import Actor
    from tropa.customers.imports import job
    from tropa.customers.imports.orders import import_orders
    from tropa.customers.tabular import Mapping, TableUnreadable

    path = Path(args.file)
    if not path.is_file():
        print(f"error: {path}: no such file", file=sys.stderr)
        return 2
    try:
        mapping = Mapping.load(Path(args.mapping) if args.mapping else None)
    except TableUnreadable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    engine = _engine()
    job_id = job.new_job(engine, kind, str(path), dry_run=args.dry_run)  # type: ignore[arg-type]
    actor = Actor("cli", job_id, f"tropa {kind} import {path.name}"[:200])
    started = time.monotonic()
    with _progress() as bar:
        task = bar.add_task(f"{'checking' if args.dry_run else 'importing'} {path.name}",
                            total=None, rate="-")

        def progress(done: int, total: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            bar.update(task, completed=done, total=total, rate=f"{rate:,.0f}")

        run = job.import_customers if kind == "customers" else import_orders
        try:
            summary = run(engine, path, job_id=job_id, actor=actor, mapping=mapping,
                          dry_run=args.dry_run, progress=progress)
        except (TableUnreadable, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elapsed = time.monotonic() - started
    verb = "would import" if args.dry_run else "imported"
    print(f"{path}: {summary.rows} rows in {elapsed:.1f}s "
          f"({summary.rows / max(elapsed, 1e-6):,.0f} rows/s): {verb} {summary.imported}, "
          f"unchanged {summary.unchanged}, rejected {summary.rejected}"
          + (" (dry run: nothing written)" if args.dry_run else ""))
    if summary.report is not None:
        print(f"rejected rows: {summary.report}")
    return 1 if summary.rejected else 0


def _export(args: argparse.Namespace) -> int:
    from tropa.customers.exporting import export

    path = Path(args.file)
    if path.suffix.lower() not in (".csv", ".xlsx"):
        print(f"error: {path}: name a .csv or .xlsx file", file=sys.stderr)
        return 2
    count = export(_engine(), path)
    print(f"{path}: {count} customers")
    return 0


def add_commands(sub: Any) -> None:
    """Add `customers` and `orders` to the command line."""
    for kind in ("customers", "orders"):
        group = sub.add_parser(kind, help=f"{kind} from and to files")
        commands = group.add_subparsers(dest=f"{kind}_command", required=True)
        imp = commands.add_parser("import", help=f"import {kind} from a .csv or .xlsx file")
        imp.add_argument("file")
        imp.add_argument("--dry-run", action="store_true",
                         help="check every row and write nothing")
        imp.add_argument("--mapping", help="YAML: columns: {file header: field name}")
        imp.set_defaults(func=lambda a, k=kind: _run_import(a, k))
        if kind == "customers":
            exp = commands.add_parser("export", help="write every customer to .csv or .xlsx")
            exp.add_argument("file")
            exp.set_defaults(func=_export)

"""`tropa simulate JOURNEY.yaml --customer CUSTOMER.json [--events EVENTS.jsonl]
[--from ...] --until ... [--json]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import datetime
from pathlib import Path

from tropa.errors import JourneyInvalid, SimulationInvalid
from tropa.logs import configure
from tropa.settings import get_settings
from tropa.worker.example_series import SERIES_FILE


def _moment(option: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise SimulationInvalid([f"{option} {value!r} is not a time; give ISO 8601 with a UTC "
                                 "offset, e.g. 2027-01-01T00:00:00Z"]) from None


def _until(value: str) -> datetime:
    moment = _moment("--until", value)
    assert moment is not None  # a required option
    return moment


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SimulationInvalid([f"{path}: no such file; name the {what}"]) from None
    except UnicodeDecodeError:
        raise SimulationInvalid([f"{path}: not UTF-8 text; save the {what} as UTF-8"]) from None
    except OSError as exc:
        raise SimulationInvalid([f"{path}: cannot read the {what}: {exc.strerror}"]) from None


def _simulate(args: argparse.Namespace) -> int:
    from tropa.simulate import inputs
    from tropa.simulate.runner import simulate
    from tropa.simulate.timeline import json_lines, text

    try:
        journey = Path(args.journey)
        customer_path = Path(args.customer)
        customer_id, customer = inputs.read_customer(_read(customer_path, "customer JSON"),
                                                     str(customer_path))
        events = inputs.read_events(_read(Path(args.events), "events JSON Lines"),
                                    args.events, customer_id) if args.events else []
        series_file = Path(args.coupon_series) if args.coupon_series else \
            journey.parent / SERIES_FILE
        series = inputs.read_series(_read(series_file, "coupon series YAML"), str(series_file)) \
            if args.coupon_series or series_file.is_file() else []
        sim = inputs.prepare(_read(journey, "journey YAML"), str(journey), customer_id,
                             customer, events, _moment("--from", args.start),
                             _until(args.until), series)
    except JourneyInvalid as exc:
        print(exc, file=sys.stderr)
        return 1
    except SimulationInvalid as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    # What the engine logs at INFO inside a simulation (sweeps, routing, the SDK's worker
    # notes) is not part of the timeline: warnings and errors only, on stderr.
    configure("WARNING")
    logging.getLogger("temporalio").setLevel(logging.WARNING)
    happenings = asyncio.run(simulate(sim, get_settings()))
    out = json_lines(happenings) if args.json else text(
        happenings, str(customer.get("time_zone") or "UTC"), customer_id)
    sys.stdout.write(out)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `tropa simulate`."""
    s = sub.add_parser("simulate", help="run a journey for one customer over simulated time "
                       "and print what would happen")
    s.add_argument("journey", metavar="JOURNEY.yaml")
    s.add_argument("--customer", required=True, metavar="CUSTOMER.json",
                   help="the body of PUT /v1/customers/{id} plus \"id\"")
    s.add_argument("--events", metavar="EVENTS.jsonl",
                   help="events as POST /v1/events takes them, one a line, each delivered at "
                   "its occurred_at")
    s.add_argument("--from", dest="start", metavar="TIME",
                   help="start of the simulated span (default: now; only the future)")
    s.add_argument("--until", required=True, metavar="TIME", help="end of the simulated span")
    s.add_argument("--coupon-series", metavar="SERIES.yaml",
                   help="coupon series the journey issues from, a list as POST "
                   "/v1/loyalty/coupon-series takes them (default: loyalty/coupon-series.yaml "
                   "beside the journey, if there is one)")
    s.add_argument("--json", action="store_true",
                   help="print JSON Lines, one happening a line, instead of the timeline")
    s.set_defaults(func=_simulate)

"""The coupon series the shipped journeys issue from, declared by `tropa dev` at start.

`examples/loyalty/coupon-series.yaml` is a list of series as `POST /v1/loyalty/coupon-series`
takes them; a journey such as `children-birthdays` would otherwise fail its `issue_coupon`
step on a fresh database."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import yaml
from pydantic import ValidationError

from tropa.errors import LoyaltyError
from tropa.logs import get_logger
from tropa.loyalty.coupons import SeriesSpec, create_series
from tropa.store.db import session_scope

log = get_logger("stack")

SERIES_FILE = Path("loyalty") / "coupon-series.yaml"


def declare_example_series(engine: sa.Engine, folder: Path) -> list[str]:
    """Declare every series of `folder/loyalty/coupon-series.yaml` not declared yet."""
    path = folder / SERIES_FILE
    if not path.is_file():
        return []
    declared = []
    for i, item in enumerate(yaml.safe_load(path.read_text(encoding="utf-8")) or []):
        try:
            spec = SeriesSpec.model_validate(item)
            with session_scope(engine) as session:
                create_series(session, spec)
            declared.append(spec.id)
        except (ValidationError, LoyaltyError) as exc:
            # A series changed by hand since the first start is left as it is.
            log.error("example_series_invalid", file=str(path), item=i, error=str(exc))
            print(f"{path}: series {i + 1}: {exc}")
    return declared

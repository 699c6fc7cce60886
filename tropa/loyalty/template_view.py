"""`customer.loyalty` and `customer.card_link` in templates, computed only when used."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tropa.loyalty.card_link import card_link
from tropa.loyalty.platform import LoyaltyPlatform, load_platform
from tropa.settings import LoyaltySettings

_PLATFORMS: dict[tuple[int, str], LoyaltyPlatform] = {}


def platform_for(engine: sa.Engine, settings: LoyaltySettings) -> LoyaltyPlatform:
    """The configured platform for this database, built once per process."""
    key = (id(engine), settings.adapter)
    if key not in _PLATFORMS:
        _PLATFORMS[key] = load_platform(engine, settings)
    return _PLATFORMS[key]


class CustomerView(dict[str, Any]):
    """The customer view of templates; `loyalty` and `card_link` are looked up on first use,
    so a message that does not mention them costs no query."""

    def __init__(self, base: dict[str, Any], lazy: dict[str, Callable[[], Any]]) -> None:
        super().__init__(base)
        self._lazy = lazy

    def __missing__(self, key: str) -> Any:
        if key in self._lazy:
            value = self._lazy[key]()
            self[key] = value
            return value
        raise KeyError(key)


def with_loyalty(view: dict[str, Any], engine: sa.Engine, settings: LoyaltySettings,
                 now: datetime | None = None) -> CustomerView:
    """The customer view plus `loyalty` (balance, pending, level, next_expiry; read fresh from
    the platform) and `card_link` (the wallet card URL with a signed token)."""
    customer_id = str(view["id"])
    return CustomerView(view, {
        "loyalty": lambda: platform_for(engine, settings).standing(customer_id, now),
        "card_link": lambda: card_link(customer_id, settings),
    })

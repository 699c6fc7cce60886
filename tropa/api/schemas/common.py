"""Field types shared by every resource: text without NUL, JSON objects that store anywhere."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, Field

ID_PATTERN = r"^[\w.:@-]+$"


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refusing it here keeps bad input a 422, not a 500.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


def _clean(value: Any, depth: int = 0) -> None:
    if depth > 32:
        raise ValueError("is nested deeper than 32 levels")
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(str(key))
            _clean(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _clean(item, depth + 1)


def _clean_object(value: dict[str, Any]) -> dict[str, Any]:
    _clean(value)
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_clean_object)]
CustomerIdField = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN,
                                       examples=["c-42"])]

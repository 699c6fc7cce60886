"""The calendar's triggers as marketers write them: `date:` paths, offsets, local times, and
`inactivity:`. Only parsing and checking here; the sweeps live in tropa/triggers/."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FIXED_DATES = ("customer.birthday", "customer.created_at", "customer.registered_at")
DATE_PATHS = ", ".join(FIXED_DATES) + (", customer.attributes.<name> or "
                                       "customer.attributes.<list>[].<field>")
_ATTRIBUTE = re.compile(r"^customer\.attributes\.([A-Za-z_][A-Za-z0-9_]*)"
                        r"(?:\[\]\.([A-Za-z_][A-Za-z0-9_]*))?$")
_OFFSET = re.compile(r"^([+-]?)(\d{1,3})([dw])$")
_DAYS = re.compile(r"^(\d{1,4})([dw])$")
_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_OFFSET_DAYS = 366
LateRule = Literal["send", "skip"]


def is_date_key(key: str) -> bool:
    """Attribute keys that hold dates (`birthday`, `*_date`) or date-times (`*_at`)."""
    return key in ("birthday", "date") or key.endswith(("_date", "_at"))


def check_date_path(path: str) -> str:
    """A date path, or ValueError naming the accepted forms."""
    path = path.strip()
    if path in FIXED_DATES:
        return path
    match = _ATTRIBUTE.match(path)
    if match is None:
        raise ValueError(f"`{path}` is not a date path; write one of {DATE_PATHS}")
    key = match.group(2) or match.group(1)
    if not is_date_key(key):
        raise ValueError(f"`{key}` does not hold a date; attribute dates live in keys named "
                         "birthday, *_date or *_at (e.g. customer.attributes.wedding_date)")
    return path


def offset_days(text: str) -> int:
    """`-1d`, `0d`, `+7d`, `2w` as a signed number of days."""
    match = _OFFSET.match(text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not an offset; write days before or after the date, "
                         "e.g. -1d, 0d, +7d or +2w")
    days = int(match.group(2)) * (7 if match.group(3) == "w" else 1)
    if days > MAX_OFFSET_DAYS:
        raise ValueError(f"'{text}' is more than a year; an offset is at most "
                         f"{MAX_OFFSET_DAYS} days")
    return -days if match.group(1) == "-" else days


def whole_days(text: str) -> int:
    """`90d` or `12w` as a positive number of days."""
    match = _DAYS.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"'{text}' is not a number of days; write e.g. 90d or 12w")
    return int(match.group(1)) * (7 if match.group(2) == "w" else 1)


def check_at(text: str) -> str:
    """A local time of day, `HH:MM` on the 24-hour clock."""
    if isinstance(text, int):
        raise ValueError("a time of day must be in quotes: YAML reads 10:00 unquoted as a "
                         "number; write at: \"10:00\"")
    if not isinstance(text, str) or _AT.match(text.strip()) is None:
        raise ValueError(f"'{text}' is not a time of day; write HH:MM, e.g. \"10:00\" "
                         "(in quotes)")
    return text.strip()


class InactivitySpec(BaseModel):
    """`inactivity: {event: order.placed, for: 90d, at: "11:00"}`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    event: str = Field(description="The event whose absence starts a run",
                       examples=["order.placed"])
    for_: str = Field(alias="for", description="How long without the event, in days",
                      examples=["90d"])
    at: str = Field(default="10:00", description="Local time in the customer's time zone",
                    examples=["11:00"])

    @field_validator("for_", mode="before")
    @classmethod
    def _for(cls, value: object) -> str:
        whole_days(str(value))
        return str(value).strip()

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: object) -> str:
        return check_at(value)  # type: ignore[arg-type]

"""The calendar's triggers as marketers write them: `date:` paths, offsets, local times, and
`inactivity:`. Only parsing and checking here; the sweeps live in tropa/triggers/."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


_CRON_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
                ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG",
                                  "SEP", "OCT", "NOV", "DEC")),
                ("day of week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")))
_CRON_ITEM = re.compile(r"^(\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/(\d{1,2}))?$")
CRON_FORM = ("five fields: minute hour day-of-month month day-of-week, e.g. "
             "\"0 10 * * MON\" (10:00 every Monday) or \"30 9 1 * *\"")


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if text.upper() in names:
        return names.index(text.upper()) + (1 if low == 1 else 0)
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    return None


def check_cron(text: str) -> str:
    """A five-field cron expression as Temporal Schedules read it, or ValueError."""
    fields = str(text).split()
    if len(fields) != 5:
        raise ValueError(f"'{text}' is not a cron expression; write {CRON_FORM}")
    for value, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in value.split(","):
            match = _CRON_ITEM.match(item)
            bounds = match.group(1).split("-") if match and match.group(1) != "*" else []
            if match is None or any(_cron_value(b, low, high, names) is None for b in bounds):
                raise ValueError(f"'{item}' is not a valid {name} in '{text}'; the {name} is "
                                 f"{low}-{high}" + (f" or {names[0]}..{names[-1]}" if names
                                                    else "") + f"; write {CRON_FORM}")
    return " ".join(fields)


class ScheduleSpec(BaseModel):
    """`schedule: {cron: "0 10 * * MON", timezone: Europe/Moscow}` or
    `schedule: {at: 2026-12-01T10:00:00+03:00}`."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(default=None, description="When to fire, as cron: minute hour "
                             "day-of-month month day-of-week", examples=["0 10 * * MON"])
    timezone: str | None = Field(default=None, description="The zone the cron is read in "
                                 "(default UTC); with `cron:`", examples=["Europe/Moscow"])
    at: datetime | None = Field(default=None, description="One fire time, with its offset",
                                examples=["2026-12-01T10:00:00+03:00"])

    @field_validator("cron", mode="before")
    @classmethod
    def _cron(cls, value: object) -> object:
        return None if value is None else check_cron(str(value))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ValueError, KeyError):
            raise ValueError(f"'{value}' is not a time zone; write an IANA name such as "
                             "Europe/Moscow or UTC") from None
        return value

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give the offset of the time, e.g. 2026-12-01T10:00:00+03:00")
        return value

    @model_validator(mode="after")
    def _one(self) -> ScheduleSpec:
        if (self.cron is None) == (self.at is None):
            raise ValueError("give one of `cron:` (a repeating time) and `at:` (one time), "
                             "e.g. `schedule: {cron: \"0 10 * * MON\", timezone: "
                             "Europe/Moscow}`")
        if self.at is not None and self.timezone is not None:
            raise ValueError("`timezone:` goes with `cron:`; `at:` carries its own offset")
        return self

"""The journey header as marketers write it: name, trigger, exit rules, settings."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tropa.dsl.plan import Category, ReEntry
from tropa.dsl.time_triggers import (
    InactivitySpec,
    LateRule,
    check_at,
    check_date_path,
    offset_days,
)
from tropa.dsl.triggers import MAX_KEY, literal_key_problem

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,99}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SegmentTriggerSpec(_Strict):
    """`trigger: {segment: {enter: at_risk}}` — a run starts when a customer enters (or
    exits) an RF segment; sugar over the `segment.entered` / `segment.exited` events."""

    enter: str | None = Field(default=None, description="Segment whose entry starts a run",
                              examples=["at_risk"])
    exit: str | None = Field(default=None, description="Segment whose exit starts a run",
                             examples=["loyal"])

    @model_validator(mode="after")
    def _one(self) -> SegmentTriggerSpec:
        from tropa.segments.config import SEGMENTS

        given = [v for v in (self.enter, self.exit) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `enter:` and `exit:`, e.g. "
                             "`segment: {enter: at_risk}`")
        if given[0] not in SEGMENTS:
            raise ValueError(f"`{given[0]}` is not a segment; the segments are "
                             f"{', '.join(SEGMENTS)}")
        return self


class TriggerSpec(_Strict):
    """`trigger:` — the event, segment move, date or inactivity that starts a run."""

    event: str | None = Field(default=None, description="Event type that starts a run",
                              examples=["cart.updated"])
    segment: SegmentTriggerSpec | None = Field(
        default=None, description="Start when a customer enters or exits an RF segment")
    date: str | None = Field(
        default=None, description="A customer's date that starts a run on its day",
        examples=["customer.birthday", "customer.attributes.children[].birth_date"])
    offset: str | None = Field(default=None, description="Days before (-) or after (+) the "
                               "date; with `date:`", examples=["-1d", "0d", "+7d"])
    at: str | None = Field(default=None, description="Local time in the customer's time zone; "
                           "with `date:`", examples=["10:00"])
    every: Literal["year", "month", "once"] | None = Field(
        default=None, description="How often the date recurs; with `date:` (default year)")
    inactivity: InactivitySpec | None = Field(
        default=None, description="Start when a customer has had no such event for a while")
    late: LateRule | None = Field(
        default=None, description="A sweep that ran late (the stack was down): send "
        "occurrences up to 24 h late (default) or skip them")
    where: str | None = Field(
        default=None, description="Condition on the event and customer",
        json_schema_extra={"x-condition": True},
    )
    key: str | None = Field(
        default=None,
        description="Template that tells runs of one customer apart, e.g. a cart id; it "
        f"renders to at most {MAX_KEY} characters",
        examples=["{{ event.data.cart_id }}"],
        json_schema_extra={"x-template": True},
    )
    re_entry: ReEntry | None = Field(
        default=None, description="What a new trigger does while a run is in flight"
    )

    @field_validator("date")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        return None if value is None else check_date_path(value)

    @field_validator("offset", mode="before")
    @classmethod
    def _offset(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value == 0:
            return "0d"
        offset_days(str(value))
        return str(value).strip()

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> Any:
        return None if value is None else check_at(value)

    @model_validator(mode="after")
    def _source(self) -> TriggerSpec:
        given = [source for source in ("event", "segment", "date", "inactivity")
                 if getattr(self, source) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of `event:`, `segment:`, `date:` and `inactivity:`, "
                             f"not {' and '.join(f'`{g}:`' for g in given)}")
        if self.date is None:
            for extra in ("offset", "at", "every"):
                if getattr(self, extra) is not None:
                    raise ValueError(f"`{extra}:` goes with `date:`"
                                     + ("; for inactivity write it inside `inactivity:`"
                                        if extra == "at" and self.inactivity else ""))
        if self.date is not None or self.inactivity is not None:
            if self.key is not None:
                raise ValueError("`key:` goes with `event:` triggers; date and inactivity "
                                 "runs are told apart by their occurrence")
            return self
        if self.late is not None:
            raise ValueError("`late:` goes with `date:` and `inactivity:` triggers")
        if self.segment is not None:
            if self.event is not None:
                raise ValueError("give `event:` or `segment:`, not both")
            entering = self.segment.enter is not None
            name = self.segment.enter if entering else self.segment.exit
            self.event = "segment.entered" if entering else "segment.exited"
            condition = f"event.data.segment == '{name}'"
            self.where = f"({condition}) and ({self.where})" if self.where else condition
        elif self.event is None:
            raise ValueError("a trigger needs `event:` (an event type, e.g. `cart.updated`), "
                             "`segment:` (e.g. `segment: {enter: at_risk}`), `date:` (e.g. "
                             "`date: customer.birthday`) or `inactivity:` (e.g. "
                             "`inactivity: {event: order.placed, for: 90d}`)")
        return self

    @property
    def kind(self) -> Literal["event", "date", "inactivity"]:
        """Which kind of trigger this is (a segment trigger is an event trigger)."""
        if self.date is not None:
            return "date"
        return "inactivity" if self.inactivity is not None else "event"

    @property
    def event_type(self) -> str:
        """The event type that starts a run of an event trigger (the validator sets it)."""
        assert self.event is not None
        return self.event

    @field_validator("key")
    @classmethod
    def _short_key(cls, value: str | None) -> str | None:
        problem = literal_key_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value


class ExitSpec(_Strict):
    """`exit_on:` item — an event that ends the run wherever it is."""

    event: str = Field(description="Event type that ends the run", examples=["order.placed"])
    where: str | None = Field(default=None, description="Condition on the event",
                              json_schema_extra={"x-condition": True})
    key: str | None = Field(
        default=None,
        description="In a journey with a trigger `key`: the template that renders this event "
        "to the key of the run it ends, where its field differs from the trigger's (default: "
        "the trigger's key template)",
        examples=["{{ event.data.cart.id }}"],
        json_schema_extra={"x-template": True},
    )

    @field_validator("key")
    @classmethod
    def _short_key(cls, value: str | None) -> str | None:
        problem = literal_key_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value


class SettingsSpec(_Strict):
    """`settings:` — how the journey's messages are treated."""

    category: Category = Field(
        default="marketing",
        description="marketing messages need the customer's consent; service messages do not",
    )


class JourneySpec(_Strict):
    """A whole journey file."""

    journey: str = Field(description="Journey name: lower case letters, digits, - and _",
                         examples=["abandoned-cart"],
                         json_schema_extra={"pattern": NAME_PATTERN})
    description: str = Field(default="", description="What the journey is for")
    trigger: TriggerSpec
    exit_on: list[ExitSpec] = Field(default_factory=list, description="Events that end a run")
    re_entry: ReEntry = Field(
        default="restart",
        description="restart: a new trigger restarts the run; ignore: it is ignored while a "
        "run is in flight; parallel: runs side by side; once: one run per customer ever",
    )
    settings: SettingsSpec = Field(default_factory=SettingsSpec)
    steps: list[dict[str, Any]] = Field(min_length=1, description="The steps, in order",
                                        json_schema_extra={"x-steps": True})

    @field_validator("journey")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(NAME_PATTERN, value):
            suggestion = re.sub(r"[^a-z0-9_-]+", "-", value.lower()).strip("-_") or "my-journey"
            raise ValueError(f"'{value}' is not a journey name; use lower case letters, digits, "
                             f"- and _ (for example `{suggestion}`)")
        return value

    @field_validator("exit_on", mode="before")
    @classmethod
    def _short_exit(cls, value: Any) -> Any:
        # `exit_on: [order.placed]` is the common case; allow the bare event type.
        if isinstance(value, list):
            return [{"event": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _trigger_re_entry(self) -> JourneySpec:
        if self.trigger.re_entry is not None:
            self.re_entry = self.trigger.re_entry
        return self

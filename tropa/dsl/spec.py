"""The journey header as marketers write it: name, trigger, exit rules, settings."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tropa.dsl.plan import Category, ReEntry

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
    """`trigger:` — the event that starts a run."""

    event: str | None = Field(default=None, description="Event type that starts a run",
                              examples=["cart.updated"])
    segment: SegmentTriggerSpec | None = Field(
        default=None, description="Start when a customer enters or exits an RF segment")
    where: str | None = Field(
        default=None, description="Condition on the event and customer",
        json_schema_extra={"x-condition": True},
    )
    key: str | None = Field(
        default=None,
        description="Template that tells runs of one customer apart, e.g. a cart id",
        examples=["{{ event.data.cart_id }}"],
        json_schema_extra={"x-template": True},
    )
    re_entry: ReEntry | None = Field(
        default=None, description="What a new trigger does while a run is in flight"
    )

    @model_validator(mode="after")
    def _source(self) -> TriggerSpec:
        if self.segment is not None:
            if self.event is not None:
                raise ValueError("give `event:` or `segment:`, not both")
            entering = self.segment.enter is not None
            name = self.segment.enter if entering else self.segment.exit
            self.event = "segment.entered" if entering else "segment.exited"
            condition = f"event.data.segment == '{name}'"
            self.where = f"({condition}) and ({self.where})" if self.where else condition
        elif self.event is None:
            raise ValueError("a trigger needs `event:` (an event type, e.g. `cart.updated`) "
                             "or `segment:` (e.g. `segment: {enter: at_risk}`)")
        return self

    @property
    def event_type(self) -> str:
        """The event type that starts a run (the validator always sets it)."""
        assert self.event is not None
        return self.event


class ExitSpec(_Strict):
    """`exit_on:` item — an event that ends the run wherever it is."""

    event: str = Field(description="Event type that ends the run", examples=["order.placed"])
    where: str | None = Field(default=None, description="Condition on the event",
                              json_schema_extra={"x-condition": True})


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

"""The `send` step: one message over one channel, through the policy gate and a provider."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Literal

from pydantic import Field, field_validator, model_validator
from temporalio import activity

from tropa.channels.catalog import CHANNELS
from tropa.dsl.durations import Duration
from tropa.dsl.plan import ActivityCall, RetrySpec, StepCall, StepResult
from tropa.steps.control import TIME_OF_DAY, Params
from tropa.steps.registry import StepType, WorkerDeps
from tropa.workflows import control as flow


def _channel_check(value: str) -> str:
    if value not in CHANNELS:
        close = difflib.get_close_matches(value, list(CHANNELS), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        raise ValueError(
            f"unknown channel `{value}`{hint} Known channels: {', '.join(CHANNELS)}"
        )
    return value


class QuietHours(Params):
    from_: str = Field(alias="from", description="Start (HH:MM, customer's time zone)",
                       examples=["21:00"])
    to: str = Field(description="End (HH:MM)", examples=["09:00"])

    @field_validator("from_", "to")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not TIME_OF_DAY.match(value):
            raise ValueError(f"'{value}' is not a time of day; write HH:MM, e.g. 21:00")
        return value


class SendParams(Params):
    channel: str = Field(
        description="Channel to send over",
        json_schema_extra={"enum": list(CHANNELS)},
        examples=["sms"],
    )
    text: str = Field(
        default="",
        description="Message text (Jinja2: customer, event, steps, journey)",
        examples=["{{ customer.first_name }}, your cart is waiting"],
        json_schema_extra={"x-template": True},
    )
    subject: str | None = Field(
        default=None, description="Email subject (Jinja2)", json_schema_extra={"x-template": True}
    )
    html: str | None = Field(
        default=None, description="Email HTML body (Jinja2)", json_schema_extra={"x-template": True}
    )
    category: Literal["marketing", "service"] | None = Field(
        default=None, description="Overrides the journey's category for this message"
    )
    fallback: list[str] = Field(
        default_factory=list,
        description="Channels tried in order when this one fails finally",
        examples=[["sms"]],
    )
    deliver_within: Duration | None = Field(
        default=None, description="Try the fallback when not delivered within this time"
    )
    template: str | None = Field(
        default=None, description="WhatsApp: approved template name (needed outside the "
        "24 hours after the customer's last message)", examples=["cart_last_call"])
    template_params: list[str] = Field(
        default_factory=list, description="WhatsApp: template body parameters (Jinja2)",
        json_schema_extra={"x-template": True})
    language: str | None = Field(
        default=None, description="WhatsApp: template language; the customer's locale if unset")
    quiet_hours: QuietHours | None = Field(
        default=None, description="Wait outside these local hours (default: the system's "
        "quiet hours for marketing, none for service)")
    connect_to: str | None = Field(
        default=None, max_length=32, pattern=r"^\+[1-9][0-9]{6,14}$",
        description="Voice: the operator's number (E.164) the robot offers to connect the "
        "customer to", examples=["+74950000000"])

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        return _channel_check(value)

    @field_validator("fallback")
    @classmethod
    def _fallback_channels(cls, value: list[str]) -> list[str]:
        return [_channel_check(v) for v in value]

    @model_validator(mode="after")
    def _has_body(self) -> SendParams:
        bodiless = self.channel == "flash_call" or (self.channel == "whatsapp" and self.template)
        if not bodiless and not self.text.strip() and not (self.html or "").strip():
            raise ValueError("a send needs `text` (or `html` for email, `template` for "
                             "WhatsApp)")
        if self.channel == "email" and not self.subject:
            raise ValueError("an email needs a `subject`")
        if self.connect_to and self.channel != "voice":
            raise ValueError("`connect_to` is for `channel: voice` (the robot call offers "
                             "the operator); remove it from this send")
        return self


def send_activity(deps: WorkerDeps) -> Callable[[StepCall], StepResult]:
    """The activity performing `send`, bound to the worker's database and adapters."""
    from tropa.activities.messaging import SendService

    service = SendService(deps.engine, deps.adapters, deps.settings)

    @activity.defn(name="tropa.send")
    def send(call: StepCall) -> StepResult:
        info = activity.info()
        return service.run(call, attempt=info.attempt, task_queue=info.task_queue)

    return send


STEP = StepType(
    name="send",
    params=SendParams,
    kind="activity",
    label="Send message",
    description="Send a message to the customer over a channel, after consent and caps",
    # The prepare phase: gate, render, log. Delivery rounds take their timeouts and retries
    # from the channel's settings (see tropa.workflows.sending).
    call=ActivityCall(
        activity="tropa.send",
        start_to_close_seconds=30,
        # The prepare phase only touches the database: an hour of retries at most, then the
        # step fails with its reason (a database down that long does not stall the run).
        schedule_to_close_seconds=3600,
        retry=RetrySpec(maximum_interval_seconds=60, maximum_attempts=0),
    ),
    activity=send_activity,
    handler=flow.send,
    ui={
        "icon": "send",
        "fields": {
            "channel": {"widget": "select"},
            "text": {"widget": "template", "rows": 4},
            "html": {"widget": "template", "rows": 10},
            "category": {"widget": "radio"},
            "fallback": {"widget": "multiselect"},
            "deliver_within": {"widget": "duration"},
            "template_params": {"widget": "list"},
        },
    },
    examples=({"send": {"channel": "sms", "text": "Hi {{ customer.first_name }}!"}},),
)

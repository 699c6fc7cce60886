"""The `slack` step: post a message to a Slack channel through an incoming webhook.

```yaml
- slack: "VIP {{ customer.first_name }} placed order {{ event.data.order_id }}"
- slack: {text: "Cart {{ event.data.cart_id }} abandoned", channel: "#sales"}
```
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from tropa.dsl.plan import ActivityCall, RetrySpec, StepCall, StepResult
from tropa.steps.kit import raise_for_http, render_param, template_context
from tropa.steps.registry import StepType, WorkerDeps

ACTIVITY = "slack.post_message"


class SlackSettings(BaseSettings):
    """Where messages go; the webhook URL is a secret, so it lives in the environment."""

    model_config = SettingsConfigDict(env_prefix="TROPA_SLACK_")

    webhook_url: str = Field(default="", description="Slack incoming-webhook URL")


class SlackParams(BaseModel):
    """Parameters of a `slack` step; unknown fields are errors, as in every Tropa step."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        description="Message text (Jinja2: customer, event, steps, journey)",
        examples=["VIP {{ customer.first_name }} placed order {{ event.data.order_id }}"],
        json_schema_extra={"x-template": True},
    )
    channel: str | None = Field(
        default=None,
        pattern=r"^#[a-z0-9._-]+$",
        description="Channel to post to instead of the webhook's own, e.g. #sales",
        examples=["#sales"],
    )


def slack_activity(deps: WorkerDeps) -> Callable[[StepCall], StepResult]:
    """The activity posting the message, built once per worker with its HTTP client."""
    settings = SlackSettings()

    @activity.defn(name=ACTIVITY)
    def post_message(call: StepCall) -> StepResult:
        params = SlackParams.model_validate(call.params)
        if not settings.webhook_url:
            raise ApplicationError("TROPA_SLACK_WEBHOOK_URL is not set on the worker",
                                   type="SlackNotConfigured", non_retryable=True)
        text = render_param(params.text, template_context(deps.engine, call), field="text")
        body: dict[str, str] = {"text": text}
        if params.channel:
            body["channel"] = params.channel
        # Slack ignores the header; receivers that honour it drop a retried duplicate.
        response = deps.http.post(settings.webhook_url, json=body,
                                  headers={"Idempotency-Key": call.idempotency_key})
        raise_for_http(response, service="Slack")
        return StepResult(outcome="posted", detail=params.channel or "")

    return post_message


STEP = StepType(
    name="slack",
    params=SlackParams,
    kind="activity",
    label="Slack message",
    description="Post a message to a Slack channel, e.g. to tell the team about a VIP",
    shorthand="text",
    call=ActivityCall(
        activity=ACTIVITY,
        start_to_close_seconds=15,
        retry=RetrySpec(maximum_interval_seconds=60, maximum_attempts=20),
    ),
    activity=slack_activity,
    ui={"icon": "slack", "fields": {"text": {"widget": "template", "rows": 3}}},
    examples=({"slack": {"text": "VIP {{ customer.first_name }} is back", "channel": "#sales"}},),
)

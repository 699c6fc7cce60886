"""The `webhook` step: call an external system with a signed JSON body.

```yaml
- webhook:
    url: "https://crm.example.com/hooks/cart"
    body: {cart_id: "{{ event.data.cart_id }}", customer: "{{ customer.id }}"}
```

Every call carries `X-Tropa-Timestamp: <unix seconds>`, `X-Tropa-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body bytes>">` keyed with
`TROPA_PROVIDER_WEBHOOK_SECRET`, and `Idempotency-Key: <run>/<step>`, which is the same on
every retry so the receiver can drop a repeated call.

The scheme, host and port of `url` are written out in the journey; templates may fill only
the path and the query, so an event cannot choose where a call goes. At send time the host
must resolve to public addresses (see `tropa.channels.netguard` and the `TROPA_WEBHOOK_*`
settings), and the answer of a refused call is reported by its status code only: a
receiver's body may hold anything, personal data included.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any, Literal

import httpx
from pydantic import AnyHttpUrl, Field, TypeAdapter, ValidationError, field_validator
from temporalio import activity
from temporalio.exceptions import ApplicationError

from tropa.channels.netguard import AddressPolicy, AddressRefused, guarded_client
from tropa.clock import utcnow
from tropa.dsl.expressions import check_template
from tropa.dsl.plan import ActivityCall, RetrySpec, StepCall, StepResult
from tropa.logs import get_logger
from tropa.steps.control import Params
from tropa.steps.kit import raise_for_http, render_param, template_context
from tropa.steps.registry import StepType, WorkerDeps

ACTIVITY = "tropa.webhook"
SIGNATURE_HEADER = "X-Tropa-Signature"
TIMESTAMP_HEADER = "X-Tropa-Timestamp"
# With `webhook.sink_url` set, the URL the step named travels in this header.
SINK_HEADER = "X-Tropa-Webhook-Url"
# Headers Tropa sets itself; a step may not override them (a forged signature or key
# would defeat the receiver's checks, a wrong content type its JSON parsing).
_RESERVED = {h.lower() for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER, "Idempotency-Key",
                                 "Content-Type", "Content-Length", "Host")}
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_URL = TypeAdapter(AnyHttpUrl)
log = get_logger("webhook")


_TEMPLATE_START = re.compile(r"\{[{%#]")
_LITERAL_HOST = ("the scheme and host of `url` must be written out; templates may fill only "
                 "the path and the query, e.g. "
                 "https://crm.example.com/hooks/{{ event.data.cart_id }}")


def _is_template(value: str) -> bool:
    return _TEMPLATE_START.search(value) is not None


def literal_origin(value: str) -> str | None:
    """`scheme://host[:port]` of a URL whose templates all come after the host, else None."""
    start = _TEMPLATE_START.search(value)
    literal = value if start is None else value[:start.start()]
    scheme, sep, rest = literal.partition("://")
    end = re.search(r"[/?#]", rest)
    if not sep or (start is not None and end is None):
        return None
    authority = rest if end is None else rest[:end.start()]
    if not authority or "\\" in authority:
        return None
    return f"{scheme}://{authority}"


def _same_origin(a: str, b: str) -> bool:
    try:
        one, two = httpx.URL(a), httpx.URL(b)
    except httpx.InvalidURL:
        return False
    return (one.scheme, one.host, one.port) == (two.scheme, two.host, two.port)


def _url_problem(value: str) -> str | None:
    """Why `value` is not an http(s) URL, or None when it is one."""
    try:
        _URL.validate_python(value)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        return (f"'{value}' is not an http(s) URL ({reason}); write the full address, "
                "e.g. https://crm.example.com/hooks/cart")
    return None


def _template_problems(value: Any, where: str) -> list[str]:
    """Template problems of every string inside a JSON value, each naming its path."""
    if isinstance(value, str):
        return [f"at `{where}`: {p}" for p in check_template(value)]
    if isinstance(value, dict):
        return [p for k, v in value.items()
                for p in _template_problems(v, f"{where}.{k}" if where else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _template_problems(v, f"{where}[{i}]")]
    return []


class WebhookParams(Params):
    url: str = Field(
        min_length=1,
        description="Address to call, http(s); Jinja2 placeholders may fill the path and "
        "the query, never the scheme or host",
        examples=["https://crm.example.com/hooks/cart"],
        json_schema_extra={"x-template": True},
    )
    method: Literal["POST", "PUT"] = Field(default="POST", description="HTTP method")
    body: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON object sent as the body; string values anywhere inside are Jinja2 "
        "templates (customer, event, steps, journey) and render to strings",
        examples=[{"cart_id": "{{ event.data.cart_id }}", "customer": "{{ customer.id }}"}],
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers; values are Jinja2 templates",
        examples=[{"X-Source": "tropa"}],
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        # The templates of a URL are checked by the validator (x-template); here, that they
        # leave the scheme and host alone, and the URL once rendered in the activity.
        if not _is_template(value):
            problem = _url_problem(value)
        else:
            origin = literal_origin(value)
            problem = _LITERAL_HOST if origin is None else _url_problem(origin + "/")
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("body")
    @classmethod
    def _body(cls, value: dict[str, Any]) -> dict[str, Any]:
        problems = _template_problems(value, "")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        problems = []
        for name, template in value.items():
            if not _HEADER_NAME.match(name):
                problems.append(f"`{name}` is not a header name; write e.g. `X-Source`")
            elif name.lower() in _RESERVED:
                problems.append(f"header `{name}` is set by Tropa and cannot be given here")
            problems += _template_problems(template, name)
        if problems:
            raise ValueError("; ".join(problems))
        return value


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The `X-Tropa-Signature` value: HMAC-SHA256 of `<timestamp>.<body>`, as `sha256=<hex>`."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


def _render_json(value: Any, context: dict[str, Any], where: str) -> Any:
    if isinstance(value, str):
        return render_param(value, context, field=where)
    if isinstance(value, dict):
        return {k: _render_json(v, context, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_render_json(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _rendered_url(template: str, context: dict[str, Any]) -> str:
    """The URL to call; a final error if it is not one or its host is not the written one."""
    url = render_param(template, context, field="url")
    origin = literal_origin(template)
    # The rendered text is not quoted back: it may hold event or customer data.
    if _url_problem(url) is not None:
        raise ApplicationError("`url` did not render to an http(s) URL; check the values "
                               "its templates insert", type="WebhookUrlInvalid",
                               non_retryable=True)
    if origin is None or not _same_origin(origin + "/", url):
        raise ApplicationError("`url` rendered to another scheme, host or port than the "
                               f"journey names ({origin}); templates may fill only the path "
                               "and the query", type="WebhookUrlInvalid", non_retryable=True)
    return url


def call_webhook(http: httpx.Client, secret: bytes, context: dict[str, Any],
                 call: StepCall, sink: str = "") -> StepResult:
    """Render, sign and send one call; sort the answer into done, retry or final failure.

    `http` should be a `guarded_client`: the check of the address happens where it connects.
    """
    try:
        params = WebhookParams.model_validate(call.params)
    except ValidationError as exc:
        # A run started before a rule tightened (a templated host, say): final, and named
        # by the rule only.
        reasons = "; ".join(str(e["msg"]) for e in exc.errors())
        raise ApplicationError(f"the step's parameters are no longer valid: {reasons}",
                               type="WebhookParamsInvalid", non_retryable=True) from None
    url = _rendered_url(params.url, context)
    body = json.dumps(_render_json(params.body, context, "body"), ensure_ascii=False,
                      separators=(",", ":")).encode()
    # A fresh timestamp per attempt: receivers may refuse old ones to stop replays.
    timestamp = str(int(utcnow().timestamp()))
    headers = {name: render_param(value, context, field=f"headers.{name}")
               for name, value in params.headers.items()}
    headers.update({"Content-Type": "application/json",
                    "Idempotency-Key": call.idempotency_key,
                    TIMESTAMP_HEADER: timestamp,
                    SIGNATURE_HEADER: signature(secret, timestamp, body)})
    host = httpx.URL(url).host
    if sink:
        headers[SINK_HEADER] = url
    try:
        response = http.request(params.method, sink or url, content=body, headers=headers)
    except AddressRefused as exc:
        log.warning("webhook_refused", step_id=call.step_id, host=host)
        raise ApplicationError(str(exc), type="WebhookAddressRefused",
                               non_retryable=True) from None
    except httpx.TransportError as exc:
        # Retried: the receiver may be down or slow. The text names the host only; a
        # query string may hold the receiver's own token.
        raise RuntimeError(f"webhook {params.method} to {host} failed: "
                           f"{type(exc).__name__}: {exc}") from None
    log.info("webhook_called", step_id=call.step_id, host=host, status=response.status_code)
    if 300 <= response.status_code < 400:
        # Not followed: a redirected POST would lose its body or its signature's meaning.
        raise ApplicationError(
            f"webhook answered {response.status_code} (redirect); point `url` at the final "
            "address", type="WebhookRedirected", non_retryable=True)
    raise_for_http(response, service="Webhook")
    return StepResult(outcome="called", detail=f"{params.method} {host}: "
                      f"{response.status_code}", data={"status_code": response.status_code})


def webhook_activity(deps: WorkerDeps) -> Callable[[StepCall], StepResult]:
    """The activity performing `webhook`, with a guarded HTTP client and the secret."""
    settings = deps.settings
    secret = settings.providers.webhook_secret.get_secret_value().encode()
    policy = AddressPolicy(allow_private=settings.webhook.allow_private,
                           allowed=tuple(settings.webhook.allowed_hosts))
    http = guarded_client(policy, timeout=settings.providers.timeout_seconds)

    @activity.defn(name=ACTIVITY)
    def webhook(call: StepCall) -> StepResult:
        return call_webhook(http, secret, template_context(deps.engine, call), call,
                            settings.webhook.sink_url)

    return webhook


STEP = StepType(
    name="webhook",
    params=WebhookParams,
    kind="activity",
    label="Webhook",
    description="Call an external system (CRM, ERP, chat) with a signed JSON body",
    call=ActivityCall(
        activity=ACTIVITY,
        start_to_close_seconds=30,
        # No attempt limit, as for sends: the Idempotency-Key makes a repeat harmless, and an
        # outage of the receiver (5xx, 429, timeouts) is not the journey's fault, so the run
        # waits for it rather than failing; attempts slow to one per 10 minutes and the
        # pending activity, with its last error, shows in the Temporal Web UI meanwhile.
        retry=RetrySpec(initial_interval_seconds=1, maximum_interval_seconds=600,
                        maximum_attempts=0),
    ),
    activity=webhook_activity,
    ui={"icon": "webhook", "fields": {"url": {"widget": "template", "label": "URL"},
                                      "method": {"widget": "radio"},
                                      "body": {"widget": "key-value"},
                                      "headers": {"widget": "key-value"}}},
    examples=({"webhook": {"url": "https://crm.example.com/hooks/cart",
                           "body": {"cart_id": "{{ event.data.cart_id }}",
                                    "customer": "{{ customer.id }}"}}},),
)

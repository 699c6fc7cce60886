"""A webhook step cannot be pointed inside: the host is the journey's, internal addresses are
refused where the socket connects, and a refused answer's body never reaches the run."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tests.support.receiver import SECRET, Receiver
from tests.support.servers import free_port, serve
from tropa.channels.netguard import (
    AddressPolicy,
    AddressRefused,
    GuardedTransport,
    guarded_client,
)
from tropa.dsl.compiler import compile_journey
from tropa.dsl.plan import RunRef, StepCall
from tropa.errors import JourneyInvalid
from tropa.settings import Settings
from tropa.steps.webhook import call_webhook


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    box = Receiver()
    with serve(box.app()) as url:
        yield box, url


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    # The defaults a production worker runs with: no internal address is allowed.
    settings.providers.webhook_secret = SecretStr(SECRET)
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


@pytest.fixture
async def trusting(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                   task_queue: str, receiver: tuple[Receiver, str]) -> AsyncIterator[Harness]:
    """Workers that may call the receiver's host:port, as a named internal host."""
    settings.providers.webhook_secret = SecretStr(SECRET)
    settings.webhook.allowed_hosts = [receiver[1].removeprefix("http://")]
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


def hook_journey(url: str) -> str:
    return f"""
journey: hook
trigger: {{event: go}}
settings: {{category: service}}
steps:
  - webhook: {{url: "{url}", body: {{customer: "{{{{ customer.id }}}}"}}}}
"""


# -- the journey names the host ---------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "{{ event.data.hook }}",
    "https://{{ event.data.host }}/hooks",
    "{{ event.data.scheme }}://crm.example.com/hooks",
    "https://crm.example.com:{{ event.data.port }}/hooks",
    "https://crm.example.com{{ event.data.rest }}",
    "https://{{ event.data.user }}@crm.example.com/hooks",
    "https://crm.{% if event.data.x %}evil{% endif %}example.com/hooks",
], ids=["whole", "host", "scheme", "port", "host-suffix", "userinfo", "statement"])
def test_a_templated_scheme_host_or_port_is_refused_at_its_line(url: str) -> None:
    text = f'journey: j\ntrigger: {{event: go}}\nsteps:\n  - webhook: {{url: "{url}"}}\n'
    with pytest.raises(JourneyInvalid) as caught:
        compile_journey(text, "j.yaml")

    problems = caught.value.problems
    column = text.splitlines()[3].index('"') + 1
    assert [(p.line, p.column) for p in problems] == [(4, column)]
    rendered = problems[0].render()
    assert rendered.startswith(f"j.yaml:4:{column}: error: ")
    assert "the scheme and host of `url` must be written out" in rendered
    assert "    " + " " * (column - 1) + "^" in rendered.splitlines()


@pytest.mark.parametrize("url", [
    "https://crm.example.com/hooks/{{ event.data.cart_id }}",
    "https://crm.example.com:8443/{{ event.data.a }}/{{ event.data.b }}",
    "https://crm.example.com?cart={{ event.data.cart_id }}",
    "http://10.1.2.3/hooks",  # literal: written by the journey's author, checked at send time
])
def test_templates_in_path_and_query_are_accepted(url: str) -> None:
    text = f'journey: j\ntrigger: {{event: go}}\nsteps:\n  - webhook: {{url: "{url}"}}\n'
    compile_journey(text, "j.yaml")


# -- internal addresses are refused at send time ---------------------------------------------


async def test_a_loopback_receiver_is_refused_finally_and_never_called(
        harness: Harness, receiver: tuple[Receiver, str]) -> None:
    box, base = receiver
    harness.publish(hook_journey(f"{base}/hooks/{{{{ event.data.name }}}}"))
    add_customer(harness.engine, "c-1")
    await harness.fire("go", "c-1", {"name": "x"})

    status = await harness.finish("journey/hook/c-1")

    step = status.steps[0]
    assert (step.step_id, step.outcome) == ("1-webhook", "failed")
    assert step.detail.startswith("WebhookAddressRefused: 127.0.0.1 resolves to a loopback "
                                  "address"), step.detail
    assert "TROPA_WEBHOOK_ALLOWED_HOSTS" in step.detail
    assert box.calls == []


async def test_a_failed_answer_is_reported_by_status_only(
        trusting: Harness, receiver: tuple[Receiver, str]) -> None:
    box, base = receiver
    marker = "body-marker-olga@example.com"
    box.answers = [(422, f"unknown customer {marker}")]
    trusting.publish(hook_journey(f"{base}/hooks/{{{{ event.data.name }}}}"))
    add_customer(trusting.engine, "c-2")
    await trusting.fire("go", "c-2", {"name": "@169.254.169.254"})

    status = await trusting.finish("journey/hook/c-2")

    step = status.steps[0]
    assert step.detail == "WebhookRejected: Webhook answered 422 Unprocessable Entity"
    # the template filled the path: `@...` did not move the call to another host
    assert [c["name"] for c in box.calls] == ["@169.254.169.254"]
    history = (await trusting.handle("journey/hook/c-2").fetch_history()).to_json()
    assert marker not in history
    assert "unknown customer" not in history


async def test_a_redirect_is_not_followed_and_fails_the_step(
        trusting: Harness, receiver: tuple[Receiver, str]) -> None:
    box, base = receiver
    box.answers = [(307, "")]
    trusting.publish(hook_journey(f"{base}/hooks/first"))
    add_customer(trusting.engine, "c-3")
    await trusting.fire("go", "c-3")

    status = await trusting.finish("journey/hook/c-3")

    assert status.steps[0].outcome == "failed"
    assert status.steps[0].detail.startswith("WebhookRedirected: webhook answered 307")
    assert [c["name"] for c in box.calls] == ["first"]


# -- the guarded client: each kind of internal address, rebinding, settings ------------------


@pytest.mark.parametrize(("host", "kind"), [
    ("127.0.0.1", "loopback"),
    ("localhost", "loopback"),
    ("[::1]", "loopback"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:7f00:1]", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("10.0.0.7", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "cloud metadata"),
    ("[fd00:ec2::254]", "cloud metadata"),
    ("[::ffff:169.254.169.254]", "cloud metadata"),
    ("169.254.10.1", "link-local"),
    ("[fe80::1]", "link-local"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "not publicly routable"),
    ("[64:ff9b::a00:1]", "private"),  # NAT64 form of 10.0.0.1
])
def test_internal_addresses_are_refused_before_connecting(
        host: str, kind: str, receiver: tuple[Receiver, str]) -> None:
    box, base = receiver
    port = base.rsplit(":", 1)[1]
    with guarded_client(AddressPolicy(), timeout=5) as http, \
            pytest.raises(AddressRefused, match=f"resolves to an? {kind} address"):
        http.post(f"http://{host}:{port}/hooks/x")
    assert box.calls == []


def test_one_resolution_pins_the_address_the_call_connects_to(
        receiver: tuple[Receiver, str]) -> None:
    """DNS rebinding: the first answer passes the check, later answers point inside. The
    call goes to the checked address (127.0.0.2, where nothing listens), never to the
    receiver on 127.0.0.1, and the name is resolved once."""
    box, base = receiver
    port = int(base.rsplit(":", 1)[1])
    answers: list[str] = []

    def rebinding(_host: str, port: int, *_: Any) -> list[tuple[Any, ...]]:
        address = "127.0.0.2" if not answers else "127.0.0.1"
        answers.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    policy = AddressPolicy(allowed=("127.0.0.2/32",))
    with guarded_client(policy, timeout=5, resolve=rebinding) as http, \
            pytest.raises(httpx.ConnectError):
        http.post(f"http://hooks.rebind.test:{port}/hooks/x")
    assert answers == ["127.0.0.2"]
    assert box.calls == []


def test_a_name_with_one_internal_address_among_public_ones_is_refused() -> None:
    def mixed(_host: str, port: int, *_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in ("93.184.216.34", "10.0.0.5")]

    with guarded_client(AddressPolicy(), timeout=5, resolve=mixed) as http, \
            pytest.raises(AddressRefused, match="private address"):
        http.post(f"http://hooks.mixed.test:{free_port()}/hooks/x")


def test_settings_open_named_hosts_and_private_ranges_but_not_metadata(
        receiver: tuple[Receiver, str]) -> None:
    box, base = receiver
    port = base.rsplit(":", 1)[1]
    for policy in (AddressPolicy(allowed=(f"127.0.0.1:{port}",)),
                   AddressPolicy(allowed=("127.0.0.0/8",)),
                   AddressPolicy(allow_private=True)):
        with guarded_client(policy, timeout=5) as http:
            assert http.post(f"{base}/hooks/x", content=b"{}").status_code == 401  # unsigned
    assert len(box.calls) == 3
    # another port on the same host is not named, and allow_private keeps metadata shut
    with guarded_client(AddressPolicy(allowed=(f"127.0.0.1:{port}",)), timeout=5) as http, \
            pytest.raises(AddressRefused):
        http.post(f"http://127.0.0.1:{free_port()}/hooks/x")
    with guarded_client(AddressPolicy(allow_private=True), timeout=5) as http, \
            pytest.raises(AddressRefused, match="cloud metadata"):
        http.get("http://169.254.169.254/latest/meta-data/")


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TROPA_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("TROPA_WEBHOOK_ALLOWED_HOSTS", '["crm.internal", "10.20.0.0/16"]')
    settings = Settings()
    assert settings.webhook.allow_private is True
    assert settings.webhook.allowed_hosts == ["crm.internal", "10.20.0.0/16"]
    monkeypatch.delenv("TROPA_WEBHOOK_ALLOW_PRIVATE")
    assert Settings().webhook.allow_private is False


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[int, Path, list[str]]]:
    """An HTTPS server on 127.0.0.1 whose certificate names hooks.tls.test only."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=hooks.tls.test", "-addext",
                    "subjectAltName=DNS:hooks.tls.test"], check=True, capture_output=True)
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hosts.append(self.headers.get("host", ""))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:  # keep the test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert, hosts
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_tls_checks_the_certificate_against_the_url_host_not_the_pinned_address(
        tls_receiver: tuple[int, Path, list[str]]) -> None:
    port, cert, hosts = tls_receiver

    def local(_host: str, port: int, *_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    trust = ssl.create_default_context(cafile=str(cert))
    policy = AddressPolicy(allowed=("hooks.tls.test", "other.tls.test"))
    with httpx.Client(transport=GuardedTransport(policy, resolve=local, verify=trust)) as http:
        assert http.post(f"https://hooks.tls.test:{port}/hooks/x").status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            http.post(f"https://other.tls.test:{port}/hooks/x")
    assert hosts == [f"hooks.tls.test:{port}"]


def _call(url: str) -> StepCall:
    return StepCall(run=RunRef(workflow_id="journey/old/c-1", run_id="r1", journey="old",
                               version="v1", customer_id="c-1", category="service"),
                    step_id="1-webhook", step_type="webhook", params={"url": url},
                    idempotency_key="journey/old/c-1/r1/1-webhook")


@pytest.mark.parametrize("url", ["{{ event.data.hook }}", "https://{{ event.data.host }}/x"])
def test_a_run_published_before_the_rule_fails_its_step_finally_without_calling(
        url: str, receiver: tuple[Receiver, str]) -> None:
    """Plans already stored keep their templated URL; the step refuses it when it runs."""
    box, base = receiver
    context = {"event": {"data": {"hook": f"{base}/hooks/x", "host": base[7:]}},
               "customer": {"id": "c-1"}, "steps": {}, "journey": {"name": "old"}}
    with guarded_client(AddressPolicy(allow_private=True), timeout=5) as http, \
            pytest.raises(ApplicationError) as caught:
        call_webhook(http, SECRET.encode(), context, _call(url))

    assert caught.value.type == "WebhookParamsInvalid"
    assert caught.value.non_retryable
    assert "the scheme and host of `url` must be written out" in caught.value.message
    assert base[7:] not in caught.value.message  # the event's value is not quoted back
    assert box.calls == []

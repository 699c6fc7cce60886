"""`tropa simulate` and `POST /v1/journeys:simulate`: the real engine for one customer over
simulated time. A Feb 29 birthday over two years (one leap), an abandoned cart that the order
stops, the JSON keys the issue names, and bad input refused with the place and the fix."""

from __future__ import annotations

import asyncio
import calendar
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import pytest
import sqlalchemy as sa
import structlog
from temporalio.testing import WorkflowEnvironment

from tests.support.api import api_client, make_app, make_key
from tropa.logs import configure
from tropa.settings import Settings
from tropa.worker import cli_simulate
from tropa.worker.cli import parser

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KEYS = {
    "run_started": {"at", "kind", "run", "journey"},
    "step": {"at", "kind", "run", "step", "type", "outcome"},
    "message": {"at", "kind", "run", "step", "channel", "text", "status"},
    "loyalty": {"at", "kind", "run", "operation", "amount", "balance"},
    "run_ended": {"at", "kind", "run", "state", "reason"},
}
ANNA = {"id": "c-leap", "first_name": "Anna", "phone": "+79160000001",
        "time_zone": "Europe/Moscow", "birthday": "2000-02-29"}
BORIS = {"id": "c-cart", "first_name": "Boris", "phone": "+79160000007", "phone_verified": True,
         "email": "boris@example.com", "time_zone": "Asia/Yekaterinburg",
         "consents": {"marketing": {"sms": True, "email": True}}}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `tropa <argv>` in this process; exit code, stdout, stderr.

    The command sets up logging as for a process of its own (WARNING), but no logger is
    cached meanwhile and the test run's logging comes back afterwards: a module's logger
    cached at WARNING would hide the INFO lines later tests in this process read.
    """
    args = parser().parse_args(list(argv))
    saved = structlog.get_config()

    def uncached(level: str) -> None:
        configure(level)
        structlog.configure(cache_logger_on_first_use=False)

    try:
        with patch.object(cli_simulate, "configure", uncached):
            code = args.func(args)
    finally:
        structlog.configure(**saved)
    out = capsys.readouterr()
    return code, out.out, out.err


def write(folder: Path, name: str, content: Any) -> str:
    path = folder / name
    if isinstance(content, list):
        path.write_text("".join(json.dumps(item) + "\n" for item in content))
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def leap_pair() -> int:
    """The first year whose Feb 1 is ahead and which, or whose next year, is a leap year."""
    now = datetime.now(UTC)
    year = now.year
    while not (datetime(year, 2, 1, tzinfo=UTC) > now
               and (calendar.isleap(year) or calendar.isleap(year + 1))):
        year += 1
    return year


def cart_events(day: date) -> list[dict[str, Any]]:
    return [
        {"event_id": "e-cart", "type": "cart.updated", "customer_id": "c-cart",
         "occurred_at": f"{day.isoformat()}T08:00:00Z",
         "data": {"cart_id": "K1", "cart_url": "https://shop.example/cart/K1"}},
        {"event_id": "e-order", "type": "order.placed", "customer_id": "c-cart",
         "occurred_at": f"{day.isoformat()}T13:00:00Z",
         "data": {"order_id": "o-1", "total": 250000, "cart_id": "K1"}},
    ]


def test_cli_birthday_over_two_years_with_a_feb_29_birthday(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    year = leap_pair()
    customer = write(tmp_path, "anna.json", ANNA)
    span = ["--from", f"{year}-02-01T00:00:00Z", "--until", f"{year + 1}-12-31T00:00:00Z"]
    code, out, err = cli(capsys, "simulate", str(EXAMPLES / "birthday-bonus.yaml"),
                         "--customer", customer, *span, "--json")
    assert code == 0, err
    happenings = [json.loads(line) for line in out.splitlines()]
    for h in happenings:
        assert KEYS[h["kind"]] <= set(h), h
    assert [h["at"] for h in happenings] == sorted(h["at"] for h in happenings)

    def local(h: dict[str, Any]) -> str:
        moment = datetime.fromisoformat(h["at"].replace("Z", "+00:00"))
        return f"{moment + timedelta(hours=3):%Y-%m-%d %H:%M}"  # Moscow is UTC+3 all year

    seen = [(local(h), h["kind"], h.get("operation") or h.get("status") or h.get("state"),
             h.get("amount"), h.get("balance")) for h in happenings if h["kind"] != "step"]
    expected = []
    for y in (year, year + 1):
        eve = date(y, 2, 28 if calendar.isleap(y) else 27)
        burn = eve + timedelta(days=14)
        expected += [(f"{eve} 10:00", "run_started", None, None, None),
                     (f"{eve} 10:00", "loyalty", "accrue", 500, 500),
                     (f"{eve} 10:00", "message", "delivered", None, None),
                     (f"{eve} 10:00", "run_ended", "completed", None, None),
                     # the hourly burn sweep after the accrual's 10:00 + 14 days
                     (f"{burn} 11:00", "loyalty", "expire", 500, 0)]
    assert seen == expected
    texts = [h["text"] for h in happenings if h["kind"] == "message"]
    for y, text in zip((year, year + 1), texts, strict=True):
        burn = date(y, 2, 28 if calendar.isleap(y) else 27) + timedelta(days=14)
        assert text == f"Happy birthday, Anna! 500 bonuses are yours until {burn:%d.%m.%Y}."
    runs = {h["run"] for h in happenings if h["kind"] == "run_started"}
    assert runs == {f"journey/birthday-bonus/c-leap/{y}" for y in (year, year + 1)}

    # The readable timeline of the first spring, in Moscow time.
    code, out, _ = cli(capsys, "simulate", str(EXAMPLES / "birthday-bonus.yaml"),
                       "--customer", customer, "--from", span[1], "--until",
                       f"{year}-03-31T00:00:00Z")
    assert code == 0
    eve = date(year, 2, 28 if calendar.isleap(year) else 27)
    assert f"{eve} 10:00 MSK  accrue 500 bonus points; balance 500" in out
    assert f"{eve} 10:00 MSK  sms delivered: Happy birthday, Anna!" in out
    assert f"{eve + timedelta(days=14)} 11:00 MSK  expire 500 bonus points; balance 0" in out


def test_cli_abandoned_cart_stops_when_the_order_is_placed(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    day = date(datetime.now(UTC).year + 1, 1, 10)
    code, out, err = cli(capsys, "simulate", str(EXAMPLES / "abandoned-cart.yaml"),
                         "--customer", write(tmp_path, "boris.json", BORIS),
                         "--events", write(tmp_path, "events.jsonl", cart_events(day)),
                         "--from", f"{day}T00:00:00Z", "--until", f"{day + timedelta(days=5)}"
                         "T00:00:00Z", "--json")
    assert code == 0, err
    happenings = [json.loads(line) for line in out.splitlines()]
    run = "journey/abandoned-cart/c-cart/K1"
    assert {h["run"] for h in happenings} == {run}
    shown = [(h["at"][:16], h["kind"], h.get("step") if h["kind"] == "step" else
              h.get("channel") or h.get("state"), h.get("status") or h.get("outcome") or
              h.get("reason")) for h in happenings]
    assert shown == [
        (f"{day}T08:00", "run_started", None, None),
        (f"{day}T08:00", "step", "1-wait", "waited"),
        (f"{day}T09:00", "step", "2-send", "accepted"),
        (f"{day}T09:00", "message", "email", "delivered"),
        (f"{day}T09:00", "step", "3-wait", "waited"),
        (f"{day}T12:00", "step", "4-send", "accepted"),
        (f"{day}T12:00", "message", "email", "delivered"),
        (f"{day}T12:00", "step", "5-wait", "exited"),  # the 20 h wait, cut by the order
        (f"{day}T13:00", "run_ended", "exited", "exit_on order.placed"),
    ]
    second = [h for h in happenings if h["kind"] == "message"][1]
    assert (second["subject"], second["text"]) == (
        "Still thinking it over?", "Boris, the goods in your cart are still there: "
        "https://shop.example/cart/K1")


def test_cli_bad_input_names_the_place_and_the_fix(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    journey = str(EXAMPLES / "birthday-bonus.yaml")
    later = f"{datetime.now(UTC).year + 2}-01-01T00:00:00Z"
    broken = write(tmp_path, "broken.json", '{"id": "c-1", "birthday": }')
    code, _, err = cli(capsys, "simulate", journey, "--customer", broken, "--until", later)
    assert code == 1
    assert err.startswith(f"error: {broken}:1:27: not JSON: Expecting value;")

    wrong = write(tmp_path, "wrong.json", {"first_name": "A", "birthday": "1990-13-01",
                                          "time_zone": "Moscow"})
    code, _, err = cli(capsys, "simulate", journey, "--customer", wrong, "--until", later)
    assert code == 1
    assert f"error: {wrong}: `id`: missing; add the customer's id" in err
    assert f"error: {wrong}: `time_zone`: Value error, 'Moscow' is not an IANA region" in err
    assert f"error: {wrong}: `birthday`: Input should be a valid date" in err

    anna = write(tmp_path, "anna.json", ANNA)
    code, _, err = cli(capsys, "simulate", journey, "--customer", anna,
                       "--from", "2020-01-01T00:00:00Z", "--until", later)
    assert code == 1
    assert err.startswith("error: --from 2020-01-01T00:00:00+00:00 lies in the past; a "
                          "simulation shows what is ahead: give a time after ")
    code, _, err = cli(capsys, "simulate", journey, "--customer", anna, "--until", "tomorrow")
    assert (code, err) == (1, "error: --until 'tomorrow' is not a time; give ISO 8601 with a "
                              "UTC offset, e.g. 2027-01-01T00:00:00Z\n")

    events = write(tmp_path, "events.jsonl", "{\"event_id\": \"e1\"}\nnot json\n")
    code, _, err = cli(capsys, "simulate", journey, "--customer", anna, "--events", events,
                       "--until", later)
    assert code == 1
    assert err == f"error: {events}:2:1: not JSON: Expecting value; write one event object " \
                  "per line\n"

    bad = write(tmp_path, "bad.yaml", "journey: j\ntrigger: {event: x}\nsteps:\n"
                "  - send: {channel: sms, txt: hi}\n")
    code, _, err = cli(capsys, "simulate", bad, "--customer", anna, "--until", later)
    assert code == 1
    assert f"{bad}:4:" in err and "^" in err


@pytest.fixture
async def client(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                 task_queue: str) -> Any:
    """The real API app; the simulation brings its own Temporal, database and sandbox."""
    app = make_app(time_skipping.client, engine, settings, task_queue)
    async with api_client(app, make_key(engine, "read")) as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


async def test_api_simulates_the_abandoned_cart(client: httpx.AsyncClient) -> None:
    day = date(datetime.now(UTC).year + 1, 1, 10)
    response = await client.post("/v1/journeys:simulate", json={
        "journey": (EXAMPLES / "abandoned-cart.yaml").read_text(), "customer": BORIS,
        "events": cart_events(day), "from": f"{day}T00:00:00Z",
        "until": f"{day + timedelta(days=5)}T00:00:00Z"}, timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["journey"], body["customer_id"]) == ("abandoned-cart", "c-cart")
    happenings = body["happenings"]
    for h in happenings:
        assert KEYS[h["kind"]] <= set(h), h
    messages = [(h["at"][:16], h["channel"], h["status"], h["text"]) for h in happenings
                if h["kind"] == "message"]
    assert messages == [
        (f"{day}T09:00", "email", "delivered", "Your cart is waiting: "
         "https://shop.example/cart/K1"),
        (f"{day}T12:00", "email", "delivered", "Boris, the goods in your cart are still "
         "there: https://shop.example/cart/K1")]
    assert happenings[-1] == {"at": happenings[-1]["at"], "kind": "run_ended",
                              "run": "journey/abandoned-cart/c-cart/K1", "state": "exited",
                              "reason": "exit_on order.placed"}


async def test_api_simulates_two_birthdays_of_a_feb_29_customer(
        client: httpx.AsyncClient) -> None:
    year = leap_pair()
    response = await client.post("/v1/journeys:simulate", json={
        "journey": (EXAMPLES / "birthday-bonus.yaml").read_text(), "customer": ANNA,
        "from": f"{year}-02-01T00:00:00Z", "until": f"{year + 1}-12-31T00:00:00Z"},
        timeout=120)
    assert response.status_code == 200, response.text
    happenings = response.json()["happenings"]
    for h in happenings:
        assert KEYS[h["kind"]] <= set(h), h
    eves = [date(y, 2, 28 if calendar.isleap(y) else 27) for y in (year, year + 1)]
    assert [(h["at"][:16], h["operation"], h["amount"], h["balance"]) for h in happenings
            if h["kind"] == "loyalty"] == [
        row for eve in eves for row in (
            (f"{eve}T07:00", "accrue", 500, 500),  # 10:00 in Moscow
            (f"{eve + timedelta(days=14)}T08:00", "expire", 500, 0))]
    assert [(h["at"][:16], h["status"]) for h in happenings if h["kind"] == "message"] == [
        (f"{eve}T07:00", "delivered") for eve in eves]
    assert [(h["run"], h["state"]) for h in happenings if h["kind"] == "run_ended"] == [
        (f"journey/birthday-bonus/c-leap/{eve.year}", "completed") for eve in eves]


async def test_api_refuses_bad_input_and_too_many_at_once(client: httpx.AsyncClient) -> None:
    later = f"{datetime.now(UTC).year + 2}-01-01T00:00:00Z"
    journey = (EXAMPLES / "birthday-bonus.yaml").read_text()
    bad = await client.post("/v1/journeys:simulate", json={
        "journey": "journey: j\ntrigger: {event: x}\nsteps:\n  - send: {channel: sms, txt: hi}\n",
        "customer": ANNA, "until": later})
    assert bad.status_code == 422
    problem = bad.json()["problems"][0]
    assert problem["line"] == 4 and "^" in problem["text"]

    wrong = await client.post("/v1/journeys:simulate", json={
        "journey": journey, "customer": {**ANNA, "birthday": "2000-02-30"}, "until": later})
    assert wrong.status_code == 422
    assert wrong.json()["problems"][0]["message"].startswith(
        "$.customer: `birthday`: Input should be a valid date")

    past = await client.post("/v1/journeys:simulate", json={
        "journey": journey, "customer": ANNA, "from": "2020-01-01T00:00:00Z", "until": later})
    assert past.status_code == 422
    assert "--from 2020-01-01T00:00:00+00:00 lies in the past" in past.json()["detail"]

    foreign = await client.post("/v1/journeys:simulate", json={
        "journey": journey, "customer": ANNA, "until": later, "events": [
            {"event_id": "e1", "type": "x", "customer_id": "someone-else",
             "occurred_at": later, "data": {}}]})
    assert foreign.status_code == 422
    assert foreign.json()["problems"][0]["message"] == (
        "$.events[0]: `customer_id`: 'someone-else' is not the simulated customer; "
        "give 'c-leap'")

    # Both slots taken by simulations in flight: the next request is told to come back.
    app = client.app  # type: ignore[attr-defined]
    app.state.simulations = asyncio.Semaphore(2)
    async with app.state.simulations, app.state.simulations:
        busy = await client.post("/v1/journeys:simulate", json={
            "journey": journey, "customer": ANNA, "until": later})
    assert busy.status_code == 429
    assert busy.json()["detail"] == "2 simulations are running; try again when one has finished"


def test_cli_webhooks_reach_the_sandbox_not_the_receiver(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The receiver's name does not even resolve: the call goes to the simulation's sandbox,
    and the run reads as it would in production."""
    journey = write(tmp_path, "hook.yaml", (
        "journey: hook\ntrigger: {event: lead.created}\nsteps:\n"
        "  - webhook: {url: \"https://crm.invalid/hooks/lead\", "
        "body: {customer: \"{{ customer.id }}\"}}\n"))
    day = date(datetime.now(UTC).year + 1, 3, 1)
    code, out, err = cli(capsys, "simulate", journey, "--customer",
                         write(tmp_path, "boris.json", BORIS), "--events",
                         write(tmp_path, "e.jsonl", [{
                             "event_id": "lead-1", "type": "lead.created",
                             "customer_id": "c-cart", "occurred_at": f"{day}T10:00:00Z"}]),
                         "--from", f"{day}T00:00:00Z", "--until", f"{day}T12:00:00Z", "--json")
    assert code == 0, err
    steps = [json.loads(line) for line in out.splitlines() if '"kind": "step"' in line]
    assert [(s["at"][:16], s["outcome"], s["detail"]) for s in steps] == [
        (f"{day}T10:00", "called", "POST crm.invalid: 200")]


async def test_the_simulated_clock_is_the_simulation_s_alone() -> None:
    """A simulation inside the API process moves `utcnow()` for its own tasks and threads
    only; the requests served beside it keep the wall clock."""
    from tropa.clock import following, utcnow

    moment = datetime(2031, 5, 1, 10, tzinfo=UTC)
    inside, read = asyncio.Event(), asyncio.Event()
    seen: dict[str, datetime] = {}

    async def simulation() -> None:
        with following(lambda: moment):
            seen["task"] = utcnow()
            seen["thread"] = await asyncio.to_thread(utcnow)
            inside.set()
            # the request beside it reads the clock while this context is on
            await asyncio.wait_for(read.wait(), timeout=10)

    async def request() -> None:
        await inside.wait()
        seen["beside"] = utcnow()
        read.set()

    await asyncio.gather(simulation(), request())
    assert seen["task"] == seen["thread"] == moment
    assert abs(seen["beside"] - datetime.now(UTC)) < timedelta(minutes=1)
    assert abs(utcnow() - datetime.now(UTC)) < timedelta(minutes=1)


def test_cli_a_key_triggered_again_shows_every_run(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The same cart after its run completed starts a new execution under the same workflow
    id; changed again while that one waits, it restarts it (continue-as-new): three runs."""
    journey = write(tmp_path, "kc.yaml", (
        "journey: kc\ntrigger: {event: cart.updated, key: \"{{ event.data.cart_id }}\"}\n"
        "re_entry: restart\nsteps:\n  - wait: 1h\n"
        "  - send: {channel: sms, text: \"cart {{ event.event_id }}\"}\n"))
    day = date(datetime.now(UTC).year + 1, 4, 1)
    events = [{"event_id": f"e{n}", "type": "cart.updated", "customer_id": "c-cart",
               "occurred_at": f"{day}T{at}:00Z", "data": {"cart_id": "K1"}}
              for n, at in ((1, "08:00"), (2, "12:00"), (3, "12:30"))]
    code, out, err = cli(capsys, "simulate", journey, "--customer",
                         write(tmp_path, "boris.json", BORIS), "--events",
                         write(tmp_path, "e.jsonl", events), "--from", f"{day}T00:00:00Z",
                         "--until", f"{day}T18:00:00Z", "--json")
    assert code == 0, err
    seen = [(h["at"][11:16], h["kind"], h.get("text") or h.get("reason"))
            for h in map(json.loads, out.splitlines()) if h["kind"] != "step"]
    assert seen == [
        ("08:00", "run_started", None), ("09:00", "message", "cart e1"),
        ("09:00", "run_ended", "all steps done"),
        ("12:00", "run_started", None), ("12:30", "run_ended", "restarted by event e3"),
        ("12:30", "run_started", None), ("13:30", "message", "cart e3"),
        ("13:30", "run_ended", "all steps done")]

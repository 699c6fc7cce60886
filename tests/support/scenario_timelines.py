"""The exact timelines of the shipped journeys, as data.

One `Scenario` per journey in `examples/`: the customers (bodies of `PUT /v1/customers/{id}`),
their purchase history, the events (as `POST /v1/events` takes them, delivered at their
`occurred_at`), the period, and what each customer must see, in order, in their own time
zone. The timing tests (tests/test_scenarios_*.py) run each journey on the time-skipping
server and compare what happened with `expected`; `tropa simulate` is checked against the
same data. Nothing missing, nothing twice: the lists are complete for the whole period.

Conventions:
- `at` is the customer's local wall time, "YYYY-MM-DD HH:MM".
- `kind`: "message" (channel, text, subject for email, status), "loyalty" (operation
  accrue | issue_coupon, amount, balance, expires = local burn or coupon end), "task"
  (assignee, text, due), "run_ended" (state completed | exited, reason).
- A message's `status` is what the customer got: "delivered" (the provider took it; the
  sandbox delivers everything it takes), "suppressed" (consent, caps) or "cancelled".
- "{code}" in a text stands for the coupon code the same run issued (`code` of the
  issue_coupon happening just before it).
- `exit_on` ends a run with the reason "exit_on <event type>"; an `exit` step with its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["message", "loyalty", "task", "run_ended"]


@dataclass(frozen=True)
class Happening:
    """One thing a customer's journey did, at a local time."""

    at: str
    kind: Kind
    channel: str = ""
    text: str = ""
    subject: str = ""
    status: str = ""
    operation: str = ""
    amount: int | None = None
    balance: int | None = None
    expires: str = ""
    assignee: str = ""
    due: str = ""
    state: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Scenario:
    """A journey, its customers and events, a period, and the expected timeline per customer."""

    journey: str
    start: str
    until: str
    customers: dict[str, dict[str, Any]]
    expected: dict[str, list[Happening]]
    events: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, list[str]] = field(default_factory=dict)
    """Purchases before the period (customer -> UTC times), for RF segments."""


def sms(at: str, text: str, status: str = "delivered") -> Happening:
    return Happening(at, "message", channel="sms", text=text, status=status)


def email(at: str, subject: str, text: str) -> Happening:
    return Happening(at, "message", channel="email", subject=subject, text=text,
                     status="delivered")


def accrue(at: str, amount: int, balance: int, expires: str) -> Happening:
    return Happening(at, "loyalty", operation="accrue", amount=amount, balance=balance,
                     expires=expires)


def ended(at: str, state: str = "completed", reason: str = "") -> Happening:
    return Happening(at, "run_ended", state=state, reason=reason)


def _person(name: str, zone: str, phone: str, *, locale: str = "ru",
            channels: tuple[str, ...] = ("sms", "email"), **more: Any) -> dict[str, Any]:
    """A customer body with verified contacts and marketing consent on `channels`."""
    return {"first_name": name, "phone": phone, "phone_verified": True,
            "email": f"{name.lower()}@example.com", "email_verified": True, "time_zone": zone,
            "locale": locale, "consents": {"marketing": dict.fromkeys(channels, True)}, **more}


MOSCOW, VLADIVOSTOK, NEW_YORK = "Europe/Moscow", "Asia/Vladivostok", "America/New_York"


def _birthday(name: str, date: str, burn: str, burn_day: str) -> list[Happening]:
    return [accrue(date, 500, 500, burn),
            sms(date, f"Happy birthday, {name}! 500 bonuses are yours until {burn_day}."),
            ended(date)]


BIRTHDAY_BONUS = Scenario(
    journey="birthday-bonus", start="2030-01-01T00:00:00Z", until="2032-03-01T00:00:00Z",
    customers={
        "anna": _person("Anna", MOSCOW, "+79160000101", birthday="1990-03-10"),
        # Born on Feb 29: the eve is Feb 27 in common years, Feb 28 in leap years. The burn
        # moment is 14 days later in UTC, so it reads 11:00 once New York is on summer time.
        "leo": _person("Leo", NEW_YORK, "+79160000102", locale="en", birthday="2000-02-29"),
    },
    expected={
        "anna": [*_birthday("Anna", "2030-03-09 10:00", "2030-03-23 10:00", "23.03.2030"),
                 *_birthday("Anna", "2031-03-09 10:00", "2031-03-23 10:00", "23.03.2031")],
        "leo": [*_birthday("Leo", "2030-02-27 10:00", "2030-03-13 11:00", "13.03.2030"),
                *_birthday("Leo", "2031-02-27 10:00", "2031-03-13 11:00", "13.03.2031"),
                *_birthday("Leo", "2032-02-28 10:00", "2032-03-13 10:00", "13.03.2032")],
    })


def _child(name: str, parent: str, at: str, until: str, until_day: str) -> list[Happening]:
    return [Happening(at, "loyalty", operation="issue_coupon", expires=until),
            email(at, f"{name}'s birthday is coming: a gift from us",
                  f"{parent}, {name} has a birthday soon! Your coupon {{code}} is valid until "
                  f"{until_day}."),
            ended(at)]


CHILDREN_BIRTHDAYS = Scenario(
    journey="children-birthdays", start="2030-01-01T00:00:00Z", until="2031-01-01T00:00:00Z",
    customers={
        # Seed 003's questionnaire: dates as the form gave them, ISO or DD.MM.YYYY.
        "olga": _person("Olga", MOSCOW, "+79160000201", attributes={"children": [
            {"name": "Ivan", "birth_date": "2015-03-01"},
            {"name": "Masha", "birth_date": "03.03.2018"}]}),
        "petr": _person("Petr", VLADIVOSTOK, "+79160000202", attributes={"children": [
            {"name": "Lena", "birth_date": "2019-06-15"}]}),
    },
    expected={
        "olga": [*_child("Ivan", "Olga", "2030-02-24 10:00", "2030-03-07 10:00", "07.03.2030"),
                 *_child("Masha", "Olga", "2030-02-26 10:00", "2030-03-09 10:00",
                         "09.03.2030")],
        "petr": _child("Lena", "Petr", "2030-06-10 10:00", "2030-06-21 10:00", "21.06.2030"),
    })

_CART = "https://shop.example/cart/"
_CALL = ("Hello, {name}! You left goods in your cart. Press 1 to talk to an operator who can "
         "help you finish the order.")

ABANDONED_CART = Scenario(
    journey="abandoned-cart", start="2030-01-14T00:00:00Z", until="2030-02-01T00:00:00Z",
    customers={
        "kate": _person("Kate", MOSCOW, "+79160000301",
                        channels=("sms", "email", "whatsapp", "voice")),
        # No WhatsApp consent: the WhatsApp step falls back to SMS.
        "vlad": _person("Vlad", VLADIVOSTOK, "+79160000302", channels=("sms", "email", "voice")),
    },
    events=[
        {"event_id": "cart-c2", "type": "cart.updated", "customer_id": "vlad",
         "occurred_at": "2030-01-14T00:00:00Z",
         "data": {"cart_id": "c2", "cart_url": _CART + "c2"}},
        {"event_id": "cart-c1", "type": "cart.updated", "customer_id": "kate",
         "occurred_at": "2030-01-14T18:30:00Z",
         "data": {"cart_id": "c1", "cart_url": _CART + "c1"}},
        {"event_id": "order-o2", "type": "order.placed", "customer_id": "vlad",
         "occurred_at": "2030-01-16T02:00:00Z", "data": {"order_id": "o2", "cart_id": "c2"}},
    ],
    expected={
        # The cart at 21:30 Moscow: emails go at any hour, the SMS due at 21:30 waits for the
        # end of quiet hours (09:00), and the later steps count from then.
        "kate": [
            email("2030-01-14 22:30", "Kate, you left something behind",
                  f"Your cart is waiting: {_CART}c1"),
            email("2030-01-15 01:30", "Still thinking it over?",
                  f"Kate, the goods in your cart are still there: {_CART}c1"),
            sms("2030-01-16 09:00", f"Kate, your cart is waiting: {_CART}c1"),
            Happening("2030-01-17 09:00", "message", channel="whatsapp", status="delivered",
                      text=f"Kate, last call: your cart is still waiting {_CART}c1"),
            Happening("2030-01-18 09:00", "message", channel="voice", status="delivered",
                      text=_CALL.format(name="Kate")),
            Happening("2030-01-18 09:00", "task", assignee="manager", due="2030-01-18 13:00",
                      text="Call Kate about cart c1: no order after three days"),
            ended("2030-01-18 09:00"),
        ],
        "vlad": [
            email("2030-01-14 11:00", "Vlad, you left something behind",
                  f"Your cart is waiting: {_CART}c2"),
            email("2030-01-14 14:00", "Still thinking it over?",
                  f"Vlad, the goods in your cart are still there: {_CART}c2"),
            sms("2030-01-15 10:00", f"Vlad, your cart is waiting: {_CART}c2"),
            Happening("2030-01-16 10:00", "message", channel="whatsapp", status="suppressed",
                      text=""),
            sms("2030-01-16 10:00", f"Vlad, last call: your cart is still waiting {_CART}c2"),
            ended("2030-01-16 12:00", "exited", "exit_on order.placed"),
        ],
    })

_PAY = "https://pay.example/"

PAYMENT_LINK = Scenario(
    journey="payment-link", start="2030-03-01T00:00:00Z", until="2030-03-10T00:00:00Z",
    customers={
        "maria": _person("Maria", MOSCOW, "+79160000401"),
        "sam": _person("Sam", VLADIVOSTOK, "+79160000402", locale="en"),
    },
    events=[
        {"event_id": "await-o100", "type": "order.awaiting_payment", "customer_id": "maria",
         "occurred_at": "2030-03-01T09:00:00Z",
         "data": {"order_id": "o100", "total": 149050, "payment_url": _PAY + "o100"}},
        {"event_id": "await-o101", "type": "order.awaiting_payment", "customer_id": "maria",
         "occurred_at": "2030-03-01T10:00:00Z",
         "data": {"order_id": "o101", "total": 99000, "payment_url": _PAY + "o101"}},
        # Order o100 is paid; o101 of the same customer is not, and its run goes on.
        {"event_id": "paid-o100", "type": "order.paid", "customer_id": "maria",
         "occurred_at": "2030-03-01T13:00:00Z", "data": {"order_id": "o100"}},
        {"event_id": "await-o200", "type": "order.awaiting_payment", "customer_id": "sam",
         "occurred_at": "2030-03-01T22:00:00Z",
         "data": {"order_id": "o200", "total": 250000, "payment_url": _PAY + "o200"}},
    ],
    expected={
        "maria": [
            sms("2030-03-01 12:00", f"Order o100: pay 1 490.50 RUB here {_PAY}o100"),
            sms("2030-03-01 13:00", f"Order o101: pay 990.00 RUB here {_PAY}o101"),
            ended("2030-03-01 16:00", "exited", "exit_on order.paid"),
            sms("2030-03-02 13:00", f"Order o101 still awaits payment: {_PAY}o101"),
            ended("2030-03-04 13:00", "exited", "not paid within 3 days"),
        ],
        "sam": [
            sms("2030-03-02 08:00", f"Order o200: pay 2 500.00 RUB here {_PAY}o200"),
            sms("2030-03-03 08:00", f"Order o200 still awaits payment: {_PAY}o200"),
            ended("2030-03-05 08:00", "exited", "not paid within 3 days"),
        ],
    })


def _winback(name: str, at: str, burn: str, burn_day: str, reminder: str | None,
             end: Happening) -> list[Happening]:
    told = [accrue(at, 500, 500, burn),
            sms(at, f"{name}, we miss you! 500 bonuses are waiting for you until {burn_day}.")]
    if reminder is not None:
        told.append(sms(reminder, f"{name}, your 500 bonuses burn on {burn_day}. "
                                  "Come and spend them!"))
    return [*told, end]


WINBACK = Scenario(
    journey="winback", start="2030-01-01T00:00:00Z", until="2031-01-01T00:00:00Z",
    customers={
        "ida": _person("Ida", MOSCOW, "+79160000501"),
        "nik": _person("Nik", VLADIVOSTOK, "+79160000502"),
    },
    events=[
        {"event_id": "ida-1", "type": "order.placed", "customer_id": "ida",
         "occurred_at": "2030-01-10T09:00:00Z", "data": {}},
        {"event_id": "nik-1", "type": "order.placed", "customer_id": "nik",
         "occurred_at": "2030-02-01T00:00:00Z", "data": {}},
        # Nik buys three days into his first win-back: the run ends, no reminder; 90 days
        # after this purchase the next lapse starts a new run.
        {"event_id": "nik-2", "type": "order.placed", "customer_id": "nik",
         "occurred_at": "2030-05-05T02:00:00Z", "data": {}},
    ],
    expected={
        "ida": _winback("Ida", "2030-04-10 11:00", "2030-04-24 11:00", "24.04.2030",
                        "2030-04-21 11:00", ended("2030-04-24 11:00")),
        "nik": [*_winback("Nik", "2030-05-02 11:00", "2030-05-16 11:00", "16.05.2030", None,
                          ended("2030-05-05 12:00", "exited", "exit_on order.placed")),
                *_winback("Nik", "2030-08-03 11:00", "2030-08-17 11:00", "17.08.2030",
                          "2030-08-14 11:00", ended("2030-08-17 11:00"))],
    })

# RF: purchase histories put each customer one day (or one purchase) from a segment.
_RF_START = "2030-01-01T00:00:00Z"

RF_AT_RISK = Scenario(
    journey="rf-at-risk", start=_RF_START, until="2030-01-15T00:00:00Z",
    customers={"rita": _person("Rita", MOSCOW, "+79160000601")},
    # Five purchases, the last 30 days before the start: loyal, at risk from Jan 2.
    orders={"rita": ["2029-08-04T00:00:00Z", "2029-09-03T00:00:00Z", "2029-10-03T00:00:00Z",
                     "2029-11-02T00:00:00Z", "2029-12-02T00:00:00Z"]},
    expected={"rita": [
        accrue("2030-01-02 11:00", 300, 300, "2030-01-16 11:00"),
        sms("2030-01-02 11:00", "Rita, we have not seen you for a while: 300 bonuses are yours "
                                "until 16.01.2030."),
        ended("2030-01-02 11:00")]})

RF_DORMANT = Scenario(
    journey="rf-dormant", start=_RF_START, until="2030-01-15T00:00:00Z",
    customers={"dima": _person("Dima", VLADIVOSTOK, "+79160000602")},
    # Two purchases, the last 90 days before the start: wandering, dormant from Jan 2.
    orders={"dima": ["2029-08-01T00:00:00Z", "2029-10-03T00:00:00Z"]},
    expected={"dima": [
        email("2030-01-02 11:00", "Dima, it has been a while",
              "Come back this week: 15% off your next order with the code WAKEUP15."),
        ended("2030-01-02 11:00")]})

RF_LOST = Scenario(
    journey="rf-lost", start=_RF_START, until="2030-01-15T00:00:00Z",
    customers={"lena": _person("Lena", MOSCOW, "+79160000603")},
    # One purchase 90 days before the start: wandering, lost from Jan 2.
    orders={"lena": ["2029-10-03T00:00:00Z"]},
    expected={"lena": [
        sms("2030-01-02 11:00", "Lena, we would love to see you again: 20% off with the code "
                                "COMEBACK20 this month."),
        ended("2030-01-02 11:00")]})

RF_PROMISING = Scenario(
    journey="rf-promising", start=_RF_START, until="2030-01-15T00:00:00Z",
    customers={"pavel": _person("Pavel", VLADIVOSTOK, "+79160000604")},
    # New after one purchase; the second purchase (Jan 5, 14:00 local) makes him promising,
    # and the email waits for the next 11:00.
    orders={"pavel": ["2029-12-20T00:00:00Z"]},
    events=[{"event_id": "pavel-2", "type": "order.placed", "customer_id": "pavel",
             "occurred_at": "2030-01-05T04:00:00Z",
             "data": {"order_id": "pavel-2", "total": 250000}}],
    expected={"pavel": [
        email("2030-01-06 11:00", "Thank you, Pavel!",
              "Glad to see you again. Your next purchase earns double bonuses."),
        ended("2030-01-06 11:00")]})

SCENARIOS: dict[str, Scenario] = {s.journey: s for s in (
    BIRTHDAY_BONUS, CHILDREN_BIRTHDAYS, ABANDONED_CART, WINBACK, RF_AT_RISK, RF_DORMANT,
    RF_LOST, RF_PROMISING, PAYMENT_LINK)}

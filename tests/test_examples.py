"""What `make run` (tropa dev) loads from examples/: exactly the shipped journeys, every one
valid and published, and the coupon series they issue from; a restart changes nothing."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlmodel import select

from tropa.loyalty.coupons import SeriesSpec, get_series
from tropa.store.db import session_scope
from tropa.store.models import Journey
from tropa.worker.example_series import declare_example_series
from tropa.worker.stack import publish_examples

EXAMPLES = Path(__file__).parents[1] / "examples"
SHIPPED = ["abandoned-cart", "birthday-bonus", "children-birthdays", "payment-link",
           "rf-at-risk", "rf-dormant", "rf-lost", "rf-promising", "winback"]


def test_make_run_publishes_the_shipped_journeys_and_their_coupon_series(
        any_engine: sa.Engine) -> None:
    assert declare_example_series(any_engine, EXAMPLES) == ["child-birthday"]
    published = publish_examples(any_engine, EXAMPLES)

    assert sorted(p.split("@")[0] for p in published) == SHIPPED
    with session_scope(any_engine) as session:
        live = session.exec(select(Journey.name).where(Journey.status == "published"))
        assert sorted(live) == SHIPPED
        series = SeriesSpec.model_validate(get_series(session, "child-birthday"),
                                           from_attributes=True)
    assert (series.prefix, series.lifetime_seconds) == ("KID-", 11 * 86400)
    # A second start finds everything in place.
    assert declare_example_series(any_engine, EXAMPLES) == ["child-birthday"]
    assert publish_examples(any_engine, EXAMPLES) == []


def test_connect_to_belongs_to_voice_sends() -> None:
    from tropa.dsl.compiler import compile_journey
    from tropa.errors import JourneyInvalid

    text = ("journey: j\ntrigger: {event: x}\nsteps:\n"
            "  - send: {channel: sms, text: Hi, connect_to: '+74950000000'}\n")
    try:
        compile_journey(text, "j.yaml")
    except JourneyInvalid as exc:
        assert "j.yaml:4:" in str(exc) and "`connect_to` is for `channel: voice`" in str(exc)
    else:
        raise AssertionError("connect_to on an SMS was accepted")
    voice = text.replace("channel: sms", "channel: voice")
    assert compile_journey(voice, "j.yaml").journey == "j"

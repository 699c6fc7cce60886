"""`trigger: {schedule: ..., audience: ...}` in the journey language: a good one compiles to a
Plan, every mistake is refused at its line and column with the fix."""

from __future__ import annotations

import pytest

from tropa.dsl.compiler import compile_journey
from tropa.errors import JourneyInvalid

BASE = """journey: weekly
trigger:
  schedule: {cron: "0 10 * * MON", timezone: Europe/Moscow}
  audience:
    all:
      - segment: loyal
      - field: attributes.city
        eq: Moscow
steps:
  - send: {channel: sms, text: hi}
"""


def test_a_schedule_journey_compiles() -> None:
    plan = compile_journey(BASE)
    trigger = plan.trigger
    assert (trigger.kind, trigger.event) == ("schedule", "schedule.weekly")
    assert trigger.schedule is not None
    assert (trigger.schedule.cron, trigger.schedule.timezone) == ("0 10 * * MON", "Europe/Moscow")
    assert trigger.schedule.audience == {"all": [{"segment": "loyal"},
                                                 {"field": "attributes.city", "eq": "Moscow"}]}
    once = compile_journey(BASE.replace('{cron: "0 10 * * MON", timezone: Europe/Moscow}',
                                        "{at: 2026-12-01T10:00:00+03:00}")
                           .replace("  audience:\n    all:", "  audience:\n    any:"))
    assert once.trigger.schedule is not None and once.trigger.schedule.at is not None
    assert once.trigger.schedule.at.utcoffset() is not None
    saved = compile_journey(BASE.replace(BASE[BASE.index("  audience:"):BASE.index("steps:")],
                                         "  audience: {saved: loyal-moscow}\n"))
    assert saved.trigger.schedule is not None
    assert saved.trigger.schedule.audience == {"saved": "loyal-moscow"}


BAD = [
    ("bad cron", ('"0 10 * * MON"', '"0 10 * * FUNDAY"'), 3, 20, "is not a valid day of week"),
    ("bad zone", ("Europe/Moscow", "Europe/Atlantis"), 3, 46, "is not a time zone"),
    ("naive at", ('{cron: "0 10 * * MON", timezone: Europe/Moscow}', "{at: 2026-12-01T10:00:00}"),
     3, 18, "give the offset"),
    ("cron and at", ('timezone: Europe/Moscow}', 'at: 2026-12-01T10:00:00+03:00}'), 3, 13,
     "give one of `cron:`"),
    ("unknown audience field", ("field: attributes.city", "field: citty"), 7, 16,
     "unknown field `citty`"),
    ("unknown audience operator", ("eq: Moscow", "equal: Moscow"), 8, 9,
     "unknown operator `equal`"),
    ("key with a schedule", ("  audience:\n", "  key: x\n  audience:\n"), 3, 3,
     "`key:` goes with event"),
    ("no audience", ("  audience:\n    all:\n      - segment: loyal\n      - field: "
                     "attributes.city\n        eq: Moscow\n", ""), 3, 3, "a schedule needs "
     "`audience:`"),
]


@pytest.mark.parametrize(("what", "change", "line", "column", "words"), BAD,
                         ids=[b[0] for b in BAD])
def test_mistakes_name_line_and_column(what: str, change: tuple[str, str], line: int,
                                       column: int, words: str) -> None:
    with pytest.raises(JourneyInvalid) as caught:
        compile_journey(BASE.replace(*change))
    first = caught.value.problems[0]
    assert words in first.message, (what, first.render())
    assert (first.line, first.column) == (line, column), (what, first.render())

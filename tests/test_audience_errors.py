"""A bad audience filter is refused with every problem at its line and column, and the fix."""

from __future__ import annotations

import pytest

from tropa.audiences import parse_audience
from tropa.errors import AudienceInvalid, JourneyInvalid

BAD: list[tuple[str, str, int, int, str]] = [
    # (what, YAML, line, column, words in the message)
    ("unknown field", "all:\n  - field: attributes.city\n    eq: Moscow\n  - field: birthdy\n"
     "    month: 5\n", 4, 12, "unknown field `birthdy`"),
    ("unknown operator", "field: attributes.city\nequals: Moscow\n", 2, 1,
     "unknown operator `equals`"),
    ("operator of another kind", "field: phone\ngt: 5\n", 2, 1, "`gt` does not apply to `phone`"),
    ("unknown condition", "any:\n  - tag: vip\n  - segmnt: loyal\n", 3, 5,
     "unknown condition `segmnt`"),
    ("unknown segment", "segment: [loyal, champions]\n", 1, 18, "unknown segment `champions`"),
    ("bad duration", "last_purchase: {older_than: 90 days}\n", 1, 29, "is not a duration"),
    ("month out of range", "field: birthday\nmonth: 13\n", 2, 8, "`month` takes a number"),
    ("date part of a non-date", "field: attributes.city\nmonth: 5\n", 2, 1,
     "`month` does not apply to `attributes.city`"),
    ("two conditions in one mapping", "tag: vip\nsegment: loyal\n", 2, 1,
     "are two conditions in one mapping"),
    ("text compared with a number", "field: email\neq: 5\n", 2, 5, "holds text"),
    ("unknown purchases field", "purchases: {within: 30d, cnt: {gte: 2}}\n", 1, 26,
     "unknown field `cnt`"),
    ("nested saved", "all:\n  - saved: loyal\n", 2, 5, "cannot be nested"),
    ("YAML syntax", "all: [tag: vip\n", 2, 1, "YAML syntax error"),
]


@pytest.mark.parametrize(("what", "text", "line", "column", "words"), BAD,
                         ids=[b[0] for b in BAD])
def test_a_bad_filter_names_line_and_column(what: str, text: str, line: int, column: int,
                                            words: str) -> None:
    with pytest.raises(AudienceInvalid) as caught:
        parse_audience(text)
    first = caught.value.problems[0]
    assert words in first.message, what
    assert (first.line, first.column) == (line, column), first.render()
    assert "^" in first.render() or first.line_text is None


def test_every_problem_is_reported_with_a_hint() -> None:
    text = "all:\n  - field: attributes.city\n    eqq: Moscow\n  - segment: loyl\n"
    with pytest.raises(AudienceInvalid) as caught:
        parse_audience(text)
    problems = caught.value.problems
    assert [(p.line, p.column) for p in problems] == [(3, 5), (4, 14)]
    assert "did you mean `eq`?" in (problems[0].hint or "")
    assert "did you mean `loyal`?" in (problems[1].hint or "")
    assert isinstance(caught.value, JourneyInvalid)  # shown like a journey's problems


def test_a_mapping_gets_the_json_path() -> None:
    with pytest.raises(AudienceInvalid) as caught:
        parse_audience({"all": [{"tag": "vip"}, {"field": "attributes.city", "lt": "Moscow"}]})
    assert caught.value.problems[0].path == "all[1].lt"
    assert "compares numbers or dates" in caught.value.problems[0].message

"""Templates and conditions at run time: data they cannot handle is a content error."""

from __future__ import annotations

import pytest

from tropa.dsl.expressions import ExpressionError, evaluate, render


def test_rendering_with_filters() -> None:
    context = {"event": {"data": {"total": "1234.5", "at": "2026-12-31T10:00:00+03:00"}}}
    assert render("{{ event.data.total | money('RUB') }}", context) == "1 234.50 RUB"
    assert render("{{ event.data.at | date }}", context) == "31.12.2026"


@pytest.mark.parametrize("template", [
    "{{ event.data.total | money('RUB') }}",
    "{{ event.data.total | date }}",
    "{{ event.data.total + 1 }}",
    "{{ customer.missing }}",
    "{{ ''.__class__.__mro__ }}",
])
def test_bad_data_is_an_expression_error(template: str) -> None:
    with pytest.raises(ExpressionError):
        render(template, {"event": {"data": {"total": "12,50"}}, "customer": {}})


def test_conditions() -> None:
    context = {"event": {"data": {"total": 150}}}
    assert evaluate("event.data.total > 100", context) is True
    assert evaluate("event.data.missing > 100", context) is False
    with pytest.raises(ExpressionError):
        evaluate("event.data.total > 100", {"event": {"data": {"total": "abc"}}})

"""The RF configuration: the shipped grid places customers as documented; bad files name places."""

from __future__ import annotations

import pytest

from tropa.segments.config import SEGMENTS, RfConfigInvalid, load_default, parse


@pytest.mark.parametrize(("days", "purchases", "segment"), [
    (0, 1, "new"), (30, 1, "new"), (31, 1, "wandering"), (90, 1, "wandering"), (91, 1, "lost"),
    (5, 2, "promising"), (5, 4, "promising"), (5, 5, "loyal"), (60, 3, "wandering"),
    (60, 7, "at_risk"), (200, 3, "dormant"), (200, 9, "at_risk"),
    # Every purchase before the window: the lowest frequency band.
    (500, 0, "lost"),
])
def test_default_grid_places_customers(days: int, purchases: int, segment: str) -> None:
    assert load_default().segment(days, purchases) == segment


def test_default_grid_uses_all_seven_segments_and_never_bought_has_none() -> None:
    config = load_default()
    assert set(config.grid.values()) == set(SEGMENTS)
    assert config.segment(None, 0) is None
    assert config.recency_bounds() == [31, 91]


BASE = """window_days: 365
recency:
  - {band: recent, max_days: 30}
  - {band: long_ago}
frequency:
  - {band: once, max_purchases: 1}
  - {band: often}
"""


@pytest.mark.parametrize(("grid", "where", "message"), [
    ("grid:\n  recent: {once: new, often: lovely}\n  long_ago: {once: lost, often: at_risk}\n",
     "rf.yaml:9:30", "`lovely` is not a segment"),
    ("grid:\n  recent: {once: new, often: loyal}\n  long_ago: {once: lost}\n",
     "rf.yaml:10:13", "cell (long_ago, often) has no segment"),
    ("grid:\n  recent: {once: new, often: loyal}\n  long_ago: {once: lost, often: at_risk}\n"
     "  someday: {once: lost}\n", "rf.yaml:11:3", "`someday` is not a recency band"),
])
def test_bad_grid_is_refused_with_line_and_column(grid: str, where: str, message: str) -> None:
    with pytest.raises(RfConfigInvalid) as caught:
        parse(BASE + grid, source="rf.yaml")
    rendered = str(caught.value)
    assert f"{where}: error: {message}" in rendered, rendered
    assert "hint:" in rendered


def test_bands_must_rise_and_end_open() -> None:
    text = BASE.replace("max_days: 30}\n  - {band: long_ago}",
                        "max_days: 30}\n  - {band: long_ago, max_days: 10}")
    with pytest.raises(RfConfigInvalid) as caught:
        parse(text + "grid: {}\n", source="rf.yaml")
    assert "rf.yaml:4:32: error: the last recency band is open-ended" in str(caught.value)

"""Reporting ranges (analytics.ranges): pure logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.ranges import range_parse
from config.errors import ApplicationError

NOW = datetime(2026, 11, 20, 14, 20, 5, tzinfo=UTC)


def test_a_preset_starts_on_the_hour_and_its_previous_period_is_as_long() -> None:
    report = range_parse(preset="7d", now=NOW)
    assert report.start == datetime(2026, 11, 13, 14, tzinfo=UTC) and report.end == NOW
    assert report.previous.start == datetime(2026, 11, 6, 14, tzinfo=UTC)
    assert report.previous.end == report.start
    assert report.daily and not range_parse(preset="24h", now=NOW).daily


def test_custom_dates_are_whole_days_in_the_time_zone() -> None:
    report = range_parse(start="2026-03-28", end="2026-03-29", tz="Europe/Paris", now=NOW)
    # Paris moves to summer time on 29 March: the two days are 47 hours long.
    assert report.start == datetime(2026, 3, 27, 23, tzinfo=UTC)
    assert report.end == datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert report.end - report.start == timedelta(hours=47)
    assert report.previous.end == report.start


@pytest.mark.parametrize(
    "kwargs",
    [
        {"preset": "1y"},
        {"start": "2026-01-02"},
        {"start": "2026-01-02", "end": "2026-01-01"},
        {"start": "2026-01-02", "end": "soon"},
        {"preset": "7d", "tz": "Nowhere/Special"},
    ],
)
def test_bad_ranges_are_refused(kwargs: dict[str, str]) -> None:
    with pytest.raises(ApplicationError) as refused:
        range_parse(now=NOW, **kwargs)
    assert refused.value.code == "validation_error"

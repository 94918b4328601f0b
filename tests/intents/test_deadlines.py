"""Deadlines as people type them: clock times roll to their next occurrence in the configured
zone (DST included), dates mean the start of the day, vague or past ones are refused clearly."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grace_pipelines.intents.deadlines import DeadlineError, parse_deadline

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # Tuesday 11:00 in Berlin


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ("09:00", datetime(2026, 11, 25, 9, 0)),  # 09:00 has passed today: tomorrow's
        ("13:00", datetime(2026, 11, 24, 13, 0)),
        ("by 9am", datetime(2026, 11, 25, 9, 0)),
        ("5:30 pm", datetime(2026, 11, 24, 17, 30)),
        ("noon", datetime(2026, 11, 24, 12, 0)),
        ("tomorrow 9am", datetime(2026, 11, 25, 9, 0)),
        ("tomorrow", datetime(2026, 11, 25, 0, 0)),
        ("Monday", datetime(2026, 11, 30, 0, 0)),
        ("friday at 17:00", datetime(2026, 11, 27, 17, 0)),
        ("2026-12-01", datetime(2026, 12, 1, 0, 0)),
        ("2026-12-01T17:00", datetime(2026, 12, 1, 17, 0)),
        ("2026-12-01T10:00Z", datetime(2026, 12, 1, 11, 0)),
        ("2027-07-01 09:00", datetime(2027, 7, 1, 9, 0)),  # summer time: 07:00 UTC
        ("in 2 hours", datetime(2026, 11, 24, 13, 0)),
        ("in 3 days", datetime(2026, 11, 27, 11, 0)),
    ],
)
def test_deadlines_people_type(text: str, local: datetime) -> None:
    parsed = parse_deadline(text, NOW, BERLIN)
    assert parsed.tzinfo == UTC
    assert parsed == local.replace(tzinfo=BERLIN).astimezone(UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2020-01-01", "not in the future"),
        ("today", "not in the future"),
        ("10", "bare number"),
        ("soon", "cannot read"),
        ("next week", "whole week"),
        ("25:00", "not a time of day"),
        ("13pm", "1-12"),
        ("2026-13-01", "not a valid ISO"),
        ("", "empty"),
    ],
)
def test_unreadable_vague_or_past_deadlines_are_refused(text: str, message: str) -> None:
    with pytest.raises(DeadlineError, match=message) as caught:
        parse_deadline(text, NOW, BERLIN)
    assert text in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(
    minutes=st.integers(min_value=0, max_value=2 * 365 * 24 * 60),
    hour=st.integers(min_value=0, max_value=23),
    minute=st.integers(min_value=0, max_value=59),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"]),
)
def test_a_clock_time_is_its_next_occurrence(minutes: int, hour: int, minute: int, zone: str) -> None:
    tz = ZoneInfo(zone)
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes, seconds=17)
    parsed = parse_deadline(f"{hour:02d}:{minute:02d}", now, tz)
    assert now < parsed <= now + timedelta(hours=25), "the next one, within a day (25 h across a DST change)"
    local = parsed.astimezone(tz)
    if local.time() != time(hour, minute):  # only a wall time a DST change skipped may move, by its gap
        assert abs((local.hour * 60 + local.minute) - (hour * 60 + minute)) == 60
    earlier = parsed - timedelta(days=1)
    assert earlier.astimezone(tz).time() != time(hour, minute) or earlier <= now, "no earlier occurrence was skipped"


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_deadline("09:00", datetime(2026, 1, 1), BERLIN)

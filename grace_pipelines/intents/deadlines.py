"""Deadlines as people type them, read strictly in the configured time zone.

- a clock time ("09:00", "9am", "5:30 pm", "noon", "midnight"): its next occurrence after now
  (09:00 typed at 10:00 is tomorrow's);
- an ISO date or date-time ("2026-12-01", "2026-12-01T17:00", "...+01:00" or "...Z"): a date
  alone is the start of that day, a naive time is local;
- anything else through dateparser (a well-kept library: "tomorrow 9am", "Monday",
  "friday 17:00", "dec 3 14:30", "in 2 hours"), preferring the future. A day without a time
  means the start of that day ("by Monday" = ready when Monday begins); a relative duration
  keeps the clock ("in 3 days").

Rejected with a message that says why: nothing readable, a bare number ("10": hour, day or
month?), a vague period ("next week"), and a deadline that is not in the future.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from grace_pipelines.errors import GraceError

UTC = timezone.utc
EXAMPLES = "e.g. 09:00, 'tomorrow 9am', monday, 2026-12-01T17:00"
_CLOCK = re.compile(r"^(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?$", re.IGNORECASE)
_NAMED = {"noon": time(12, 0), "midday": time(12, 0), "midnight": time(0, 0)}
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ].*)?$")
_RELATIVE = re.compile(r"\b(in|from now|later|hence)\b", re.IGNORECASE)


class DeadlineError(GraceError):
    """A deadline that cannot be read or is not in the future (a user error)."""


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """`at` on `day` in `tz`, as UTC (a wall time skipped by a DST change lands just after it)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _clock(text: str) -> time | None:
    if text.lower() in _NAMED:
        return _NAMED[text.lower()]
    match = _CLOCK.match(text)
    if match is None or (match["m"] is None and match["ampm"] is None):
        return None  # "10" alone is not a clock time
    hour, minute = int(match["h"]), int(match["m"] or 0)
    if match["ampm"]:
        if not 1 <= hour <= 12:
            raise DeadlineError(f"deadline {text!r}: with am/pm the hour is 1-12")
        hour = hour % 12 + (12 if match["ampm"].lower().startswith("p") else 0)
    if hour > 23 or minute > 59:
        raise DeadlineError(f"deadline {text!r} is not a time of day ({EXAMPLES})")
    return time(hour, minute)


def next_clock_time(at: time, now: datetime, tz: ZoneInfo) -> datetime:
    """The first `at` (local wall time) strictly after `now`."""
    today = now.astimezone(tz).date()
    for offset in range(3):
        candidate = _local(today + timedelta(days=offset), at, tz)
        if candidate > now:
            return candidate
    raise AssertionError("unreachable: a wall time recurs within two days")


def _iso(text: str, tz: ZoneInfo) -> datetime:
    raw = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        if len(raw) == 10:
            return _local(date.fromisoformat(raw), time(0, 0), tz)
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise DeadlineError(f"deadline {text!r} is not a valid ISO date or date-time ({EXAMPLES})") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _natural(text: str, now: datetime, tz: ZoneInfo) -> datetime:
    from dateparser.date import DateDataParser

    settings = {
        "TIMEZONE": tz.key,
        "RETURN_AS_TIMEZONE_AWARE": True,
        "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": now.astimezone(tz).replace(tzinfo=None),
        "RETURN_TIME_AS_PERIOD": True,
    }
    data = DateDataParser(languages=["en"], settings=settings).get_date_data(text)
    if data is None or data.date_obj is None:
        raise DeadlineError(f"cannot read the deadline {text!r} ({EXAMPLES})")
    if data.period not in ("time", "day"):
        raise DeadlineError(f"deadline {text!r} names a whole {data.period}; say a day or a time ({EXAMPLES})")
    parsed = data.date_obj
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    if data.period == "day" and not _RELATIVE.search(text):
        return _local(parsed.astimezone(tz).date(), time(0, 0), tz)  # "by Monday": when Monday begins
    return parsed.astimezone(UTC)


def parse_deadline(text: str, now: datetime, tz: ZoneInfo) -> datetime:
    """The deadline `text` names, as timezone-aware UTC, strictly after `now` (aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cleaned = " ".join(text.split())
    if cleaned.lower().startswith("by "):
        cleaned = cleaned[3:].strip()
    if not cleaned:
        raise DeadlineError(f"the deadline is empty ({EXAMPLES})")
    at = _clock(cleaned)
    if at is not None:
        return next_clock_time(at, now, tz)
    if cleaned.isdigit():
        raise DeadlineError(f"deadline {text!r} is a bare number (an hour? a day?); write it out ({EXAMPLES})")
    value = _iso(cleaned, tz) if _ISO.match(cleaned) else _natural(cleaned, now, tz)
    if value <= now:
        shown = value.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        raise DeadlineError(f"deadline {text!r} is {shown}, which is not in the future; give a later time")
    return value

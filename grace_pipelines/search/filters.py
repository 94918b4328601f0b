"""The filters people put on a search or a question: since / until, origin, kind, source.

`since` and `until` are what people type: ISO dates and date-times ("2026-11-30",
"2026-11-30T09:15", "...Z"), short dates ("30 Nov"), and relative ones ("yesterday", "today",
"last week", "6 hours ago"), read in the configured time zone and preferring the past. A day
(or week, month) stands for the whole local day it names: as `since` its start, as `until` its
end ("yesterday" as `until` is midnight between yesterday and today, 23 or 25 hours after its
start on a DST change). A relative duration under a day ("6 hours ago") is elapsed time, exact.
The window is half-open: since <= t < until, in UTC.

`when` picks the time that is filtered: "recorded" (the container's creation-time tag, else the
file's mtime at drop; a source registered before that column existed counts as recorded when it
was dropped) or "dropped" (when the inbox registered it).

The filters resolve to the set of source keys they allow (`allowed_keys`, one query on the
state database); retrieval restricts the LanceDB query to those keys, so k results stay k. The
same `parse_filters` serves the Python API, the CLI and the HTTP API; an unreadable value is a
`FilterError` naming the parameter and what was typed. No Dagster here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from grace_pipelines.errors import GraceError

if TYPE_CHECKING:
    from grace_pipelines.db.state import StateDB

UTC = timezone.utc
WHENS = ("recorded", "dropped")
KINDS = ("audio", "video", "document")
EXAMPLES = "e.g. 2026-11-30, 2026-11-30T09:15, '30 Nov', yesterday, today, 'last week', '6 hours ago'"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ].*)?$")
_AGO = re.compile(
    r"^(?:(?P<n>an?|\d+(?:\.\d+)?)\s*(?P<unit>seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\s+ago"
    r"|(?:last|past)\s+(?P<n2>\d+(?:\.\d+)?)\s*(?P<unit2>seconds?|secs?|minutes?|mins?|hours?|hrs?))$",
    re.IGNORECASE,
)
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


class FilterError(GraceError, ValueError):
    """A filter value that cannot be read (or a window that ends before it starts); the message
    names the parameter and what was typed. The CLI exits 1 with it, the HTTP API answers 422."""


@dataclass(frozen=True)
class SearchFilters:
    """What a search is restricted to; every field None means no restriction."""

    since: datetime | None = None  # UTC, inclusive
    until: datetime | None = None  # UTC, exclusive
    origin: str | None = None  # voice_note | meeting | document | screen | api | manual | schedule
    kind: str | None = None  # audio | video | document
    source: str | None = None  # a source ref as `grace status` takes it (key, key prefix, file name)
    when: Literal["recorded", "dropped"] = "recorded"  # which time since/until filter
    speaker: str | None = None  # a voice profile's name: only what that person said

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.since, self.until, self.origin, self.kind, self.source, self.speaker))

    def to_dict(self) -> dict[str, Any]:
        """The JSON echo of the filters applied (ISO 8601 UTC times, `Z`)."""

        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")

        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "origin": self.origin,
            "kind": self.kind,
            "source": self.source,
            "when": self.when,
            "speaker": self.speaker,
        }


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    """Local midnight of `day` in UTC (fold 0: the first of two, or just after a skipped one)."""
    return datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)


def _bound(day: date, tz: ZoneInfo, edge: str) -> datetime:
    return _day_start(day if edge == "since" else day + timedelta(days=1), tz)


def _iso(name: str, text: str, tz: ZoneInfo, edge: str) -> datetime:
    raw = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        if len(raw) == 10:
            return _bound(date.fromisoformat(raw), tz, edge)
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise FilterError(f"{name}: {text!r} is not a valid ISO date or date-time ({EXAMPLES})") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _ago(match: re.Match[str], now: datetime) -> datetime:
    n_text = (match["n"] or match["n2"]).lower()
    unit = (match["unit"] or match["unit2"]).lower()
    n = 1.0 if n_text in ("a", "an") else float(n_text)
    return now.astimezone(UTC) - timedelta(seconds=n * _UNIT_S[unit[0]])


def _natural(name: str, text: str, now: datetime, tz: ZoneInfo, edge: str) -> datetime:
    """dateparser, on the local wall clock (its own zone arithmetic shifts relative dates across a
    DST change by the difference): a naive result, then localised here."""
    from dateparser.date import DateDataParser

    settings = {
        "PREFER_DATES_FROM": "past",
        "RELATIVE_BASE": now.astimezone(tz).replace(tzinfo=None),
        "RETURN_TIME_AS_PERIOD": True,
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    data = DateDataParser(languages=["en"], settings=settings).get_date_data(text)
    if data is None or data.date_obj is None:
        raise FilterError(f"{name}: cannot read {text!r} as a date or time ({EXAMPLES})")
    parsed: datetime = data.date_obj
    if parsed.tzinfo is not None:  # an explicit zone in the text ("9:00 CET")
        if data.period == "time":
            return parsed.astimezone(UTC)
        parsed = parsed.astimezone(tz).replace(tzinfo=None)
    if data.period == "time":
        return parsed.replace(tzinfo=tz).astimezone(UTC)
    return _bound(parsed.date(), tz, edge)  # day, week, month, year: the whole local day it names


def parse_when(name: str, value: str | datetime | date | None, *, now: datetime, tz: ZoneInfo) -> datetime | None:
    """One bound (`name` is "since" or "until") as UTC, or None when not given."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
    if isinstance(value, date):
        return _bound(value, tz, name)
    cleaned = " ".join(str(value).split())
    if not cleaned:
        return None
    lower = cleaned.lower()
    if lower == "now":
        return now.astimezone(UTC)
    if cleaned.isdigit():
        raise FilterError(f"{name}: {value!r} is a bare number (a day? a year?); write the date out ({EXAMPLES})")
    if _ISO.match(cleaned):
        return _iso(name, cleaned, tz, name)
    match = _AGO.match(cleaned)
    if match:
        return _ago(match, now)
    return _natural(name, cleaned, now, tz, name)


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None or not str(value).strip():
        return None
    cleaned = str(value).strip().lower()
    if cleaned not in allowed:
        raise FilterError(f"{name}: unknown {name} {value!r}; use one of: {', '.join(allowed)}")
    return cleaned


def parse_filters(
    since: str | datetime | date | None = None,
    until: str | datetime | date | None = None,
    origin: str | None = None,
    kind: str | None = None,
    source: str | None = None,
    when: str = "recorded",
    speaker: str | None = None,
    *,
    now: datetime,
    tz: ZoneInfo | str,
) -> SearchFilters:
    """The filters as typed, read and checked: see the module docstring. `now` must be aware;
    `tz` is the settings' time zone (`settings.tz`)."""
    from grace_pipelines.ingest.inbox import ORIGINS

    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    start = parse_when("since", since, now=now, tz=zone)
    end = parse_when("until", until, now=now, tz=zone)
    if start is not None and end is not None and start >= end:
        shown = f"{start.astimezone(zone):%Y-%m-%d %H:%M %Z} >= {end.astimezone(zone):%Y-%m-%d %H:%M %Z}"
        raise FilterError(f"since {since!r} is not before until {until!r} ({shown}); the window is empty")
    if (when or "recorded").strip().lower() not in WHENS:  # `--by` on the command line
        raise FilterError(f"by: unknown {when!r}; use one of: {', '.join(WHENS)}")
    by = (when or "recorded").strip().lower()
    ref = str(source).strip() if source is not None and str(source).strip() else None
    return SearchFilters(
        since=start,
        until=end,
        origin=_choice("origin", origin, ORIGINS),
        kind=_choice("kind", kind, KINDS),
        source=ref,
        when=by,  # type: ignore[arg-type]
        speaker=" ".join(str(speaker).split()) or None if speaker is not None else None,
    )


def speaker_labels(db: StateDB, filters: SearchFilters) -> dict[str, set[str]] | None:
    """source key -> the speaker labels there that are `filters.speaker` (None: no speaker
    filter). An unknown name is a FilterError naming the known ones."""
    if filters.speaker is None:
        return None
    profile = db.profile_named(filters.speaker)
    if profile is None:
        known = ", ".join(p["name"] for p in db.profiles()) or "none yet; name one with `grace speakers name`"
        raise FilterError(f"speaker: no voice named {filters.speaker!r} (known: {known})")
    return db.sources_spoken_by([profile["id"]])


def allowed_keys(db: StateDB, filters: SearchFilters, spoken: dict[str, set[str]] | None = None) -> set[str] | None:
    """The source keys `filters` allow, from one query on the state database; None when the
    filters restrict nothing. An empty set: no source matches (the search answers [] at once)."""
    import sqlalchemy as sa

    from grace_pipelines.db.schema import sources_table

    if filters.empty:
        return None
    c = sources_table.c
    query = sa.select(c.key)
    spoken = spoken if spoken is not None else speaker_labels(db, filters)  # a caller may have it already
    if spoken is not None:
        if not spoken:
            return set()
        query = query.where(c.key.in_(sorted(spoken)))
    if filters.source is not None:
        row = db.find_source(filters.source)
        if row is None:
            return set()
        query = query.where(c.key == row.key)
    if filters.origin is not None:
        query = query.where(c.origin == filters.origin)
    if filters.kind is not None:
        query = query.where(c.kind == filters.kind)
    moment = c.dropped_at if filters.when == "dropped" else sa.func.coalesce(c.recorded_at, c.dropped_at)
    if filters.since is not None:
        query = query.where(moment >= filters.since)
    if filters.until is not None:
        query = query.where(moment < filters.until)
    with db.begin() as conn:
        return {row.key for row in conn.execute(query)}


def all_source_keys(db: StateDB) -> set[str]:
    """Every registered source's key (what a prefilter's complement is taken against)."""
    import sqlalchemy as sa

    from grace_pipelines.db.schema import sources_table

    with db.begin() as conn:
        return {row.key for row in conn.execute(sa.select(sources_table.c.key))}

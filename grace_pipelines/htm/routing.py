"""Routing: run now (with a priority), batch (tiny work) or defer to off-peak (heavy work).

`route` is a pure function of the origin, size class, the queue, the clock and the SLA: heavy
work waits for the off-peak window unless waiting would miss its deadline; a source at the
`violated` tier (or worse) runs now whatever its class. Priorities feed Dagster's run queue
(`dagster/priority`: higher starts sooner).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

# What a person waits on comes first; bulk imports last.
ORIGIN_PRIORITY = {
    "voice_note": 20,
    "meeting": 10,
    "api": 10,
    "manual": 10,
    "screen": 5,
    "document": 0,
    "schedule": -10,
}
WARNING_BOOST = 30
URGENT_PRIORITY = 100


def base_priority(origin: str) -> int:
    return ORIGIN_PRIORITY.get(origin, 0)


@dataclass(frozen=True)
class OffPeak:
    """A daily local-time window, e.g. 01:00-06:00 (may wrap past midnight)."""

    start: time
    end: time
    tz: ZoneInfo

    def contains(self, now: datetime) -> bool:
        local = now.astimezone(self.tz).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_start(self, now: datetime) -> datetime:
        """The window's next opening at or after `now` (now itself when inside the window)."""
        if self.contains(now):
            return now
        local = now.astimezone(self.tz)
        candidate = local.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        if candidate <= local:
            candidate += timedelta(days=1)
        return candidate.astimezone(now.tzinfo)


@dataclass(frozen=True)
class Route:
    action: str  # run | batch | defer
    priority: int
    reason: str


def route(
    *,
    origin: str,
    size_class: str,
    now: datetime,
    due: datetime,
    offpeak: OffPeak,
    expected_s: float,
    sla_tier: str | None = None,
    running_heavy: int = 0,
    max_heavy_outside_offpeak: int = 1,
) -> Route:
    """Decide what to do with one pending source.

    - violated/critical SLA: run now at the top priority, deferred or not;
    - heavy: run inside the off-peak window; outside it, defer unless the window opens too
      late to finish by the deadline (`expected_s` is the estimated processing time), and then
      run now only if fewer than `max_heavy_outside_offpeak` heavy runs are going (queue state);
    - tiny: batch with other tiny work;
    - normal: run now at the origin's priority (raised at the warning tier).
    """
    priority = base_priority(origin) + (WARNING_BOOST if sla_tier == "warning" else 0)
    if sla_tier in ("violated", "critical"):
        return Route("run", URGENT_PRIORITY, f"SLA {sla_tier}: launched now")
    if size_class == "heavy":
        if offpeak.contains(now):
            return Route("run", priority, "heavy work inside the off-peak window")
        opens = offpeak.next_start(now)
        if opens + timedelta(seconds=expected_s) > due:
            if running_heavy < max_heavy_outside_offpeak:
                return Route("run", priority, "heavy, but off-peak opens too late for its SLA: launched now")
            return Route("defer", priority, "heavy; off-peak opens too late for its SLA but another heavy run is going")
        return Route(
            "defer", priority, f"heavy work deferred to the off-peak window ({opens.astimezone(offpeak.tz):%H:%M})"
        )
    if size_class == "tiny":
        return Route("batch", priority, "tiny work is batched")
    return Route("run", priority, "normal work runs now")


def should_flush(
    waiting: int, oldest_wait_s: float, *, batch_size: int, max_wait_s: float, urgent: bool = False, idle: bool = False
) -> bool:
    """Launch the tiny batch now? When nothing of its kind is in flight (an idle queue gains
    nothing by waiting: a lone voice note starts at once), when it is full, when its oldest item
    has waited `max_wait_s`, or when an item in it is at risk of its SLA. While a batch is in
    flight, newcomers gather into the next one."""
    return waiting > 0 and (idle or urgent or waiting >= batch_size or oldest_wait_s >= max_wait_s)

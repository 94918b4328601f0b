"""SLAs from drop to searchable, per (origin, size class), and the tier a source has reached.

A target is a duration (`minutes`) or a local clock time (`by`, e.g. heavy work "by 08:00":
the first 08:00 at least `min_lead_h` hours after the drop, i.e. the next morning). Tiers
escalate on elapsed / allowed: warning at 75 %, violated at 100 %, critical at 150 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

TIERS: tuple[tuple[str, float], ...] = (("warning", 0.75), ("violated", 1.0), ("critical", 1.5))


class SlaTarget(BaseModel):
    """One SLA rule; `*` matches any origin or size class (the most specific rule wins)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    origin: str = "*"
    size_class: str = "*"
    minutes: float | None = Field(None, gt=0)
    by: time | None = None  # local clock time in the configured time zone
    min_lead_h: float = Field(4.0, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> SlaTarget:
        if (self.minutes is None) == (self.by is None):
            raise ValueError("an SLA target needs exactly one of `minutes` or `by`")
        return self

    def label(self) -> str:
        return f"{self.minutes:g} min" if self.minutes is not None else f"by {self.by:%H:%M}"


def default_targets() -> list[SlaTarget]:
    return [
        SlaTarget(origin="voice_note", size_class="tiny", minutes=2),
        SlaTarget(origin="voice_note", size_class="normal", minutes=15),
        SlaTarget(origin="meeting", size_class="normal", minutes=30),
        SlaTarget(origin="document", size_class="tiny", minutes=5),
        SlaTarget(origin="document", size_class="normal", minutes=30),
        SlaTarget(size_class="tiny", minutes=5),
        SlaTarget(size_class="normal", minutes=60),
        SlaTarget(size_class="heavy", by=time(8, 0)),
    ]


def target_for(targets: Sequence[SlaTarget], origin: str, size_class: str) -> SlaTarget:
    """The most specific matching target (origin and size > size only > origin only > any)."""

    def specificity(t: SlaTarget) -> int:
        return (2 if t.size_class != "*" else 0) + (1 if t.origin != "*" else 0)

    matches = [t for t in targets if t.origin in ("*", origin) and t.size_class in ("*", size_class)]
    if not matches:
        raise ValueError(f"no SLA target covers origin {origin!r}, size class {size_class!r}")
    return max(matches, key=specificity)


def deadline(target: SlaTarget, dropped_at: datetime, tz: ZoneInfo) -> datetime:
    """When the source must be searchable (timezone-aware UTC in, the same zone out)."""
    if dropped_at.tzinfo is None:
        raise ValueError("dropped_at must be timezone-aware")
    if target.minutes is not None:
        return dropped_at + timedelta(minutes=target.minutes)
    assert target.by is not None
    earliest = (dropped_at + timedelta(hours=target.min_lead_h)).astimezone(tz)
    candidate = earliest.replace(hour=target.by.hour, minute=target.by.minute, second=0, microsecond=0)
    if candidate < earliest:
        candidate = candidate + timedelta(days=1)
    return candidate.astimezone(dropped_at.tzinfo)


def tier(dropped_at: datetime, due: datetime, now: datetime) -> str | None:
    """The highest tier reached at `now`: None, warning, violated or critical."""
    allowed = (due - dropped_at).total_seconds()
    if allowed <= 0:
        return "critical"
    ratio = (now - dropped_at).total_seconds() / allowed
    reached = None
    for name, threshold in TIERS:
        if ratio >= threshold:
            reached = name
    return reached


def tiers_up_to(name: str | None) -> list[str]:
    """The tiers at or below `name`, in order (each fires once, lower ones first)."""
    names = [n for n, _ in TIERS]
    return [] if name is None else names[: names.index(name) + 1]

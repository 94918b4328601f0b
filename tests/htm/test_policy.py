"""HTM policy, table-driven with an injected clock: sizing, SLA deadlines and tiers, routing."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from grace_pipelines.htm import (
    OffPeak,
    SizeThresholds,
    SlaTarget,
    deadline,
    default_targets,
    route,
    should_flush,
    size_class,
    target_for,
    tier,
)
from grace_pipelines.htm.sla import tiers_up_to

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
MB = 1024**2


@pytest.mark.parametrize(
    ("kind", "size", "seconds", "expected"),
    [
        ("audio", 200_000, 10.0, "tiny"),
        ("audio", 200_000, 29.9, "tiny"),
        ("audio", 400_000, 30.0, "normal"),
        ("audio", 9 * MB, 20 * 60.0, "normal"),
        ("audio", 9 * MB, 20 * 60.0 + 1, "heavy"),
        ("video", 150 * MB, 3 * 3600.0, "heavy"),
        ("video", 201 * MB, 10.0, "heavy"),  # bytes alone make it heavy
        ("audio", 1_000, None, "normal"),  # unknown length: not batched, not deferred
        ("document", 19_999, None, "tiny"),
        ("document", 20_000, None, "normal"),
        ("document", 250 * MB, None, "heavy"),
    ],
)
def test_size_class(kind: str, size: int, seconds: float | None, expected: str) -> None:
    assert size_class(kind, size, seconds) == expected


def test_size_thresholds_are_configurable() -> None:
    strict = SizeThresholds(tiny_audio_s=5, heavy_audio_s=60, tiny_text_bytes=100, heavy_bytes=MB)
    assert size_class("audio", 1000, 10, strict) == "normal" and size_class("audio", 1000, 61, strict) == "heavy"
    assert size_class("document", 2 * MB, None, strict) == "heavy"


@pytest.mark.parametrize(
    ("origin", "size", "label"),
    [
        ("voice_note", "tiny", "2 min"),
        ("voice_note", "normal", "15 min"),
        ("meeting", "normal", "30 min"),
        ("meeting", "tiny", "5 min"),  # falls back to any-origin tiny
        ("api", "normal", "60 min"),
        ("voice_note", "heavy", "by 08:00"),
    ],
)
def test_target_for_picks_the_most_specific_rule(origin: str, size: str, label: str) -> None:
    assert target_for(default_targets(), origin, size).label() == label


def test_target_validation_and_coverage() -> None:
    with pytest.raises(ValidationError, match="exactly one of"):
        SlaTarget(minutes=5, by=time(8))
    with pytest.raises(ValidationError, match="exactly one of"):
        SlaTarget()
    with pytest.raises(ValueError, match="no SLA target covers"):
        target_for([SlaTarget(origin="meeting", minutes=1)], "voice_note", "tiny")


@pytest.mark.parametrize(
    ("dropped", "expected"),
    [
        (
            datetime(2026, 11, 24, 11, 0, tzinfo=UTC),
            datetime(2026, 11, 25, 7, 0, tzinfo=UTC),
        ),  # noon Berlin -> 08:00 next day
        (
            datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
            datetime(2026, 11, 24, 7, 0, tzinfo=UTC),
        ),  # 02:00 Berlin -> 08:00 same day
        (
            datetime(2026, 11, 24, 4, 30, tzinfo=UTC),
            datetime(2026, 11, 25, 7, 0, tzinfo=UTC),
        ),  # 05:30: less than 4 h lead
        (datetime(2026, 7, 1, 10, 0, tzinfo=UTC), datetime(2026, 7, 2, 6, 0, tzinfo=UTC)),  # summer time: 08:00 CEST
    ],
)
def test_deadline_by_a_local_clock_time(dropped: datetime, expected: datetime) -> None:
    assert deadline(SlaTarget(size_class="heavy", by=time(8)), dropped, BERLIN) == expected


def test_deadline_in_minutes_and_naive_times_refused() -> None:
    t0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert deadline(SlaTarget(minutes=2), t0, BERLIN) == t0 + timedelta(minutes=2)
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline(SlaTarget(minutes=2), datetime(2026, 11, 24, 12, 0), BERLIN)


@pytest.mark.parametrize(
    ("elapsed_s", "expected"),
    [
        (0, None),
        (89, None),
        (90, "warning"),
        (119, "warning"),
        (120, "violated"),
        (179, "violated"),
        (180, "critical"),
        (10_000, "critical"),
    ],
)
def test_tier_at_75_100_150_percent(elapsed_s: int, expected: str | None) -> None:
    t0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert tier(t0, t0 + timedelta(seconds=120), t0 + timedelta(seconds=elapsed_s)) == expected


def test_tiers_fire_in_order_once_each() -> None:
    assert tiers_up_to(None) == [] and tiers_up_to("warning") == ["warning"]
    assert tiers_up_to("critical") == ["warning", "violated", "critical"]


OFFPEAK = OffPeak(time(1), time(6), BERLIN)
NOON = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
NIGHT = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)  # 02:30 in Berlin


def test_offpeak_window() -> None:
    assert OFFPEAK.contains(NIGHT) and not OFFPEAK.contains(NOON)
    assert OFFPEAK.next_start(NOON) == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)  # 01:00 Berlin
    assert OFFPEAK.next_start(NIGHT) == NIGHT
    wrapping = OffPeak(time(22), time(2), BERLIN)
    assert wrapping.contains(datetime(2026, 11, 24, 22, 30, tzinfo=UTC)) and wrapping.contains(
        datetime(2026, 11, 24, 0, 30, tzinfo=UTC)
    )
    assert not wrapping.contains(NOON)


HEAVY_DUE = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)  # 08:00 Berlin next morning


@pytest.mark.parametrize(
    ("case", "kwargs", "action", "priority"),
    [
        (
            "heavy at noon waits for the night",
            dict(size_class="heavy", now=NOON, due=HEAVY_DUE, expected_s=1800),
            "defer",
            10,
        ),
        (
            "heavy inside the window runs",
            dict(size_class="heavy", now=NIGHT, due=HEAVY_DUE, expected_s=1800),
            "run",
            10,
        ),
        (
            "heavy whose SLA the night would miss runs now",
            dict(size_class="heavy", now=NOON, due=NOON + timedelta(hours=3), expected_s=1800),
            "run",
            10,
        ),
        (
            "... unless another heavy run is going",
            dict(size_class="heavy", now=NOON, due=NOON + timedelta(hours=3), expected_s=1800, running_heavy=1),
            "defer",
            10,
        ),
        (
            "heavy too long for the night's slack runs now",
            dict(size_class="heavy", now=NOON, due=HEAVY_DUE, expected_s=8 * 3600),
            "run",
            10,
        ),
        (
            "heavy at violated runs now, urgent",
            dict(size_class="heavy", now=NOON, due=HEAVY_DUE, expected_s=60, sla_tier="violated"),
            "run",
            100,
        ),
        ("tiny is batched", dict(size_class="tiny", now=NOON, due=NOON, expected_s=1), "batch", 10),
        (
            "tiny at critical runs now",
            dict(size_class="tiny", now=NOON, due=NOON, expected_s=1, sla_tier="critical"),
            "run",
            100,
        ),
        ("normal runs now", dict(size_class="normal", now=NOON, due=NOON, expected_s=30), "run", 10),
        (
            "normal at warning is raised",
            dict(size_class="normal", now=NOON, due=NOON, expected_s=30, sla_tier="warning"),
            "run",
            40,
        ),
    ],
)
def test_route_meeting(case: str, kwargs: dict, action: str, priority: int) -> None:
    decision = route(origin="meeting", offpeak=OFFPEAK, **kwargs)
    assert (decision.action, decision.priority) == (action, priority), case
    assert decision.reason


def test_route_priority_follows_origin() -> None:
    common = dict(size_class="normal", now=NOON, due=NOON, offpeak=OFFPEAK, expected_s=1)
    priorities = {o: route(origin=o, **common).priority for o in ("voice_note", "meeting", "document", "schedule")}
    assert priorities["voice_note"] > priorities["meeting"] > priorities["document"] > priorities["schedule"]


@pytest.mark.parametrize(
    ("waiting", "oldest", "urgent", "idle", "flush"),
    [
        (0, 99, True, True, False),  # nothing to launch
        (1, 0, False, True, True),  # idle queue: a lone note starts at once
        (1, 0, False, False, False),  # a batch is in flight: gather the next one
        (1, 10, False, False, True),  # ... for at most max_wait_s
        (50, 0, False, False, True),  # full
        (3, 1, True, False, True),  # SLA at risk
    ],
)
def test_should_flush(waiting: int, oldest: float, urgent: bool, idle: bool, flush: bool) -> None:
    assert should_flush(waiting, oldest, batch_size=50, max_wait_s=10, urgent=urgent, idle=idle) is flush

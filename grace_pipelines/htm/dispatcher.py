"""The HTM ledger and dispatcher: which waiting sources start now, in a batch, or later.

Every registered source gets a size class, an SLA deadline and a priority (grace_pipelines/htm
decides them). A source waits in the ledger (`launched_at` empty) until the dispatcher launches
it: normal work at once, tiny work in batches, heavy work in the off-peak window (or at once
when waiting would miss its SLA). Launches per origin per minute are capped so one origin's
flood cannot starve another; what is over the cap simply waits for the next tick, nothing is
dropped. A launch claims its sources atomically in the state database, so two sensors (or a
sensor and `grace ingest --wait`) never launch the same source twice.

No Dagster here: the sensors and schedules turn `Launch`es into run requests.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from grace_pipelines.db.htm_ledger import Ledger
from grace_pipelines.db.intents import intent_tags
from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.holds import allowed_work
from grace_pipelines.htm import (
    OffPeak,
    deadline,
    route,
    should_flush,
    size_class,
    target_for,
    tier,
)
from grace_pipelines.htm.routing import URGENT_PRIORITY, base_priority
from grace_pipelines.settings import GraceSettings

CAP_WINDOW = timedelta(minutes=1)
REEMIT_AFTER = timedelta(minutes=2)  # a claimed source whose run never started is requested again


@dataclass
class Launch:
    """One run to request: a single source, or a batch of tiny ones from one origin."""

    keys: list[str]
    origin: str
    size_class: str
    priority: int
    reason: str
    run_key: str
    urgent: bool = False
    title: str = ""  # the first source's title, for the run's `grace/title` tag
    # a single source's share of the graph that consent allows (governance/holds.allowed_work):
    # None is the whole graph with its checks; a batch decides per key itself
    assets: tuple[str, ...] | None = None
    checks: tuple[tuple[str, str], ...] | None = None
    hold: str | None = None  # "consent": the run only seals the bytes of a held source
    tags: dict[str, str] = field(default_factory=dict)  # extra run tags: `grace/intent` of its keys' intents


def offpeak(settings: GraceSettings) -> OffPeak:
    return OffPeak(settings.offpeak_start, settings.offpeak_end, settings.tz)


def plan(
    settings: GraceSettings, *, kind: str, size: int, duration_s: float | None, origin: str, dropped_at: datetime
) -> dict[str, object]:
    """Ledger values for a newly registered source: size class, SLA deadline, priority."""
    size_cls = size_class(kind, size, duration_s, settings.size_thresholds)
    target = target_for(settings.sla_targets, origin, size_cls)
    return {
        "size_class": size_cls,
        "sla_due": deadline(target, dropped_at, settings.tz),
        "priority": base_priority(origin),
        "route": None,
        "launched_at": None,
    }


def expected_seconds(settings: GraceSettings, row: SourceRow) -> float:
    """A rough processing time, to tell whether deferring would miss the SLA."""
    if row.duration_s:
        return row.duration_s * settings.expected_rtf + 10.0
    return row.bytes / 1_000_000 + 10.0


def launch(ledger: Ledger, launch_: Launch, now: datetime, route_name: str) -> Launch | None:
    """Claim the launch's sources and record it; None when another launcher took them all."""
    claimed = ledger.claim(launch_.keys, launch_.run_key, now, route_name, launch_.priority)
    if not claimed:
        return None
    launch_.keys = claimed
    launch_.tags.update(intent_tags(ledger.db, claimed))
    ledger.record_launch(launch_, now)
    row = ledger.db.get_source(claimed[0]) if len(claimed) == 1 else None
    return with_consent(ledger.db, row, launch_) if row is not None else launch_


def with_consent(db: StateDB, row: SourceRow, launch_: Launch) -> Launch:
    """`launch_` narrowed to what consent allows for its one source, titled: a source awaiting
    someone runs as a green hold that seals its bytes, never as a failing consent check."""
    allowed = allowed_work(db, row)
    launch_.title = row.title
    if not allowed.complete:
        launch_.assets, launch_.checks = allowed.assets, allowed.checks
        launch_.hold = "consent" if allowed.assets == ("source",) else "consent:index"
    return launch_


def dispatch(settings: GraceSettings, db: StateDB, now: datetime, *, deferred_only: bool = False) -> list[Launch]:
    """Decide and claim this tick's launches.

    Urgent sources (SLA violated or worse) go first and ignore the per-origin cap. Then, by
    priority: normal work runs now, heavy work runs in the off-peak window (or now, when the
    window opens too late for its SLA), tiny work is launched in batches per origin when a batch
    is full or its oldest source has waited `tiny_batch_wait_s`. Each origin gets at most
    `origin_runs_per_minute` launches per minute; the rest waits for a later tick.
    `deferred_only` (the off-peak schedule) launches heavy work only.
    """
    ledger = Ledger(db)
    window = offpeak(settings)
    used = ledger.launches_since(now - CAP_WINDOW)
    running_heavy = ledger.running_heavy()
    launches: list[Launch] = []
    tiny: dict[str, list[tuple[SourceRow, int, bool]]] = defaultdict(list)
    stamp = now.strftime("%Y%m%dT%H%M%S%f")

    for row in ledger.waiting():
        assert row.size_class is not None and row.sla_due is not None
        reached = tier(row.dropped_at, row.sla_due, now)
        if deferred_only and row.size_class != "heavy":
            continue
        decision = route(
            origin=row.origin,
            size_class=row.size_class,
            now=now,
            due=row.sla_due,
            offpeak=window,
            expected_s=expected_seconds(settings, row),
            sla_tier=reached,
            running_heavy=running_heavy,
        )
        urgent = decision.priority >= URGENT_PRIORITY
        if decision.action == "defer":
            if row.route != "defer":
                ledger.set_route(row.key, "defer", decision.priority)
            continue
        if decision.action == "batch" or (row.size_class == "tiny" and urgent):
            # urgent tiny work is still batched (flushed at once, over the cap): a backlog past
            # its SLA must not turn into thousands of single runs (measured: 7,000 in one tick)
            tiny[row.origin].append((row, decision.priority, urgent))
            continue
        if not urgent and not _has_room(settings, used, row.origin):
            continue  # over this origin's cap: a later tick launches it
        done = launch(
            ledger,
            Launch(
                keys=[row.key],
                origin=row.origin,
                size_class=row.size_class,
                priority=decision.priority,
                reason=decision.reason,
                run_key=f"{row.key}:{stamp}",
                urgent=urgent,
            ),
            now,
            "run",
        )
        if done:
            launches.append(done)
            used[row.origin] = used.get(row.origin, 0) + 1
            running_heavy += row.size_class == "heavy"

    launches.extend(_launch_batches(settings, ledger, tiny, used, now, stamp))
    if not deferred_only:
        launches.extend(_reemitted(ledger, now))
    return launches


def _has_room(settings: GraceSettings, used: dict[str, int], origin: str) -> bool:
    """Whether `origin` is still under its cap of launches per minute."""
    return used.get(origin, 0) < settings.origin_runs_per_minute


def _launch_batches(
    settings: GraceSettings,
    ledger: Ledger,
    tiny: dict[str, list[tuple[SourceRow, int, bool]]],
    used: dict[str, int],
    now: datetime,
    stamp: str,
) -> list[Launch]:
    """Launch the batches of tiny work that should flush now, per origin and within its cap."""
    launches: list[Launch] = []
    tiny_in_flight = ledger.in_flight("tiny")
    for origin, items in tiny.items():
        while items:
            oldest = min(r.dropped_at for r, _, _ in items)
            urgent = any(u for _, _, u in items)
            if not should_flush(
                len(items),
                (now - oldest).total_seconds(),
                batch_size=settings.tiny_batch_size,
                max_wait_s=settings.tiny_batch_wait_s,
                urgent=urgent,
                idle=tiny_in_flight.get(origin, 0) == 0,
            ):
                break
            if not urgent and not _has_room(settings, used, origin):
                break
            batch, items = items[: settings.tiny_batch_size], items[settings.tiny_batch_size :]
            keys = [r.key for r, _, _ in batch]
            done = launch(
                ledger,
                Launch(
                    keys=keys,
                    origin=origin,
                    size_class="tiny",
                    priority=max(p for _, p, _ in batch),
                    reason=f"batch of {len(keys)} tiny source(s)",
                    run_key=f"batch:{keys[0]}:{stamp}",
                    urgent=urgent,
                    title=batch[0][0].title,
                ),
                now,
                "batch",
            )
            if done:
                launches.append(done)
                used[origin] = used.get(origin, 0) + 1
                tiny_in_flight[origin] = tiny_in_flight.get(origin, 0) + len(done.keys)
    return launches


def _reemitted(ledger: Ledger, now: datetime) -> list[Launch]:
    """The claimed sources whose run never started, requested again under their run key."""
    return [
        with_consent(
            ledger.db,
            row,
            Launch(
                keys=[row.key],
                origin=row.origin,
                size_class=row.size_class or "normal",
                priority=row.priority or 0,
                reason="re-requested",
                run_key=str(row.run_key),
                tags=intent_tags(ledger.db, [row.key]),
            ),
        )
        for row in ledger.stuck(now - REEMIT_AFTER)
    ]

"""HTM metrics from the ledger: items, bytes, throughput, drop-to-searchable latency, SLA
compliance, queue depth and starvation, overall and per origin and size class.

Shared by the `htm_metrics` asset (numeric metadata the Dagster UI plots over time) and
`grace status --htm`, so both say the same thing. Per-stage throughput comes from Dagster's
step statistics and is passed in by the caller (this module has no Dagster import).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from grace_pipelines.db.htm_ledger import Ledger
from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import DONE_STAGES, Stage
from grace_pipelines.db.state import StateDB


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def _group_stats(rows: Iterable[SourceRow]) -> dict[str, Any]:
    rows = list(rows)
    latencies = [(r.searchable_at - r.dropped_at).total_seconds() for r in rows if r.searchable_at]
    on_time = [r for r in rows if r.searchable_at and r.sla_due and r.searchable_at <= r.sla_due]
    return {
        "items": len(rows),
        "bytes": sum(r.bytes for r in rows),
        "p50_latency_s": percentile(latencies, 50),
        "p95_latency_s": percentile(latencies, 95),
        "sla_compliance_pct": round(100.0 * len(on_time) / len(rows), 1) if rows else None,
    }


def htm_report(
    db: StateDB,
    now: datetime,
    window: timedelta = timedelta(hours=1),
    stages: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """The figures for the window ending at `now` (searchable in the window; queue as of now)."""
    since = now - window
    sources = [r for r in db.list_sources() if r.size_class]
    done = [r for r in sources if r.searchable_at and r.searchable_at >= since]
    queued = [r for r in sources if r.stage not in (*DONE_STAGES, Stage.AWAITING_CONSENT)]
    events = Ledger(db).events(since=since)
    seconds = window.total_seconds()
    summary = _group_stats(done)
    summary.update(
        {
            "items_per_s": round(len(done) / seconds, 4),
            "bytes_per_s": round(sum(r.bytes for r in done) / seconds, 1),
            "queue_depth": len(queued),
            "waiting": sum(1 for r in queued if r.launched_at is None),
            "deferred": sum(1 for r in queued if r.route == "defer" and r.launched_at is None),
            "starvation_events": sum(1 for e in events if e["kind"] == "starved"),
            **{
                f"sla_{tier}": sum(1 for e in events if e["kind"] == tier)
                for tier in ("warning", "violated", "critical")
            },
        }
    )
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    keys = {(r.origin, r.size_class or "normal") for r in done + queued} | {
        (e["origin"], e["size_class"]) for e in events
    }
    done_by: dict[tuple[str, str], list[SourceRow]] = defaultdict(list)
    for r in done:
        done_by[(r.origin, r.size_class or "normal")].append(r)
    for key in sorted(keys):
        origin, size = key
        groups[key] = {
            "origin": origin,
            "size_class": size,
            **_group_stats(done_by.get(key, [])),
            "queue_depth": sum(1 for r in queued if (r.origin, r.size_class) == key),
            "starvation_events": sum(
                1 for e in events if e["kind"] == "starved" and (e["origin"], e["size_class"]) == key
            ),
        }
    return {
        "window_s": seconds,
        "at": now.isoformat(),
        "summary": summary,
        "groups": list(groups.values()),
        "stages": stages or {},
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    lines = [
        f"**Last {report['window_s'] / 3600:g} h**: {s['items']} searchable ({_fmt(s['bytes'])} bytes, "
        f"{s['items_per_s']} items/s, "
        f"{_fmt(s['bytes_per_s'])} bytes/s); latency p50 {_fmt(s['p50_latency_s'])} s, "
        f"p95 {_fmt(s['p95_latency_s'])} s; "
        f"SLA compliance {_fmt(s['sla_compliance_pct'])} %; queue {s['queue_depth']} ({s['waiting']} waiting, "
        f"{s['deferred']} deferred); starvation events {s['starvation_events']}; "
        f"SLA warning/violated/critical {s['sla_warning']}/{s['sla_violated']}/{s['sla_critical']}.",
        "",
        "| origin | size | items | bytes | p50 s | p95 s | SLA % | queue | starved |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for g in report["groups"]:
        lines.append(
            f"| {g['origin']} | {g['size_class']} | {g['items']} | {_fmt(g['bytes'])} | {_fmt(g['p50_latency_s'])} | "
            f"{_fmt(g['p95_latency_s'])} | {_fmt(g['sla_compliance_pct'])} | {g['queue_depth']} | "
            f"{g['starvation_events']} |"
        )
    if report["stages"]:
        lines += ["", "| stage | items | busy s | items/s | bytes/s |", "| --- | ---: | ---: | ---: | ---: |"]
        for stage, st in report["stages"].items():
            lines.append(
                f"| {stage} | {_fmt(st['items'])} | {_fmt(st['busy_s'])} | {_fmt(st['items_per_s'])} | "
                f"{_fmt(st['bytes_per_s'])} |"
            )
    return "\n".join(lines)


def numeric_metadata(report: dict[str, Any]) -> dict[str, float]:
    """Flat numeric metadata (None dropped) for the Dagster UI's plots."""
    out: dict[str, float] = {}
    for name, value in report["summary"].items():
        if value is not None:
            out[name] = value
    for g in report["groups"]:
        prefix = f"{g['origin']}.{g['size_class']}"
        for name in (
            "items",
            "p50_latency_s",
            "p95_latency_s",
            "sla_compliance_pct",
            "queue_depth",
            "starvation_events",
        ):
            if g[name] is not None:
                out[f"{prefix}.{name}"] = g[name]
    for stage, st in report["stages"].items():
        out[f"stage.{stage}.items_per_s"] = st["items_per_s"]
        out[f"stage.{stage}.bytes_per_s"] = st["bytes_per_s"]
    return out

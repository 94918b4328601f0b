"""The metrics a playbook check can read ("probes"), plain Python over the state database, the
blob store, the keyring and the chunk index: `(ctx, params) -> Reading`, registered by name.

A reading's value is one number, or one number per group (e.g. per "origin/size_class"; a check
passes only when every group passes), or None when there is nothing to judge (no data yet).
`details` name what is behind the number (source titles, parties awaited, blob names), so an
alert or a report can say what breached; never content. Data only Dagster has (recent check
results, per-stage throughput) is fetched by the adapter and handed in as `ctx.instance_data`,
so this module imports no Dagster. HTM, consent and ingest probes are here; crypto, retention
and index probes in probes_store.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from grace_pipelines.db.htm_ledger import Ledger
from grace_pipelines.db.schema import Stage, approvals_table, audit_table
from grace_pipelines.errors import SYSTEM_FAILURE
from grace_pipelines.governance.holds import consent_overview
from grace_pipelines.htm.metrics import htm_report
from grace_pipelines.playbooks import probes_store  # noqa: F401  (registers the crypto, retention and index probes)
from grace_pipelines.playbooks.context import PROBES, PlaybookContext, Reading, hours, probe

__all__ = ["PROBES", "PlaybookContext", "Reading"]


# ---- HTM: timing and sizing -------------------------------------------------------------------
def _report(ctx: PlaybookContext, params: dict[str, Any]) -> dict[str, Any]:
    window = hours(params, "window_hours", 1.0)

    def make() -> dict[str, Any]:
        stages = ctx.instance_data.stage_throughput(ctx.now - window) if ctx.instance_data else None
        return htm_report(ctx.db, ctx.now, window, stages=stages)

    return ctx.cached(("htm", window), make)


def _per_group(report: dict[str, Any], name: str) -> dict[str, float]:
    return {f"{g['origin']}/{g['size_class']}": g[name] for g in report["groups"] if g[name] is not None}


@probe("htm.sla_compliance_pct")
def sla_compliance(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Per origin/size class: % of the sources made searchable in the window that met their SLA."""
    report = _report(ctx, params)
    since = ctx.now - hours(params, "window_hours", 1.0)
    late = [
        f"{r.title} ({r.origin}/{r.size_class}): {(r.searchable_at - r.sla_due).total_seconds():.0f} s late"
        for r in ctx.db.list_sources()
        if r.searchable_at and r.sla_due and r.searchable_at >= since and r.searchable_at > r.sla_due
    ]
    return Reading(_per_group(report, "sla_compliance_pct"), late)


@probe("htm.p95_latency_s")
def p95_latency(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Per origin/size class: p95 drop-to-searchable seconds over the window."""
    return Reading(_per_group(_report(ctx, params), "p95_latency_s"))


@probe("htm.queue_depth")
def queue_depth(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Sources the system owes work now (not done, not held for consent)."""
    s = _report(ctx, params)["summary"]
    return Reading(float(s["queue_depth"]), extra={"waiting": s["waiting"], "deferred": s["deferred"]})


@probe("htm.starvation_events")
def starvation(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Sources that never started within their SLA, in the window."""
    return Reading(float(_report(ctx, params)["summary"]["starvation_events"]))


@probe("htm.throughput_items_per_h")
def throughput(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Sources made searchable per hour over the window; no data while nothing is queued
    (`only_when_queued`, default true), since an idle system is not a slow one."""
    s = _report(ctx, params)["summary"]
    if params.get("only_when_queued", True) and s["queue_depth"] == 0:
        return Reading(None)
    return Reading(round(s["items_per_s"] * 3600, 2))


def overdue_rows(ctx: PlaybookContext, fraction: float, waiting_only: bool) -> list[Any]:
    """Unfinished sources at or past `fraction` of their SLA (1.0: past it), oldest first."""
    out = []
    for row in Ledger(ctx.db).unfinished():
        if row.sla_due is None or (waiting_only and row.launched_at is not None):
            continue
        allowed = (row.sla_due - row.dropped_at).total_seconds()
        used = (ctx.now - row.dropped_at).total_seconds()
        if allowed <= 0 or used / allowed >= fraction:
            out.append(row)
    return sorted(out, key=lambda r: r.dropped_at)


@probe("htm.overdue_sources")
def overdue(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Sources past `fraction` (default 1.0) of their SLA and still waiting to start
    (`waiting_only`, default true; false: also the ones running)."""
    fraction = float(params.get("fraction", 1.0))
    rows = overdue_rows(ctx, fraction, bool(params.get("waiting_only", True)))
    details = [
        f"{r.title} ({r.origin}/{r.size_class}): "
        f"{100 * (ctx.now - r.dropped_at) / max(r.sla_due - r.dropped_at, timedelta(seconds=1)):.0f} % of its SLA, "
        f"{'waiting' if r.launched_at is None else 'running'}"
        for r in rows
    ]
    return Reading(float(len(rows)), details)


# ---- consent and credentials -------------------------------------------------------------------
@probe("consent.held_too_long")
def held_too_long(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Sources held for consent longer than `hours` (default 24), with the parties awaited."""
    limit = ctx.now - hours(params)
    held = {r.key: r for r in ctx.db.sources_in_stages([Stage.AWAITING_CONSENT]) if r.dropped_at <= limit}
    waiting: dict[str, set[str]] = {}
    for item in consent_overview(ctx.db, pending=True):
        if item["source_key"] in held:
            waiting.setdefault(item["source_key"], set()).update(item["missing"])
    details = [
        f"{row.title}: waiting on {', '.join(sorted(waiting.get(key, set()))) or 'nobody named'} "
        f"for {(ctx.now - row.dropped_at).total_seconds() / 3600:.0f} h"
        for key, row in sorted(held.items(), key=lambda kv: kv[1].dropped_at)
    ]
    return Reading(float(len(held)), details)


@probe("consent.grants_expiring")
def grants_expiring(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Grants still in force that expire within `days` (default 7)."""
    until = ctx.now + timedelta(days=float(params.get("days", 7)))
    details = []
    for row in ctx.db.list_sources():
        if row.stage == Stage.PURGED:
            continue
        latest: dict[tuple[str, str], Any] = {}
        for event in ctx.db.consent_events(row.key):
            latest[(event.party, event.scope)] = event
        for (party, scope), event in sorted(latest.items()):
            if event.action == "grant" and event.expires_at and ctx.now < event.expires_at <= until:
                details.append(f"{row.title}: {party}'s {scope} grant expires {event.expires_at:%Y-%m-%d %H:%M} UTC")
    return Reading(float(len(details)), details)


@probe("vault.approvals_expiring")
def approvals_expiring(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Credential approvals in force that expire within `days` (default 7)."""
    until = ctx.now + timedelta(days=float(params.get("days", 7)))
    c = approvals_table.c
    query = sa.select(c.name, c.purpose, c.expires_at).where(
        c.revoked_at.is_(None), c.expires_at.is_not(None), c.expires_at > ctx.now, c.expires_at <= until
    )
    with ctx.db.begin() as conn:
        rows = conn.execute(query.order_by(c.expires_at)).all()
    details = [f"secret {r.name} for {r.purpose}: approval expires {r.expires_at:%Y-%m-%d %H:%M} UTC" for r in rows]
    return Reading(float(len(rows)), details)


@probe("vault.refused_uses")
def refused_uses(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Uses of a credential the vault refused in the last `hours` (default 24), from the audit log."""
    c = audit_table.c
    query = sa.select(c.subject, c.details, c.at).where(c.action == "vault.refuse", c.at >= ctx.now - hours(params))
    with ctx.db.begin() as conn:
        rows = conn.execute(query.order_by(c.seq)).all()
    details = [
        f"secret {r.subject} for {(r.details or {}).get('purpose', '?')}: {(r.details or {}).get('why')}" for r in rows
    ]
    return Reading(float(len(rows)), details)


# ---- ingest -----------------------------------------------------------------------------------------
@probe("ingest.failed_sources")
def failed_sources(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Sources whose processing failed (`system_only`: only system failures, not bad input)."""
    rows = ctx.db.sources_in_stages([Stage.FAILED])
    if params.get("system_only", False):
        rows = [r for r in rows if (r.reason or "").startswith(SYSTEM_FAILURE)]
    return Reading(float(len(rows)), [f"{r.title}: {(r.reason or 'failed')[:160]}" for r in rows])


QUALITY_ASSETS = ("transcript", "chunks", "embeddings")


@probe("ingest.quality_failures")
def quality_failures(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Failed data-quality checks (named `prefix`, default "quality_") on `assets` (default
    transcript, chunks, embeddings) in the last `hours` (default 24); the latest evaluation per
    check and partition counts. No data outside Dagster (the adapter fetches the results)."""
    if ctx.instance_data is None:
        return Reading(None, ["check results come from the Dagster instance: none was given"])
    prefix = str(params.get("prefix", "quality_"))
    assets = set(params.get("assets", QUALITY_ASSETS))
    latest: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for rec in sorted(ctx.instance_data.check_records(ctx.now - hours(params)), key=lambda r: r["at"]):
        if rec["asset"] in assets and rec["check"].startswith(prefix):
            latest[(rec["asset"], rec["check"], rec.get("partition"))] = rec
    failed = [r for r in latest.values() if not r["passed"]]
    details = [
        f"{r['asset']}.{r['check']}" + (f" on {ctx.title(r['partition'])}" if r.get("partition") else "")
        for r in failed
    ]
    return Reading(float(len(failed)), details, extra={"evaluated": float(len(latest))})

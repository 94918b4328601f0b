"""What a playbook can do about a breach, as plain functions in a registry:
`(ctx, playbook, breaches, params, dry_run) -> dict` of counts and names.

- `alert` / `remind`: the webhook (the Alerts client the SLA sensor uses) and the audit log,
  naming what breached (sources by title, parties awaited, blobs by name);
- `launch_overdue`, `reprioritise`: the HTM ledger, so the dispatcher launches the work;
- `rerun_failed`: sources failed by a system failure back in the queue, with backoff and a cap;
- `rotate_keys`, `maintain_index`: what `keyring` and `search_index` materialize;
- `purge`: retention plans (governance/purge); the Dagster adapter runs each through `purge_job`.

Every action honours `dry_run`: it reports what it would do and changes nothing. No Dagster.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from grace_pipelines.crypto.rotation import rotate
from grace_pipelines.db.htm_ledger import Ledger
from grace_pipelines.db.schema import Stage
from grace_pipelines.errors import SYSTEM_FAILURE
from grace_pipelines.governance.audit.log import record
from grace_pipelines.governance.purge import requested_plan
from grace_pipelines.htm.dispatcher import REEMIT_AFTER, Launch
from grace_pipelines.htm.routing import URGENT_PRIORITY, WARNING_BOOST, base_priority
from grace_pipelines.playbooks.context import PlaybookContext
from grace_pipelines.playbooks.probes import overdue_rows
from grace_pipelines.playbooks.probes_store import old_sources, store_bytes
from grace_pipelines.stores.sealed import sealed_things

if TYPE_CHECKING:
    from grace_pipelines.playbooks.engine import CheckOutcome
    from grace_pipelines.playbooks.model import Playbook

Action = Callable[[PlaybookContext, "Playbook", "list[CheckOutcome]", dict[str, Any], bool], dict[str, Any]]
ACTIONS: dict[str, Action] = {}
NAMED = 20  # names carried in an alert's text


def action(name: str) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn

    return register


def breach_text(playbook: Playbook, breaches: list[CheckOutcome], header: str | None = None) -> str:
    lines = [header or f"Grace playbook {playbook.name}: {len(breaches)} check(s) breached"]
    for c in breaches:
        lines.append(f"- {c.name} ({c.check.severity}): {c.summary()}")
        lines += [f"    {d}" for d in c.details[:NAMED]]
        if len(c.details) > NAMED:
            lines.append(f"    ... and {len(c.details) - NAMED} more")
    return "\n".join(lines)


def _send(ctx: PlaybookContext, text: str, **fields: Any) -> tuple[bool, str]:
    if ctx.alerts is None:
        return False, "no alerts client"
    delivered, outcome = ctx.alerts.send(text, **fields)
    return delivered, outcome if getattr(ctx.alerts, "enabled", True) else "not configured"


@action("alert")
def alert(ctx, playbook, breaches, params, dry_run) -> dict[str, Any]:
    """Post what breached to the webhook and write it to the audit log."""
    if not breaches:
        return {"sent": 0}
    text = breach_text(playbook, breaches, params.get("title"))
    names = [d for c in breaches for d in c.details][:NAMED]
    if dry_run:
        return {"sent": 0, "would_send": 1, "named": names}
    fields = {"playbook": playbook.name, "checks": [c.name for c in breaches]}
    delivered, outcome = _send(ctx, text, **fields)
    details = {**fields, "named": names, "delivered": delivered, "webhook": outcome}
    record(ctx.db, actor=ctx.actor, action="playbook.alert", subject=playbook.name, details=details)
    return {"sent": 1, "delivered": int(delivered), "webhook": outcome, "named": names}


@action("remind")
def remind(ctx, playbook, breaches, params, dry_run) -> dict[str, Any]:
    """A reminder (consent pending, a key backup due): webhook + audit entry with subject
    `topic` (default the playbook's name; `key_backup` resets the backup reminder's age)."""
    topic = str(params.get("topic", playbook.name))
    header = params.get("title") or f"Grace reminder ({topic})"
    text = breach_text(playbook, breaches, header) if breaches else header
    names = [d for c in breaches for d in c.details][:NAMED]
    if dry_run:
        return {"sent": 0, "would_send": 1, "named": names}
    delivered, outcome = _send(ctx, text, playbook=playbook.name, topic=topic)
    details = {"playbook": playbook.name, "named": names, "delivered": delivered, "webhook": outcome}
    record(ctx.db, actor=ctx.actor, action="playbook.remind", subject=topic, details=details)
    return {"sent": 1, "delivered": int(delivered), "named": names}


@action("launch_overdue")
def launch_overdue(ctx, playbook, breaches, params, dry_run) -> dict[str, Any]:
    """Sources at or past `fraction` (default 0.75) of their SLA and still waiting: claimed at
    the top priority as launches whose run was lost, so the dispatcher's next tick (the inbox
    sensor's, every few seconds) requests their runs, deferral and per-origin caps aside."""
    rows = overdue_rows(ctx, float(params.get("fraction", 0.75)), waiting_only=True)
    rows = rows[: int(params.get("limit", 100))]
    names = [f"{r.title} ({r.key})" for r in rows]
    if dry_run:
        return {"would_launch": len(rows), "sources": names}
    ledger = Ledger(ctx.db)
    # claimed "REEMIT_AFTER ago": dispatcher._reemitted requests it on the next tick under this run key
    claimed_at = ctx.now - REEMIT_AFTER - timedelta(seconds=1)
    stamp = ctx.now.strftime("%Y%m%dT%H%M%S")
    launched = []
    for row in rows:
        run_key = f"{row.key}:playbook:{stamp}"
        if not ledger.claim([row.key], run_key, claimed_at, "run", URGENT_PRIORITY):
            continue  # another launcher took it meanwhile
        reason = f"playbook {playbook.name}: SLA at risk"
        launch = Launch(
            keys=[row.key],
            origin=row.origin,
            size_class=row.size_class or "normal",
            priority=URGENT_PRIORITY,
            reason=reason,
            run_key=run_key,
            urgent=True,
        )
        ledger.record_launch(launch, ctx.now)
        ledger.record_event(row, "escalated", ctx.now, reason)
        launched.append(row)
    return {"launched": len(launched), "keys": [r.key for r in launched], "sources": [r.title for r in launched]}


@action("reprioritise")
def reprioritise(ctx, playbook, breaches, params, dry_run) -> dict[str, Any]:
    """Raise waiting sources near their SLA (`fraction`, default 0.5; `origin` to narrow it) to
    their origin's priority plus `boost` (default the warning boost), so they dequeue first."""
    rows = overdue_rows(ctx, float(params.get("fraction", 0.5)), waiting_only=True)
    if params.get("origin"):
        rows = [r for r in rows if r.origin == params["origin"]]
    boost = int(params.get("boost", WARNING_BOOST))
    raised = [r for r in rows if (r.priority or 0) < base_priority(r.origin) + boost]
    if not dry_run:
        ledger = Ledger(ctx.db)
        for r in raised:
            ledger.set_route(r.key, r.route or "run", base_priority(r.origin) + boost)
    key = "would_raise" if dry_run else "raised"
    return {key: len(raised), "sources": [r.title for r in raised]}


def _attempts(ledger: Ledger, key: str) -> list[dict[str, Any]]:
    return [e for e in ledger.events() if e["source_key"] == key and str(e["kind"]).startswith("rerun:")]


@action("rerun_failed")
def rerun_failed(ctx, playbook, breaches, params, dry_run) -> dict[str, Any]:
    """Failed sources back into the queue: only system failures (unless `include_bad_input`),
    at most `max_attempts` (default 3) per source, attempt n waiting `backoff_minutes * 2**(n-1)`
    (default 10) after the previous one. Attempts are HTM ledger events `rerun:n`."""
    cap = int(params.get("max_attempts", 3))
    backoff = timedelta(minutes=float(params.get("backoff_minutes", 10)))
    ledger = Ledger(ctx.db)
    queued, waiting, capped = [], [], []
    for row in ctx.db.sources_in_stages([Stage.FAILED]):
        if not params.get("include_bad_input") and not (row.reason or "").startswith(SYSTEM_FAILURE):
            continue
        done = _attempts(ledger, row.key)
        if len(done) >= cap:
            capped.append(row.title)
            continue
        if done and ctx.now < done[-1]["at"] + backoff * 2 ** (len(done) - 1):
            waiting.append(row.title)
            continue
        queued.append(row)
    if not dry_run:
        for row in queued:
            n = len(_attempts(ledger, row.key)) + 1
            ledger.record_event(row, f"rerun:{n}", ctx.now, f"playbook {playbook.name}: {row.reason or ''}"[:200])
            ctx.db.update_source(
                row.key, stage=Stage.REGISTERED, reason=None, launched_at=None, run_key=None, route=None
            )
    return {
        ("would_requeue" if dry_run else "requeued"): len(queued),
        "sources": [r.title for r in queued],
        "backing_off": waiting,
        "at_cap": capped,
    }


@action("rotate_keys")
def rotate_keys(ctx, playbook, breaches, params, dry_run) -> dict[str, Any]:
    """Rotate the key-encryption key (re-wrap, verify, retire), as `keyring` does, and audit it."""
    ring = ctx.blob_store.keyring()
    if dry_run:
        return {"would_rotate": 1, "active_key": ring.active.id}
    report = rotate(ring, sealed_things(ctx.blob_store.root, ctx.db)).to_dict()
    keep = ("old_key_ids", "retired", "blobs", "rewrapped", "verified", "seconds", "resumed")
    details = {**{k: report[k] for k in keep}, "playbook": playbook.name}
    record(ctx.db, actor=ctx.actor, action="key.rotate", subject=report["new_key_id"], details=details)
    return {
        "rotated": 1,
        "new_key": report["new_key_id"],
        "retired": report["retired"],
        "rewrapped": report["rewrapped"],
    }


@action("maintain_index")
def maintain_index(ctx, playbook, breaches, params, dry_run) -> dict[str, Any]:
    """Compact the chunks table and fold new rows into its indices (ChunkIndex.maintain)."""
    if ctx.chunk_index is None:
        return {"maintained": 0}
    if dry_run:
        return {"would_maintain": 1}
    report = ctx.chunk_index.maintain()
    return {"maintained": 1, **{k: v for k, v in report.items() if isinstance(v, (int, float))}}


@action("purge")
def purge(ctx, playbook, breaches, params, dry_run) -> dict[str, Any]:
    """Retention: plan a purge (everything derived, and the original unless `keep_original`) for
    each source past its origin's age (`by_age`, default true; `days`, `days_by_origin`), and,
    with `by_budget` (default false), of the oldest others until the store fits `budget_bytes`.
    Returns the plans; the Dagster adapter runs each through `purge_job` (receipt, audit)."""
    chosen = list(old_sources(ctx, params)) if params.get("by_age", True) else []
    if params.get("by_budget", False) and params.get("budget_bytes") is not None:
        blobs, index = store_bytes(ctx)
        over = blobs + index - int(params["budget_bytes"])
        taken = {r.key for r in chosen}
        over -= sum(r.bytes for r in chosen)
        for row in ctx.db.list_sources():  # oldest first
            if over <= 0:
                break
            if row.key not in taken and row.stage not in (Stage.PURGED, Stage.PURGING):
                chosen.append(row)
                over -= row.bytes
    plans = []
    for row in chosen:
        plan = requested_plan(
            ctx.db,
            row.key,
            purge_original_on_revoke=ctx.settings.purge_original_on_revoke,
            reason=f"retention (playbook {playbook.name})",
            remove_original=not params.get("keep_original", False),
            only_if_needed=False,
        )
        if plan is not None:
            plans.append({"source_key": row.key, "title": row.title, "plan": plan})
    titles = [p["title"] for p in plans]
    if dry_run:
        return {"would_purge": len(plans), "sources": titles}
    return {"planned": len(plans), "sources": titles, "plans": plans}


ACTION_DOCS = {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in ACTIONS.items()}

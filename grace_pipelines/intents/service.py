"""Intents on the state database: submit, evaluate (what `intent_sensor` does each tick) and
describe. No Dagster: the sensor, the `intents` asset and the facade call these.

Submitting writes the intent and its sources and feeds the HTM SLA at once: each covered source
that still owes work gets `sla_due = min(sla_due, deadline)` and at least its origin's priority
plus the warning boost, so the dispatcher and `sla_sensor` treat it as due by the deadline (it is
applied again on every evaluation, for files the inbox registers after the intent). Evaluating
records progress and moves the status; completion (done or failed) and overdue each write one
audit record and post one webhook, guarded in the database so they fire once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from grace_pipelines.db.intents import LIVE_STATUSES, IntentRow
from grace_pipelines.db.state import StateDB
from grace_pipelines.errors import GraceError
from grace_pipelines.governance.audit.log import record
from grace_pipelines.htm.dispatcher import expected_seconds
from grace_pipelines.htm.routing import WARNING_BOOST, base_priority
from grace_pipelines.intents.deadlines import parse_deadline
from grace_pipelines.intents.progress import FINAL, KINDS, Progress, next_status, on_time, progress_of, projected_finish
from grace_pipelines.settings import GraceSettings

Send = Callable[..., tuple[bool, str]]  # resources.alerts.Alerts.send: (text, **fields) -> (delivered, outcome)
REEMBED_S_PER_SOURCE = 5.0  # a rough cost of re-embedding one source (chunks are reused)
UNREGISTERED_S = 10.0  # a file still in the inbox: its size is not known yet


def deadline_priority(origin: str) -> int:
    """The priority floor of a source an intent with a deadline covers."""
    return base_priority(origin) + WARNING_BOOST


def resolve_refs(settings: GraceSettings, db: StateDB, refs: Sequence[str | Path]) -> list[tuple[str, str]]:
    """(key, title) for each ref: a known source (key, key prefix, file name, title), or a file
    on disk that is dropped into the inbox now (its key is its content hash, so the intent
    covers it before the inbox registers it)."""
    from grace_pipelines.ingest.drop import drop_files

    found: list[tuple[str, str]] = []
    for ref in refs:
        row = db.find_source(str(ref))
        if row is not None:
            found.append((row.key, row.title))
            continue
        path = Path(ref).expanduser()
        if not path.is_file():
            raise GraceError(f"{ref}: no source matches it and no file is there (give a source key, a title or a path)")
        (item,) = drop_files(settings, db, [path])
        if item.state not in ("dropped", "same") or not item.sha256:
            raise GraceError(f"{item.shown}: not ingested: {item.reason or item.state}")
        found.append((item.sha256[:16], item.name))
    return list(dict.fromkeys(found))


def _when(value: datetime | None, settings: GraceSettings) -> str:
    return value.astimezone(settings.tz).strftime("%a %Y-%m-%d %H:%M %Z") if value else "no deadline"


def _describe(kind: str, titles: list[str], deadline: datetime | None, settings: GraceSettings, label: str) -> str:
    names = ", ".join(titles[:3]) + (f" (+{len(titles) - 3} more)" if len(titles) > 3 else "")
    if kind == "searchable":
        return f"{names} searchable by {_when(deadline, settings)}"
    if kind == "notify":
        return f"tell me when {names} is searchable" + (f" (by {_when(deadline, settings)})" if deadline else "")
    return f"re-embed {len(titles)} source(s) with {label} by {_when(deadline, settings)}"


def submit(
    db: StateDB,
    settings: GraceSettings,
    *,
    kind: str,
    sources: Sequence[tuple[str, str]] = (),
    by: str | None = None,
    model: str | None = None,
    model_label: str | None = None,
    actor: str,
    now: datetime,
    description: str | None = None,
) -> IntentRow:
    """Record an intent (sources as (key, title)); for `reembed`, every searchable source, and
    `model` the embedder's code version the intent waits for."""
    if kind not in KINDS:
        raise GraceError(f"unknown intent kind {kind!r} (one of {', '.join(KINDS)})")
    if kind == "reembed":
        if not model:
            raise GraceError("a reembed intent needs the model to re-embed with")
        sources = [(r.key, r.title) for r in db.sources_in_stages(["searchable"])]
        if not sources:
            raise GraceError("nothing is searchable yet: there is nothing to re-embed")
    elif not sources:
        raise GraceError(f"a {kind} intent needs at least one source (a key, a title or a file path)")
    if by is None and kind != "notify":
        raise GraceError(f"a {kind} intent needs a deadline (--by), e.g. 09:00, 'tomorrow 9am' or monday")
    deadline = parse_deadline(by, now, settings.tz) if by else None
    keys = [k for k, _ in sources]
    text = description or _describe(kind, [t for _, t in sources], deadline, settings, model_label or model or "")
    intent_id = db.create_intent(
        kind=kind,
        description=text[:500],
        deadline=deadline,
        created_by=actor,
        model=model,
        keys=keys,
        now=now,
        titles=dict(sources),
    )
    raised = db.raise_for_deadline(keys, deadline, deadline_priority) if deadline and kind != "reembed" else 0
    record(
        db,
        actor=actor,
        action="intent_submitted",
        subject=f"intent:{intent_id}",
        details={
            "kind": kind,
            "description": text[:500],
            "deadline": deadline.isoformat() if deadline else None,
            "sources": len(keys),
            "sla_lowered": raised,
            "model": model,
        },
    )
    intent = db.get_intent(intent_id)
    assert intent is not None
    return intent


def progress_for(db: StateDB, intent: IntentRow) -> Progress:
    rows = db.sources_by_key(intent.keys)
    missing = [k for k in intent.keys if k not in rows]
    quarantined = db.quarantine_reasons(missing)
    return progress_of(
        intent.kind, intent.keys, rows, model=intent.model, quarantined=quarantined, titles=intent.titles
    )


def _event(db: StateDB, send: Send, intent: IntentRow, action: str, progress: Progress, now: datetime) -> dict:
    late = intent.deadline is not None and now > intent.deadline
    what = {"intent_done": "done", "intent_failed": "failed", "intent_overdue": "overdue"}[action]
    text = f"Grace intent #{intent.id} {what}: {intent.description} ({progress.done}/{progress.total} done"
    text += f", {progress.failed} failed)" if progress.failed else ")"
    failures = [{"key": i.key, "title": i.title, "reason": i.reason[:200]} for i in progress.failures[:20]]
    delivered, outcome = send(
        text,
        event=action,
        intent=intent.id,
        kind=intent.kind,
        done=progress.done,
        total=progress.total,
        failed=progress.failed,
        deadline=intent.deadline.isoformat() if intent.deadline else None,
        late=late,
        failures=failures,
    )
    details = {
        "kind": intent.kind,
        "description": intent.description,
        "deadline": intent.deadline.isoformat() if intent.deadline else None,
        "done": progress.done,
        "total": progress.total,
        "failed": progress.failed,
        "failures": failures,
        "late": late,
        "webhook": outcome,
        "delivered": delivered,
    }
    record(db, actor="intent_sensor", action=action, subject=f"intent:{intent.id}", details=details)
    return {"intent": intent.id, "event": action, "delivered": delivered, "webhook": outcome}


def evaluate(db: StateDB, settings: GraceSettings, now: datetime, send: Send) -> list[dict[str, Any]]:
    """One pass over the live intents: feed their deadlines to the SLA, record progress, move
    the status, fire completion and overdue events once. Returns the events fired."""
    events: list[dict[str, Any]] = []
    for intent in db.list_intents(LIVE_STATUSES):
        if intent.deadline is not None and intent.kind != "reembed":
            db.raise_for_deadline(intent.keys, intent.deadline, deadline_priority)
        progress = progress_for(db, intent)
        db.record_progress(intent.id, done=progress.done, total=progress.total, failed=progress.failed, now=now)
        new = next_status(intent.status, progress, intent.deadline, now)
        if new == intent.status:
            continue
        values = {"completed_at": now} if new in FINAL else {}
        if not db.move_intent(intent.id, from_statuses=(intent.status,), to=new, **values):
            continue  # another evaluator moved it first
        marker, action = ("overdue_at", "intent_overdue") if new == "overdue" else ("notified_at", f"intent_{new}")
        if db.claim_intent_event(intent.id, marker, now):
            events.append(_event(db, send, intent, action, progress, now))
    return events


def cancel(db: StateDB, settings: GraceSettings, intent_id: int, *, actor: str, now: datetime) -> dict[str, Any]:
    intent = db.get_intent(intent_id)
    if intent is None:
        raise GraceError(f"no intent #{intent_id} (grace intent list shows them)")
    if not db.move_intent(intent_id, from_statuses=LIVE_STATUSES, to="cancelled", completed_at=now):
        raise GraceError(f"intent #{intent_id} is {intent.status}: only an open or overdue intent can be cancelled")
    record(db, actor=actor, action="intent_cancelled", subject=f"intent:{intent_id}", details={"kind": intent.kind})
    return status_of(db, settings, intent_id, now)


def watched_keys(db: StateDB) -> dict[str, list[int]]:
    """Covered keys of live searchable/notify intents that still owe work -> their intent ids."""
    watched: dict[str, list[int]] = {}
    for intent in db.list_intents(LIVE_STATUSES):
        if intent.kind == "reembed":
            continue
        for item in progress_for(db, intent).pending:
            watched.setdefault(item.key, []).append(intent.id)
    return watched


def reembed_pending(db: StateDB, intent: IntentRow) -> list[str]:
    return [i.key for i in progress_for(db, intent).pending]


def describe(db: StateDB, settings: GraceSettings, intent: IntentRow, now: datetime) -> dict[str, Any]:
    """Everything `grace intent status` shows: progress now (done/total, failures with reasons,
    what is pending and why), the projection against the deadline, the event times."""
    progress = progress_for(db, intent)
    rows = db.sources_by_key(i.key for i in progress.pending)
    remaining = [
        REEMBED_S_PER_SOURCE
        if intent.kind == "reembed"
        else (expected_seconds(settings, rows[i.key]) if i.key in rows else UNREGISTERED_S)
        for i in progress.pending
    ]
    projected = projected_finish(now, remaining) if remaining and intent.status in LIVE_STATUSES else None
    iso = lambda v: v.isoformat() if v else None  # noqa: E731
    return {
        "id": intent.id,
        "kind": intent.kind,
        "status": intent.status,
        "description": intent.description,
        "deadline": iso(intent.deadline),
        "deadline_local": _when(intent.deadline, settings) if intent.deadline else None,
        "created_at": iso(intent.created_at),
        "created_by": intent.created_by,
        "model": intent.model,
        **progress.to_dict(),
        "projected_finish": iso(projected),
        "on_time": on_time(intent.status, intent.deadline, projected),
        "completed_at": iso(intent.completed_at),
        "notified_at": iso(intent.notified_at),
        "overdue_at": iso(intent.overdue_at),
        "sources": list(intent.keys),
    }


def status_of(db: StateDB, settings: GraceSettings, intent_id: int, now: datetime) -> dict[str, Any]:
    intent = db.get_intent(intent_id)
    if intent is None:
        raise GraceError(f"no intent #{intent_id} (grace intent list shows them)")
    return describe(db, settings, intent, now)


def overview(db: StateDB, settings: GraceSettings, now: datetime, *, open_only: bool = False) -> list[dict[str, Any]]:
    """Every intent (or only the open and overdue ones), oldest first, described."""
    return [describe(db, settings, row, now) for row in db.list_intents(LIVE_STATUSES if open_only else None)]


def reembed_model(client: Any, model: str | None) -> tuple[str, str]:
    """The embedder's code version and name when `model` names the configured embedder (its
    model name, engine, `engine:model` or code version): only it can re-embed anything."""
    code = client.code_version()
    if model and model in {code, client.model_name, f"{client.engine}:{client.model_name}", client.engine}:
        return code, client.model_name
    raise GraceError(
        f"model {model!r} is not the configured embedder ({client.engine} {client.model_name}, code version "
        f"{code}): configure it (GRACE_EMBEDDER, GRACE_EMBEDDING_MODEL) and submit again"
    )


def submit_request(
    db: StateDB,
    settings: GraceSettings,
    kind: str,
    refs: Sequence[str | Path],
    *,
    by: str | None,
    model: str | None,
    embedder: Callable[[], Any],
    description: str | None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """What `Grace.submit_intent` does: resolve the refs (dropping files Grace does not know),
    check the model of a reembed intent against the configured embedder, submit, describe."""
    code = label = None
    if kind == "reembed":
        if refs:
            raise GraceError("a reembed intent covers every searchable source: give no sources")
        code, label = reembed_model(embedder(), model)
    sources = resolve_refs(settings, db, refs) if kind in KINDS and kind != "reembed" else []
    intent = submit(
        db,
        settings,
        kind=kind,
        sources=sources,
        by=by,
        model=code,
        model_label=label,
        actor=actor,
        now=now,
        description=description,
    )
    return describe(db, settings, intent, now)

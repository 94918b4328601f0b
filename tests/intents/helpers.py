"""Shared by the intent tests: a source registered straight into the state database (no inbox
scan, no run), in the shape the inbox would leave it."""

from __future__ import annotations

import hashlib
from datetime import datetime

from grace_pipelines.db.state import StateDB
from grace_pipelines.htm.dispatcher import plan
from grace_pipelines.settings import GraceSettings


def register(
    db: StateDB,
    settings: GraceSettings,
    title: str,
    *,
    dropped_at: datetime,
    stage: str | None = None,
    reason: str | None = None,
    kind: str = "document",
    origin: str = "document",
    size: int = 100_000,  # a normal document (30 min SLA by default)
    duration_s: float | None = None,
) -> str:
    digest = hashlib.sha256(title.encode()).hexdigest()
    key = digest[:16]
    ledger = plan(settings, kind=kind, size=size, duration_s=duration_s, origin=origin, dropped_at=dropped_at)
    assert db.register_source(
        key=key,
        sha256=digest,
        filename=title,
        title=title,
        kind=kind,
        ext=title.rsplit(".", 1)[-1],
        origin=origin,
        size=size,
        duration_s=duration_s,
        participants=[],
        inbox_path=None,
        dropped_at=dropped_at,
        **ledger,
    )
    if stage is not None:
        db.set_stage(key, stage, reason=reason)
    return key

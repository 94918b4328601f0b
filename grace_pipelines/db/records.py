"""The rows the repositories hand out: plain frozen dataclasses, no SQLAlchemy, so policy code
(consent rules, HTM sizing) can take them without importing the database layer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SourceRow:
    key: str
    sha256: str
    filename: str
    title: str
    kind: str
    ext: str
    origin: str
    bytes: int
    duration_s: float | None
    participants: list[str]
    inbox_path: str | None
    dropped_at: datetime
    stage: str
    reason: str | None
    updated_at: datetime
    embedding_model: str | None = None
    size_class: str | None = None
    sla_due: datetime | None = None
    route: str | None = None
    priority: int | None = None
    launched_at: datetime | None = None
    run_key: str | None = None
    searchable_at: datetime | None = None
    recorded_at: datetime | None = None  # creation-time tag, else mtime at drop; None before 0008


@dataclass(frozen=True)
class ConsentEvent:
    """One row of the consent ledger: `party` granted or revoked `scope` at `at` (UTC)."""

    party: str
    scope: str
    action: str  # grant | revoke
    at: datetime
    expires_at: datetime | None = None

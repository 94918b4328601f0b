"""Recording a consent decision: validate it, append it to the ledger (one event per scope),
and write the audit entry, in that order, from every entry point (CLI, API, sidecar, policy)."""

from __future__ import annotations

from datetime import datetime

from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.audit.log import record
from grace_pipelines.governance.consent import expand_scope


def record_consent(
    db: StateDB,
    *,
    source_key: str,
    party: str,
    scope: str,
    action: str,
    method: str,
    actor: str,
    expires_at: datetime | None = None,
) -> list[int]:
    """Append `party`'s `action` (grant | revoke) for `scope` (expanded: "all" is both scopes)
    and audit it; returns the new ledger ids."""
    ids = db.append_consent(
        source_key=source_key,
        party=party,
        scopes=expand_scope(scope),
        action=action,
        method=method,
        actor=actor,
        expires_at=expires_at,
    )
    record(
        db,
        actor=actor,
        action=f"consent.{action}",
        subject=source_key,
        details={
            "party": party,
            "scope": scope,
            "method": method,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "ledger_ids": ids,
        },
    )
    return ids

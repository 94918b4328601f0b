"""Recording a consent decision: validate it, append it to the ledger (one event per scope),
and write the audit entry, in that order, from every entry point (CLI, API, sidecar, policy)."""

from __future__ import annotations

import getpass
from datetime import datetime

from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.errors import GraceError
from grace_pipelines.governance.audit.log import record
from grace_pipelines.governance.consent import ConsentError, expand_scope


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


def decide(
    db: StateDB,
    row: SourceRow,
    *,
    party: str,
    scope: str,
    action: str,
    actor: str | None,
    expires_at: datetime | None = None,
) -> list[int]:
    """A person's decision on `row` through the API or CLI, checked first: a known scope, a
    declared participant, an expiry in the future. Refusals are GraceError (a user error)."""
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= utcnow()):
        raise GraceError("expires_at must be a timezone-aware time in the future")
    try:
        expand_scope(scope)
    except ConsentError as exc:
        raise GraceError(str(exc)) from None
    if party not in row.participants:
        raise GraceError(f"{party!r} is not a participant of {row.title} ({', '.join(row.participants)})")
    return record_consent(
        db,
        source_key=row.key,
        party=party,
        scope=scope,
        action=action,
        method="api" if actor is None else ("web" if actor == "web" else "cli"),  # how it was decided
        actor=actor or _whoami(),
        expires_at=expires_at,
    )


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database entry (a container): still record someone
        return "unknown"

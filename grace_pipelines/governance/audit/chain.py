"""The audit log's records and its chain: what one entry says and how its hash is computed.

Kept apart from the log (log.py) and its forensics (forensics.py) so the canonical encoding
that every stored hash depends on lives in one small module that rarely changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

GENESIS_HASH = "0" * 64

#: The actions Grace writes today (others may be added; `append` checks the form, not the list).
KNOWN_ACTIONS = (
    "consent.grant",
    "consent.revoke",
    "consent.expire",
    "purge",
    "key.rotate",
    "vault.set",
    "vault.use",
    "vault.refuse",
    "vault.approve",
    "vault.revoke",
    "quarantine",
)

PROBLEM_KINDS = ("edited", "deleted", "reordered", "inserted")


class AuditError(Exception):
    """The audit log could not do what was asked."""


class AuditSecretError(AuditError, ValueError):
    """`append` was given something that looks like a secret value."""


@dataclass(frozen=True)
class AuditEntry:
    id: int
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for `grace audit tail --json`)."""
        return {
            "id": self.id,
            "seq": self.seq,
            "at": iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class AuditProblem:
    """One finding of `verify`. `seq` is the entry's seq as stored now (for `deleted`, the
    seq of the missing entry); `id` the row id where there is a row."""

    seq: int | None
    kind: str  # one of PROBLEM_KINDS
    detail: str
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "detail": self.detail, "id": self.id}


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    problems: list[AuditProblem] = field(default_factory=list)
    head_seq: int = 0  # the last entry's seq (0 when empty): keep it with head_hash as an anchor
    head_hash: str = GENESIS_HASH
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "seconds": round(self.seconds, 6),
            "problems": [p.to_dict() for p in self.problems],
        }


# ---- canonical encoding ---------------------------------------------------------------------
def iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime given; Grace stores timezone-aware UTC only")
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(
    *, seq: int, at: datetime, actor: str, action: str, subject: str | None, details: Any, prev_hash: str
) -> str:
    """SHA-256 hex of the canonical encoding of one entry (see the module docstring)."""
    payload = {
        "seq": int(seq),
        "at": iso(at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def _self_hash(e: AuditEntry, seq: int | None = None, prev_hash: str | None = None) -> str | None:
    """The hash an entry's content gives at `seq` after `prev_hash` (None: not hashable)."""
    try:
        return entry_hash(
            seq=e.seq if seq is None else seq,
            at=e.at,
            actor=e.actor,
            action=e.action,
            subject=e.subject,
            details=e.details,
            prev_hash=e.prev_hash if prev_hash is None else prev_hash,
        )
    except (TypeError, ValueError):
        return None

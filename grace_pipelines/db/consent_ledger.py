"""The consent ledger: append-only grants and revocations per source, party and scope.
What they mean (who is missing, expiry) is policy: grace_pipelines.governance.consent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from grace_pipelines.db.records import ConsentEvent
from grace_pipelines.db.repository import Repository
from grace_pipelines.db.schema import consent_table, utcnow


class ConsentLedger(Repository):
    """The consent_events table (mixed into StateDB)."""

    def append_consent(
        self,
        *,
        source_key: str,
        party: str,
        scopes: Sequence[str],
        action: str,
        method: str,
        actor: str,
        expires_at: datetime | None = None,
    ) -> list[int]:
        """Append one event per scope; returns the new ledger ids. Validation, scope expansion
        and the audit entry: grace_pipelines.governance.consent_records.record_consent."""
        if action not in ("grant", "revoke"):
            raise ValueError(f"unknown consent action {action!r}")
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValueError("naive datetime given for expires_at; Grace stores timezone-aware UTC only")
        now = utcnow()
        with self.begin() as conn:
            return [
                int(
                    conn.execute(
                        consent_table.insert().values(
                            source_key=source_key,
                            party=party,
                            scope=scope,
                            action=action,
                            method=method,
                            actor=actor,
                            at=now,
                            expires_at=expires_at,
                        )
                    ).inserted_primary_key[0]
                )
                for scope in scopes
            ]

    def consent_events(self, source_key: str) -> list[ConsentEvent]:
        with self.begin() as conn:
            rows = conn.execute(
                consent_table.select().where(consent_table.c.source_key == source_key).order_by(consent_table.c.id)
            )
            return [
                ConsentEvent(party=r.party, scope=r.scope, action=r.action, at=r.at, expires_at=r.expires_at)
                for r in rows
            ]

    def consent_events_for(self, source_keys: Sequence[str]) -> dict[str, list[ConsentEvent]]:
        """`consent_events` of many sources in one query (every key present, maybe empty)."""
        out: dict[str, list[ConsentEvent]] = {key: [] for key in source_keys}
        if not out:
            return out
        with self.begin() as conn:
            rows = conn.execute(
                consent_table.select().where(consent_table.c.source_key.in_(list(out))).order_by(consent_table.c.id)
            )
            for r in rows:
                out[r.source_key].append(
                    ConsentEvent(party=r.party, scope=r.scope, action=r.action, at=r.at, expires_at=r.expires_at)
                )
        return out

    def consent_rows(self, after_id: int = 0, source_key: str | None = None) -> list[dict[str, Any]]:
        query = consent_table.select().where(consent_table.c.id > after_id)
        if source_key:
            query = query.where(consent_table.c.source_key == source_key)
        with self.begin() as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(consent_table.c.id))]

    def expired_grants(self, *, after: datetime | None, until: datetime) -> list[dict[str, Any]]:
        """Grants whose expiry fell in (after, until]."""
        query = consent_table.select().where(
            consent_table.c.action == "grant",
            consent_table.c.expires_at.is_not(None),
            consent_table.c.expires_at <= until,
        )
        if after is not None:
            query = query.where(consent_table.c.expires_at > after)
        with self.begin() as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(consent_table.c.id))]

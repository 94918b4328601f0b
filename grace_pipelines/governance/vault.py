"""The vault: credentials encrypted at rest, used only with an approval for a purpose.

A secret (say the OpenAI API key) is stored sealed with the same AES-256-GCM envelope as the
blob store (key rotation re-wraps it too). Using it needs an active approval for a named
purpose (`embedding`, `transcription`, ...), given by a person with `grace secrets approve`,
optionally with a time limit. A use without approval is refused with a message naming the
command that approves it, and the request waits in `grace secrets pending`. Every set, use,
approval, revocation and refusal is written to the audit log; values never are, nor to logs,
metadata or exceptions.

Policy and storage only (SQLAlchemy + crypto): no Dagster imports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from grace_pipelines.crypto.envelope import CryptoError, open_blob, seal
from grace_pipelines.crypto.keyring import Keyring
from grace_pipelines.db.schema import (
    approvals_table,
    requests_table,
    secrets_table,
    utcnow,
)
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.audit.log import record

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_PURPOSE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
PREFIX = "vault/"


class VaultError(ValueError):
    """A vault request is invalid (bad name, unknown secret); the message says why."""


class VaultRefused(PermissionError):
    """A use without an active approval; the message names the approving command."""


def aad_for(name: str) -> bytes:
    return f"{PREFIX}{name}".encode()


def _check(name: str, purpose: str | None = None) -> None:
    if not _NAME.match(name or ""):
        raise VaultError(f"invalid secret name {name!r}: lower-case letters, digits, '_', '.', '-' (max 64)")
    if purpose is not None and not _PURPOSE.match(purpose or ""):
        raise VaultError(f"invalid purpose {purpose!r}: lower-case letters, digits, '_', '.', ':', '-' (max 64)")


@dataclass
class Vault:
    db: StateDB
    keyring: Keyring

    def set(self, name: str, value: str, *, actor: str) -> None:
        _check(name)
        if not value:
            raise VaultError(f"secret {name!r}: the value is empty")
        now = utcnow()
        with self.keyring.writer_lock():
            sealed = seal(value.encode("utf-8"), self.keyring, aad=aad_for(name))
            with self.db.begin() as conn:
                exists = conn.execute(sa.select(secrets_table.c.name).where(secrets_table.c.name == name)).first()
                if exists:
                    conn.execute(
                        secrets_table.update()
                        .where(secrets_table.c.name == name)
                        .values(sealed=sealed, updated_at=now, updated_by=actor)
                    )
                else:
                    conn.execute(
                        secrets_table.insert().values(
                            name=name, sealed=sealed, created_at=now, updated_at=now, updated_by=actor
                        )
                    )
        record(self.db, actor=actor, action="vault.set", subject=name, details={"replaced": bool(exists)})

    def _exists(self, name: str) -> bool:
        with self.db.begin() as conn:
            return conn.execute(sa.select(secrets_table.c.name).where(secrets_table.c.name == name)).first() is not None

    def approve(self, name: str, purpose: str, *, actor: str, expires_at: datetime | None = None) -> None:
        _check(name, purpose)
        if not self._exists(name):
            raise VaultError(f"no secret named {name!r}; set it first: grace secrets set {name}")
        now = utcnow()
        with self.db.begin() as conn:
            conn.execute(
                approvals_table.insert().values(
                    name=name, purpose=purpose, approved_by=actor, approved_at=now, expires_at=expires_at
                )
            )
            conn.execute(
                requests_table.update()
                .where(
                    requests_table.c.name == name,
                    requests_table.c.purpose == purpose,
                    requests_table.c.resolved_at.is_(None),
                )
                .values(resolved_at=now)
            )
        record(
            self.db,
            actor=actor,
            action="vault.approve",
            subject=name,
            details={"purpose": purpose, "expires_at": expires_at.isoformat() if expires_at else None},
        )

    def refuse(self, name: str, purpose: str, *, actor: str) -> int:
        """Close the pending requests to use `name` for `purpose` without approving them (the
        engine keeps being refused); returns how many were closed. Audited as `vault.refuse`."""
        _check(name, purpose)
        with self.db.begin() as conn:
            closed = (
                conn.execute(
                    requests_table.update()
                    .where(
                        requests_table.c.name == name,
                        requests_table.c.purpose == purpose,
                        requests_table.c.resolved_at.is_(None),
                    )
                    .values(resolved_at=utcnow())
                ).rowcount
                or 0
            )
        if not closed:
            raise VaultError(f"no pending request to use {name!r} for {purpose!r}")
        record(
            self.db, actor=actor, action="vault.refuse", subject=name, details={"purpose": purpose, "requests": closed}
        )
        return closed

    def revoke(self, name: str, purpose: str | None = None, *, actor: str) -> int:
        """Revoke active approvals of `name` (for one purpose, or all); returns how many."""
        _check(name, purpose)
        now = utcnow()
        query = approvals_table.update().where(approvals_table.c.name == name, approvals_table.c.revoked_at.is_(None))
        if purpose:
            query = query.where(approvals_table.c.purpose == purpose)
        with self.db.begin() as conn:
            count = conn.execute(query.values(revoked_at=now)).rowcount or 0
        record(
            self.db, actor=actor, action="vault.revoke", subject=name, details={"purpose": purpose, "approvals": count}
        )
        return count

    def _approved(self, name: str, purpose: str) -> bool:
        now = utcnow()
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(approvals_table.c.expires_at).where(
                    approvals_table.c.name == name,
                    approvals_table.c.purpose == purpose,
                    approvals_table.c.revoked_at.is_(None),
                )
            ).all()
        return any(r.expires_at is None or r.expires_at > now for r in rows)

    def use(self, name: str, purpose: str, *, actor: str) -> str:
        """The value, if `name` is approved for `purpose`; else VaultRefused (and audited)."""
        _check(name, purpose)
        if not self._exists(name):
            record(
                self.db,
                actor=actor,
                action="vault.refuse",
                subject=name,
                details={"purpose": purpose, "why": "no such secret"},
            )
            raise VaultRefused(f"no secret named {name!r} in the vault; set it with: grace secrets set {name}")
        if not self._approved(name, purpose):
            with self.db.begin() as conn:
                waiting = conn.execute(
                    sa.select(requests_table.c.id).where(
                        requests_table.c.name == name,
                        requests_table.c.purpose == purpose,
                        requests_table.c.resolved_at.is_(None),
                    )
                ).first()
                if not waiting:
                    conn.execute(
                        requests_table.insert().values(name=name, purpose=purpose, requested_by=actor, at=utcnow())
                    )
            record(
                self.db,
                actor=actor,
                action="vault.refuse",
                subject=name,
                details={"purpose": purpose, "why": "not approved"},
            )
            raise VaultRefused(
                f"secret {name!r} is not approved for purpose {purpose!r}; approve it with: "
                f"grace secrets approve {name} --purpose {purpose}"
            )
        with self.db.begin() as conn:
            sealed = conn.execute(sa.select(secrets_table.c.sealed).where(secrets_table.c.name == name)).scalar_one()
        try:
            value = open_blob(bytes(sealed), self.keyring, aad=aad_for(name), name=f"{PREFIX}{name}").decode("utf-8")
        except CryptoError as exc:
            raise VaultError(str(exc)) from None
        record(self.db, actor=actor, action="vault.use", subject=name, details={"purpose": purpose})
        return value

    def list(self) -> list[dict[str, Any]]:
        now = utcnow()
        with self.db.begin() as conn:
            secrets = conn.execute(
                sa.select(
                    secrets_table.c.name,
                    secrets_table.c.created_at,
                    secrets_table.c.updated_at,
                    secrets_table.c.updated_by,
                ).order_by(secrets_table.c.name)
            ).all()
            approvals = conn.execute(approvals_table.select().where(approvals_table.c.revoked_at.is_(None))).all()
        out = []
        for s in secrets:
            active = [a for a in approvals if a.name == s.name and (a.expires_at is None or a.expires_at > now)]
            out.append(
                {
                    "name": s.name,
                    "created_at": s.created_at.isoformat(),
                    "updated_at": s.updated_at.isoformat(),
                    "updated_by": s.updated_by,
                    "approvals": [
                        {
                            "purpose": a.purpose,
                            "approved_by": a.approved_by,
                            "expires_at": a.expires_at.isoformat() if a.expires_at else None,
                        }
                        for a in active
                    ],
                }
            )
        return out

    def pending(self) -> list[dict[str, Any]]:
        with self.db.begin() as conn:
            rows = conn.execute(
                requests_table.select().where(requests_table.c.resolved_at.is_(None)).order_by(requests_table.c.id)
            ).all()
        return [
            {
                "name": r.name,
                "purpose": r.purpose,
                "requested_by": r.requested_by,
                "at": r.at.isoformat(),
                "approve": f"grace secrets approve {r.name} --purpose {r.purpose}",
            }
            for r in rows
        ]


class VaultBlobs:
    """The vault's sealed values as a rotation BlobSet (names `vault/<name>`)."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def names(self) -> Iterable[str]:
        with self.db.begin() as conn:
            return [
                f"{PREFIX}{n}" for (n,) in conn.execute(sa.select(secrets_table.c.name).order_by(secrets_table.c.name))
            ]

    def read(self, name: str) -> bytes:
        with self.db.begin() as conn:
            return bytes(
                conn.execute(
                    sa.select(secrets_table.c.sealed).where(secrets_table.c.name == name[len(PREFIX) :])
                ).scalar_one()
            )

    def write(self, name: str, data: bytes) -> None:
        with self.db.begin() as conn:
            conn.execute(secrets_table.update().where(secrets_table.c.name == name[len(PREFIX) :]).values(sealed=data))


class StoreAndVaultBlobs:
    """Every sealed thing Grace keeps: the blob store's files and the vault's values, as one
    rotation BlobSet (a rotation must re-wrap both before it retires a key)."""

    def __init__(self, folder: Any, vault: VaultBlobs) -> None:
        self.folder, self.vault = folder, vault

    def names(self) -> list[str]:
        return [*self.folder.names(), *self.vault.names()]

    def _of(self, name: str) -> Any:
        return self.vault if name.startswith(PREFIX) else self.folder

    def read(self, name: str) -> bytes:
        return self._of(name).read(name)

    def read_head(self, name: str, size: int) -> bytes:
        return self.read(name)[:size] if name.startswith(PREFIX) else self.folder.read_head(name, size)

    def write(self, name: str, data: bytes) -> None:
        self._of(name).write(name, data)

    def sync(self) -> None:
        self.folder.sync()

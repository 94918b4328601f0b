"""The log itself: serialised appends (one chain, never forked, across threads and processes),
reads, verification against the chain and the anchor, and `record` (the redacting append that
the rest of Grace calls)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_incrementing,
)

from grace_pipelines.db.schema import audit_table, utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.audit.anchor import AnchorError, AuditAnchor
from grace_pipelines.governance.audit.chain import (
    GENESIS_HASH,
    PROBLEM_KINDS,
    AuditEntry,
    AuditProblem,
    AuditReport,
    AuditSecretError,
    canonical_json,
    entry_hash,
)
from grace_pipelines.governance.audit.forensics import _check_anchor, diagnose
from grace_pipelines.governance.audit.redaction import (
    _looks_like_secret_value,
    check_no_secrets,
)

# pg_advisory_xact_lock key: a fixed 63-bit number derived from the table's name.
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"grace_pipelines.audit_log").digest()[:8], "big") >> 1
_ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


def _normalise_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise TypeError(f"audit details must be a mapping (a JSON object), not {type(details).__name__}")
    try:
        text = canonical_json(dict(details))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"audit details must be plain JSON (str, int, float, bool, None, lists, dicts): {exc}"
        ) from None
    return json.loads(text)


# ---- the log --------------------------------------------------------------------------------
def _row_entry(row: Any) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        id=int(m["id"]),
        seq=int(m["seq"]),
        at=m["at"],
        actor=m["actor"],
        action=m["action"],
        subject=m["subject"],
        details=m["details"] if m["details"] is not None else {},
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )


class AuditLog:
    """The audit log of one state database. ``AuditLog(url)`` or ``AuditLog(state_db)``."""

    def __init__(self, db: str | StateDB | Engine, anchor: Any | None = None) -> None:
        """`anchor`: an `audit_anchor.AuditAnchor`; a StateDB that knows its keys folder gives one."""
        if isinstance(db, str):
            db = StateDB(db)
        if anchor is None and isinstance(db, StateDB) and db.keys_dir:
            anchor = AuditAnchor(db.keys_dir)
        self.engine: Engine = db if isinstance(db, Engine) else db.engine
        self.dialect = self.engine.dialect.name
        self.anchor = anchor

    # ---- writing ----------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        """A transaction that holds the log's append lock until it ends."""
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # the database's write lock, waits busy_timeout
                try:
                    yield conn
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
            return
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            else:  # other backends: lock the current last row
                conn.execute(sa.select(audit_table.c.id).order_by(audit_table.c.seq.desc()).limit(1).with_for_update())
            yield conn

    def append(
        self, actor: str, action: str, subject: str | None, details: Mapping[str, Any] | None = None
    ) -> AuditEntry:
        """Add one entry at the end of the chain and return it.

        `actor`: who (a user, 'cli', 'api', 'sensor:consent', 'schedule:key_rotation', ...);
        `action`: dotted lower-case name (see KNOWN_ACTIONS); `subject`: what it is about (a
        source key, a secret's *name*, a key id) or None; `details`: a JSON object of counts,
        ids, reasons. Never secret values: keys named like a credential are refused
        (AuditSecretError), see `check_no_secrets`.
        """
        if not isinstance(actor, str) or not actor.strip():
            raise ValueError("audit actor must be a non-empty string (who did it)")
        if not isinstance(action, str) or len(action) > 64 or not _ACTION_RE.match(action):
            raise ValueError(f"audit action {action!r} must be dotted lower-case words, e.g. 'consent.grant'")
        if subject is not None and not isinstance(subject, str):
            raise TypeError("audit subject must be a string or None")
        body = _normalise_details(details)
        check_no_secrets(body)
        for name, text in (("actor", actor), ("subject", subject or "")):
            if _looks_like_secret_value(text):
                raise AuditSecretError(
                    f"audit entries must never carry secret values: the {name} looks like a credential"
                )

        # the lock serialises appends; the unique index on `seq` is the backstop: a lost race retries
        for attempt in Retrying(
            retry=retry_if_exception_type(sa.exc.IntegrityError),
            stop=stop_after_attempt(5),
            wait=wait_incrementing(start=0.01, increment=0.01),
            reraise=True,
        ):
            with attempt:
                entry = self._append_locked(actor, action, subject, body)
        if self.anchor is not None:
            self.anchor.advance(entry.seq, entry.hash)  # after the commit: the anchor never points past the log
        return entry

    def _append_locked(self, actor: str, action: str, subject: str | None, body: dict[str, Any]) -> AuditEntry:
        with self._locked() as conn:
            last = conn.execute(
                sa.select(audit_table.c.seq, audit_table.c.hash).order_by(audit_table.c.seq.desc()).limit(1)
            ).first()
            seq = 1 if last is None else int(last.seq) + 1
            prev = GENESIS_HASH if last is None else last.hash
            at = utcnow()
            digest = entry_hash(
                seq=seq, at=at, actor=actor, action=action, subject=subject, details=body, prev_hash=prev
            )
            result = conn.execute(
                audit_table.insert().values(
                    seq=seq,
                    at=at,
                    actor=actor,
                    action=action,
                    subject=subject,
                    details=body,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            row_id = int(result.inserted_primary_key[0])
        return AuditEntry(row_id, seq, at, actor, action, subject, body, prev, digest)

    # ---- reading ----------------------------------------------------------------------------
    def tail(self, n: int = 20) -> list[AuditEntry]:
        """The last `n` entries, oldest first (as `tail` prints them)."""
        if n <= 0:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                audit_table.select().order_by(audit_table.c.seq.desc(), audit_table.c.id.desc()).limit(n)
            )
            return [_row_entry(r) for r in rows][::-1]

    def entries(self, after_seq: int = 0) -> list[AuditEntry]:
        """Every entry after `after_seq`, in chain order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                audit_table.select().where(audit_table.c.seq > after_seq).order_by(audit_table.c.seq, audit_table.c.id)
            )
            return [_row_entry(r) for r in rows]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(audit_table)).scalar_one())

    # ---- verifying --------------------------------------------------------------------------
    def verify(self, anchor: tuple[int, str] | None = None) -> AuditReport:
        """Check the whole chain; name each edited, deleted, reordered or inserted entry.

        `anchor`: a (seq, hash) pair kept from an earlier report's head; the entry must still
        be there with that hash (catches truncation and rewrites the chain alone cannot).
        """
        start = time.perf_counter()
        rows = self.entries()
        problems = diagnose(rows)
        if anchor is None and self.anchor is not None:
            try:
                anchor = self.anchor.read()
            except AnchorError as exc:
                problems.append(AuditProblem(None, "edited", str(exc)))
        if anchor is not None:
            problems.extend(_check_anchor(rows, anchor))
        problems.sort(key=lambda p: (p.seq if p.seq is not None else 0, PROBLEM_KINDS.index(p.kind)))
        head = rows[-1] if rows else None
        return AuditReport(
            ok=not problems,
            entries=len(rows),
            problems=problems,
            head_seq=head.seq if head else 0,
            head_hash=head.hash if head else GENESIS_HASH,
            seconds=time.perf_counter() - start,
        )


def record(db: StateDB, *, actor: str, action: str, subject: str, details: dict[str, Any] | None = None) -> None:
    """Append to the audit log of `db`. A hostile file name shaped like a credential must not
    stop the work or leak: the event is kept, the text that looked like a secret is dropped."""
    log = AuditLog(db)
    try:
        log.append(actor=actor, action=action, subject=subject, details=details)
    except AuditSecretError:
        log.append(
            actor="redacted" if actor else actor,
            action=action,
            subject="(redacted)",
            details={"redacted": "a value looked like a credential and was not recorded"},
        )

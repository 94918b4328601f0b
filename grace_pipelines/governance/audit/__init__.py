"""The audit log: append-only, hash-chained, verifiable, in the app state database.

Every consent change, purge, key rotation, credential use / approval / refusal and
quarantine is one entry. Entries form a chain: each carries the hash of the one before it
(`prev_hash`; the first carries 64 zeros), and its own `hash` is the SHA-256 of a canonical
encoding of what it says::

    sha256(json.dumps({"seq", "at", "actor", "action", "subject", "details", "prev_hash"},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False))

with `at` as ISO-8601 UTC with microseconds (``2026-11-24T10:00:00.123456+00:00``) and
`details` as the JSON object stored (keys sorted, no NaN/Infinity). Change, delete, insert
or move one row and `AuditLog.verify()` says which entry and how.

What the chain proves, and what it cannot: the hash is not keyed, so someone with write
access to the database who recomputes every hash from the tampered entry to the end (or
appends a correct-looking entry at the end) is not detected by the chain alone. Keep the
head that `verify()` reports (`AuditReport.head_seq`, `.head_hash`) somewhere else (a
Dagster materialization, a printout) and pass it back as ``verify(anchor=(seq, hash))``:
then truncation and wholesale rewrites are caught too.

**Never pass secret values.** Entries are kept forever and are not encrypted: name the
secret (`subject="openai"`), never its value. `append` refuses `details` keys named like a
credential (secret, password, token, api_key, value, ...) and strings that look like one
(``sk-...``, PEM private keys, ...) with `AuditSecretError`, without echoing the value.

Appends are serialised across threads and processes: PostgreSQL takes a transaction-level
advisory lock, SQLite a ``BEGIN IMMEDIATE`` write lock; the unique index on `seq` is the
backstop (a lost race is retried), so the chain never forks.

Policy code: SQLAlchemy only, no Dagster imports.
"""

from grace_pipelines.governance.audit.chain import (
    GENESIS_HASH,
    KNOWN_ACTIONS,
    PROBLEM_KINDS,
    AuditEntry,
    AuditError,
    AuditProblem,
    AuditReport,
    AuditSecretError,
    canonical_json,
    entry_hash,
    iso,
)
from grace_pipelines.governance.audit.forensics import diagnose
from grace_pipelines.governance.audit.log import AuditLog, record
from grace_pipelines.governance.audit.redaction import (
    check_no_secrets,
    secret_key_reason,
)

__all__ = [
    "GENESIS_HASH",
    "KNOWN_ACTIONS",
    "PROBLEM_KINDS",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "AuditProblem",
    "AuditReport",
    "AuditSecretError",
    "canonical_json",
    "check_no_secrets",
    "diagnose",
    "entry_hash",
    "iso",
    "record",
    "secret_key_reason",
]

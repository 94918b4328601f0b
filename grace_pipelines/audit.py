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

from __future__ import annotations

import bisect
import hashlib
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import pairwise
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from grace_pipelines.state import StateDB, UTCDateTime, metadata, utcnow

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

audit_table = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.Text, nullable=True),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ux_audit_log_seq", "seq", unique=True),
)

# pg_advisory_xact_lock key: a fixed 63-bit number derived from the table's name.
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"grace_pipelines.audit_log").digest()[:8], "big") >> 1
_ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


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


# ---- the secret guard ----------------------------------------------------------------------
_SECRET_WORDS = {
    "secret", "secrets", "password", "passwords", "passwd", "passphrase", "pwd", "token", "tokens",
    "value", "values", "credential", "credentials", "apikey", "privatekey", "plaintext", "cookie",
}
_SECRET_PAIRS = {("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("auth", "key")}
# A key ending in one of these names a secret without holding it: secret_name, token_count.
_HARMLESS_LAST = {"name", "names", "id", "ids", "count", "counts", "purpose", "kind", "type", "version",
                  "ttl", "expires", "expiry", "at", "age", "status", "scope", "n"}
_SECRET_VALUE_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bsk-(proj-)?[A-Za-z0-9_\-]{16,}"),  # OpenAI-style API keys
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub tokens
    re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),  # Slack tokens
    re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),  # JWTs
]


def _words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def secret_key_reason(key: str) -> str | None:
    """Why a details key looks like it holds a secret value, or None."""
    words = _words(key)
    if not words or words[-1] in _HARMLESS_LAST:
        return None
    joined = "".join(words)
    if joined in _SECRET_WORDS:
        return "is named like a secret"
    for word in words:
        if word in _SECRET_WORDS:
            return f"contains {word!r}"
    for a, b in pairwise(words):
        if (a, b) in _SECRET_PAIRS:
            return f"contains '{a}_{b}'"
    return None


def _looks_like_secret_value(text: str) -> bool:
    return any(p.search(text) for p in _SECRET_VALUE_PATTERNS)


def check_no_secrets(details: Any, *, path: str = "details") -> None:
    """Raise AuditSecretError if `details` (nested dicts and lists included) has a key named
    like a credential or a string shaped like one. The message never repeats the value."""
    if isinstance(details, Mapping):
        for key, value in details.items():
            where = f"{path}.{key}"
            reason = secret_key_reason(str(key))
            if reason:
                raise AuditSecretError(
                    f"audit entries must never carry secret values: key {where!r} {reason}; "
                    "record the secret's name (as the subject, or under a key such as 'secret_name'), "
                    "never its value"
                )
            check_no_secrets(value, path=where)
    elif isinstance(details, (list, tuple)):
        for i, value in enumerate(details):
            check_no_secrets(value, path=f"{path}[{i}]")
    elif isinstance(details, str) and _looks_like_secret_value(details):
        raise AuditSecretError(
            f"audit entries must never carry secret values: {path} looks like a credential "
            "(API key, token or private key); record the secret's name, never its value"
        )


def _normalise_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise TypeError(f"audit details must be a mapping (a JSON object), not {type(details).__name__}")
    try:
        text = canonical_json(dict(details))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit details must be plain JSON (str, int, float, bool, None, lists, dicts): {exc}") from None
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


class AuditLog:
    """The audit log of one state database. ``AuditLog(url)`` or ``AuditLog(state_db)``."""

    def __init__(self, db: str | StateDB | Engine, anchor: Any | None = None) -> None:
        """`anchor`: an `audit_anchor.AuditAnchor`; a StateDB that knows its keys folder gives one."""
        if isinstance(db, str):
            db = StateDB(db)
        if anchor is None and isinstance(db, StateDB) and db.keys_dir:
            from grace_pipelines.audit_anchor import AuditAnchor

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
                conn.execute(
                    sa.select(audit_table.c.id).order_by(audit_table.c.seq.desc()).limit(1).with_for_update()
                )
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
                raise AuditSecretError(f"audit entries must never carry secret values: the {name} looks like a credential")

        for attempt in range(5):
            try:
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
                            seq=seq, at=at, actor=actor, action=action, subject=subject,
                            details=body, prev_hash=prev, hash=digest,
                        )
                    )
                    row_id = int(result.inserted_primary_key[0])
                if self.anchor is not None:
                    self.anchor.advance(seq, digest)  # after the commit: the anchor never points past the log
                return AuditEntry(row_id, seq, at, actor, action, subject, body, prev, digest)
            except sa.exc.IntegrityError:  # lost a race the lock should have prevented: retry
                if attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    # ---- reading ----------------------------------------------------------------------------
    def tail(self, n: int = 20) -> list[AuditEntry]:
        """The last `n` entries, oldest first (as `tail` prints them)."""
        if n <= 0:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(audit_table.select().order_by(audit_table.c.seq.desc(), audit_table.c.id.desc()).limit(n))
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
            from grace_pipelines.audit_anchor import AnchorError

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


def _check_anchor(rows: Sequence[AuditEntry], anchor: tuple[int, str]) -> list[AuditProblem]:
    seq, digest = int(anchor[0]), str(anchor[1])
    if seq <= 0:
        return []
    holder = [r for r in rows if r.hash == digest]
    if holder:
        return []
    at_seq = [r for r in rows if r.seq == seq]
    if at_seq:
        return [AuditProblem(seq, "edited", f"entry {seq} no longer has the anchored hash {digest[:12]}…", at_seq[0].id)]
    last = rows[-1].seq if rows else 0
    return [AuditProblem(seq, "deleted", f"the anchored entry {seq} (hash {digest[:12]}…) is gone; the log now ends at {last}")]


# ---- diagnosis ------------------------------------------------------------------------------
def diagnose(rows: Sequence[AuditEntry]) -> list[AuditProblem]:
    """Find and explain tampering in `rows` (ordered by seq).

    The fast path checks the chain as stored: seq 1..N, each hash right, each prev_hash the
    hash before, ids rising with seq. When anything is off it rebuilds the original order from
    the hash links (which an editor cannot fake without recomputing every later hash), places
    every row at its original position, and compares that with what is stored.
    """
    ok = True
    prev = GENESIS_HASH
    last_id = None
    for i, r in enumerate(rows, start=1):
        if r.seq != i or r.prev_hash != prev or _self_hash(r) != r.hash or (last_id is not None and r.id <= last_id):
            ok = False
            break
        prev, last_id = r.hash, r.id
    if ok:
        return []
    return _Diagnosis(rows).run()


class _Diagnosis:
    def __init__(self, rows: Sequence[AuditEntry]) -> None:
        self.rows = list(rows)
        self.problems: list[AuditProblem] = []
        self.flagged: set[int] = set()  # row ids already explained
        self.reported: set[tuple[int, str]] = set()
        self.budget = 1_000_000  # hashes to spend on placing fragments (bounds the worst case)

    def add(self, row: AuditEntry | None, kind: str, detail: str, seq: int | None = None) -> None:
        if row is not None:
            if (row.id, kind) in self.reported:
                return
            self.reported.add((row.id, kind))
            self.flagged.add(row.id)
        self.problems.append(AuditProblem(row.seq if row is not None and seq is None else seq, kind, detail,
                                          row.id if row is not None else None))

    def run(self) -> list[AuditProblem]:
        rows = self.rows
        by_hash: dict[str, list[AuditEntry]] = {}
        for r in rows:
            by_hash.setdefault(r.hash, []).append(r)
        children: dict[str, list[AuditEntry]] = {}  # parent hash (or genesis) -> rows linking to it
        for r in rows:
            children.setdefault(r.prev_hash, []).append(r)

        # 1. the longest chain of hash links from genesis is the original log
        depth_memo: dict[int, int] = {}

        def depth(r: AuditEntry) -> int:  # longest run of links from r (iterative: logs are long)
            stack, on_stack = [r], {r.id}
            while stack:
                top = stack[-1]
                if top.id in depth_memo:
                    stack.pop()
                    on_stack.discard(top.id)
                    continue
                kids = [k for k in children.get(top.hash, []) if k.id not in on_stack]  # a loop ends here
                pending = [k for k in kids if k.id not in depth_memo]
                if pending:
                    stack.extend(pending)
                    on_stack.update(k.id for k in pending)
                    continue
                depth_memo[top.id] = 1 + max((depth_memo[k.id] for k in kids), default=0)
                stack.pop()
                on_stack.discard(top.id)
            return depth_memo[r.id]

        def chain_from(start_kids: list[AuditEntry], seen: set[int]) -> list[AuditEntry]:
            chain: list[AuditEntry] = []
            kids = start_kids
            while True:
                kids = [k for k in kids if k.id not in seen]
                if not kids:
                    return chain
                best = max(kids, key=lambda k: (depth(k), -k.id))
                chain.append(best)
                seen.add(best.id)
                kids = [k for k in children.get(best.hash, []) if k.id != best.id]

        seen: set[int] = set()
        main = chain_from(children.get(GENESIS_HASH, []), seen)
        orig: dict[int, int] = {r.id: i for i, r in enumerate(main, start=1)}  # row id -> original seq
        segments: list[list[AuditEntry]] = [main] if main else []
        main_ids = {r.id for r in main}

        # 2. branches off the main chain (a forged row linked into the middle)
        branch_rows: list[AuditEntry] = []
        for r in rows:
            if r.id in seen:
                continue
            parent = by_hash.get(r.prev_hash, [])
            if r.prev_hash == GENESIS_HASH or any(p.id in main_ids for p in parent):
                branch = [r] + chain_from([k for k in children.get(r.hash, []) if k.id != r.id], seen | {r.id})
                for b in branch:
                    seen.add(b.id)
                branch_rows.extend(branch)
        for b in branch_rows:
            parent = next((p for p in by_hash.get(b.prev_hash, []) if p.id in orig), None)
            where = f"after entry {parent.seq}" if parent else "at the start"
            self.add(b, "inserted", f"entry {b.seq} (id {b.id}) is not part of the chain: it was slipped in {where}, "
                                    "whose original successor still links to it directly")

        # 3. fragments: rows whose predecessor is gone (deletion, or an edited hash/prev_hash)
        heads = [r for r in rows if r.id not in seen and not any(p.id != r.id for p in by_hash.get(r.prev_hash, []))]
        fragments: list[list[AuditEntry]] = []
        for h in sorted(heads, key=lambda r: (r.seq, r.id)):
            if h.id in seen:
                continue
            seen.add(h.id)
            fragments.append([h] + chain_from([k for k in children.get(h.hash, []) if k.id != h.id], seen))
        leftovers = [r for r in rows if r.id not in seen]  # cycles and such: nothing to place them by
        for r in leftovers:
            self.add(r, "inserted", f"entry {r.seq} (id {r.id}) links into a loop of hashes: it was forged")

        max_seq = max([r.seq for r in rows] + [len(rows)])
        taken = set(orig.values())
        for frag in fragments:
            start = self._place(frag, max_seq)
            if start is None:
                for r in frag:
                    self.add(r, "inserted", f"entry {r.seq} (id {r.id}) fits nowhere in the chain: its hash matches "
                                            "no position and its prev_hash no entry"
                                            + (" (or the last entry's hashes were edited)" if r.seq == max_seq else ""))
                continue
            if any(start + i in taken for i in range(len(frag))):
                for r in frag:
                    self.add(r, "inserted", f"entry {r.seq} (id {r.id}) claims position {start} that the chain "
                                            "already holds: it was forged")
                continue
            for i, r in enumerate(frag):
                orig[r.id] = start + i
                taken.add(start + i)
            segments.append(frag)

        # 4. gaps between segments: deleted entries, or an entry whose hash was recomputed
        segments.sort(key=lambda seg: orig[seg[0].id])
        covered_to = 0
        prev_tail: AuditEntry | None = None
        for seg in segments:
            head = seg[0]
            first = orig[head.id]
            if first > covered_to + 1:
                missing = list(range(covered_to + 1, first))
                for m in missing:
                    self.problems.append(AuditProblem(
                        m, "deleted",
                        f"entry {m} is missing: entry {first} (now stored as seq {head.seq}, id {head.id}) "
                        f"links to a hash no row has" + self._renumber_note(seg, orig),
                    ))
            elif first == covered_to + 1 and head.prev_hash != (prev_tail.hash if prev_tail else GENESIS_HASH):
                if _self_hash(head, seq=first) != head.hash:
                    pass  # the head itself was edited (its prev_hash or content): reported below
                elif prev_tail is not None:
                    self.add(prev_tail, "edited", f"entry {prev_tail.seq} (id {prev_tail.id}) was changed and its hash "
                                                  f"recomputed: entry {head.seq} still links to its original hash")
            covered_to = max(covered_to, orig[seg[-1].id])
            prev_tail = seg[-1]

        # 5. content: every placed row must hash right at its original position
        placed = [r for r in rows if r.id in orig and r.id not in self.flagged]
        bad = [r for r in placed if _self_hash(r, seq=orig[r.id]) != r.hash]
        moved_content: set[int] = set()
        if 1 < len(bad) <= 500:
            for x in bad:
                for y in bad:
                    if x.id != y.id and _self_hash(x, seq=orig[y.id], prev_hash=y.prev_hash) == y.hash:
                        moved_content.add(x.id)
                        self.add(x, "reordered", f"entry {x.seq} (id {x.id}) holds the content of entry {orig[y.id]}: "
                                                 "rows were swapped or moved")
                        break
        for r in bad:
            if r.id in moved_content:
                continue
            self.add(r, "edited", f"entry {r.seq} (id {r.id}) was edited: what it says no longer matches its hash")

        # 6. order: seq as stored, and row ids, must rise with the original order
        in_order = sorted((r for r in placed if r.id not in self.flagged), key=lambda r: orig[r.id])
        for r in self._out_of_order(in_order, key=lambda r: r.seq, orig=orig):
            self.add(r, "reordered", f"entry {r.seq} (id {r.id}) is the original entry {orig[r.id]}: "
                                     "it was moved to another position")
        in_order = [r for r in in_order if r.id not in self.flagged]
        for r in self._out_of_order(in_order, key=lambda r: r.id, orig=orig):
            self.add(r, "reordered", f"entry {r.seq} (id {r.id}) was rewritten into another row: "
                                     "row ids no longer follow the chain order")

        # 7. renumbering alone (seq as stored != original, order kept, nothing else explains it)
        if not self.problems:
            shifted = [r for r in in_order if r.seq != orig[r.id]]
            if shifted:
                r = shifted[0]
                self.add(r, "edited", f"entries were renumbered from entry {orig[r.id]} on (stored as seq {r.seq})")
        return self.problems

    @staticmethod
    def _renumber_note(seg: list[AuditEntry], orig: dict[int, int]) -> str:
        shifted = [r for r in seg if r.seq != orig[r.id]]
        if not shifted:
            return ""
        return f"; the entries after it were renumbered (seq {shifted[0].seq} was {orig[shifted[0].id]})"

    def _place(self, frag: list[AuditEntry], max_seq: int) -> int | None:
        """The original seq of a fragment's first row: the first rows that hash right somewhere."""
        budget = min(self.budget, 200_000)
        for i, r in enumerate(frag[:3]):
            if _self_hash(r) == r.hash:
                return r.seq - i
            for d in range(1, max_seq + len(frag) + 2):
                for s in (r.seq - d, r.seq + d):
                    if s >= 1 and _self_hash(r, seq=s) == r.hash:
                        return s - i
                budget -= 2
                self.budget -= 2
                if budget <= 0:
                    return None
        return None

    @staticmethod
    def _out_of_order(rows: list[AuditEntry], key: Any, orig: dict[int, int]) -> list[AuditEntry]:
        """Rows (given in original order) whose `key` breaks the rising order: those outside
        one longest rising run, plus the partner each one swapped places with."""
        if len(rows) < 2:
            return []
        values = [key(r) for r in rows]
        if all(a < b for a, b in pairwise(values)):
            return []
        # swapped pairs first: the row now where another belongs, and that other one
        rank = {v: i for i, v in enumerate(sorted(values))}
        out: set[int] = set()
        for i, v in enumerate(values):
            j = rank[v]
            if j != i and rank[values[j]] == i:
                out.update((i, j))
        # then whatever breaks one longest rising run (patience sorting, O(n log n))
        rest = [i for i in range(len(values)) if i not in out]
        tails: list[int] = []
        tails_at: list[int] = []
        parent: dict[int, int] = {}
        for i in rest:
            j = bisect.bisect_left(tails, values[i])
            if j == len(tails):
                tails.append(values[i])
                tails_at.append(i)
            else:
                tails[j] = values[i]
                tails_at[j] = i
            parent[i] = tails_at[j - 1] if j > 0 else -1
        keep: set[int] = set()
        k = tails_at[-1] if tails_at else -1
        while k >= 0:
            keep.add(k)
            k = parent[k]
        out.update(i for i in rest if i not in keep)
        return [rows[i] for i in sorted(out)]

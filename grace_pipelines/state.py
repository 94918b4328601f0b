"""The app state database: source registry, consent ledger and quarantine log.

SQLAlchemy 2 Core on SQLite (a file in GRACE_HOME) by default, the same code on PostgreSQL
when `GRACE_DATABASE_URL` is set. The Dagster instance keeps runs and materializations; this
keeps what Dagster does not model: who consented to what, and why a file was refused.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from grace_pipelines.consent import ConsentEvent, expand_scope


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Grace stores timezone-aware UTC only")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


metadata = sa.MetaData()

sources_table = sa.Table(
    "sources",
    metadata,
    sa.Column("key", sa.String(16), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ext", sa.String(16), nullable=False),
    sa.Column("origin", sa.String(32), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("participants", sa.JSON, nullable=False),
    sa.Column("inbox_path", sa.Text, nullable=True),
    sa.Column("dropped_at", UTCDateTime, nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("embedding_model", sa.String(64), nullable=True),  # Embedder.code_version() of its vectors
    # HTM ledger (grace_pipelines.queue): how big, how urgent, when launched and done
    sa.Column("size_class", sa.String(8), nullable=True),
    sa.Column("sla_due", UTCDateTime, nullable=True),
    sa.Column("route", sa.String(8), nullable=True),  # run | batch | defer: the last routing decision
    sa.Column("priority", sa.Integer, nullable=True),
    sa.Column("launched_at", UTCDateTime, nullable=True),  # None: waiting for the dispatcher
    sa.Column("run_key", sa.Text, nullable=True),
    sa.Column("searchable_at", UTCDateTime, nullable=True),
)

consent_table = sa.Table(
    "consent_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source_key", sa.String(16), nullable=False, index=True),
    sa.Column("party", sa.Text, nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("action", sa.String(8), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
)

quarantine_table = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source_key", sa.String(16), nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
)

launches_table = sa.Table(
    "htm_launches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("origin", sa.String(32), nullable=False),
    sa.Column("size_class", sa.String(8), nullable=False),
    sa.Column("sources", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
)

htm_events_table = sa.Table(
    "htm_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source_key", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # warning | violated | critical | starved
    sa.Column("origin", sa.String(32), nullable=False),
    sa.Column("size_class", sa.String(8), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.UniqueConstraint("source_key", "kind", name="uq_htm_events_source_kind"),  # each tier fires once
)

purge_journal_table = sa.Table(
    "purge_journal",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source_key", sa.String(16), nullable=False, index=True),
    sa.Column("plan", sa.JSON, nullable=False),  # {"remove_original": bool, "reason": str}
    sa.Column("progress", sa.JSON, nullable=False),  # what earlier attempts found (counts only)
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),  # None: unfinished, recovery finishes it
)

STAGES = (
    "registered", "stored", "awaiting_consent", "transcribed", "chunked", "searchable", "failed", "purging", "purged",
    "no_text_layer",
)
# stages a source passes through inside a run: one that rests here with no live run was interrupted
IN_FLIGHT_STAGES = ("registered", "stored", "transcribed", "chunked", "purging")


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 to SQLAlchemy 2.1; use psycopg2 when that is what's here."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix) and importlib.util.find_spec("psycopg") is None:
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


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


_ENGINES: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    """One engine (and pool) per URL per process; schema created on first use."""
    url = normalise_url(url)
    engine = _ENGINES.get(url)
    if engine is None:
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        engine = sa.create_engine(url, **kwargs)
        if url.startswith("sqlite"):

            @sa.event.listens_for(engine, "connect")
            def _wal(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

        migrate(engine)
        _ENGINES[url] = engine
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (a no-op when it is current)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "grace_pipelines:migrations")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def dispose_engine(url: str) -> None:
    engine = _ENGINES.pop(normalise_url(url), None)
    if engine is not None:
        engine.dispose()


class StateDB:
    """Typed access to the state tables. Cheap to construct; engines are shared."""

    def __init__(self, url: str, keys_dir: str | None = None) -> None:
        """`keys_dir`: GRACE_HOME's keys folder, where the audit log's anchor lives (audit_anchor)."""
        self.url = url
        self.keys_dir = keys_dir
        self.engine = engine_for(url)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # ---- sources --------------------------------------------------------------------------
    def register_source(
        self,
        *,
        key: str,
        sha256: str,
        filename: str,
        title: str,
        kind: str,
        ext: str,
        origin: str,
        size: int,
        duration_s: float | None,
        participants: Sequence[str],
        inbox_path: str | None,
        dropped_at: datetime | None = None,
        **ledger: Any,
    ) -> bool:
        """Insert a new source (with its HTM ledger values, see grace_pipelines.dispatcher.plan);
        False (and nothing changed) if the key is already known."""
        now = dropped_at or utcnow()
        try:
            with self.begin() as conn:
                conn.execute(
                    sources_table.insert().values(
                        key=key,
                        sha256=sha256,
                        filename=filename,
                        title=title,
                        kind=kind,
                        ext=ext,
                        origin=origin,
                        bytes=size,
                        duration_s=duration_s,
                        participants=list(participants),
                        inbox_path=inbox_path,
                        dropped_at=now,
                        stage="registered",
                        reason=None,
                        updated_at=now,
                        **ledger,
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def get_source(self, key: str) -> SourceRow | None:
        with self.begin() as conn:
            row = conn.execute(sources_table.select().where(sources_table.c.key == key)).first()
        return SourceRow(**row._mapping) if row else None

    def list_sources(self) -> list[SourceRow]:
        with self.begin() as conn:
            rows = conn.execute(sources_table.select().order_by(sources_table.c.dropped_at))
            return [SourceRow(**r._mapping) for r in rows]

    def find_source(self, ref: str) -> SourceRow | None:
        """A source by key, unique key prefix, file name, title, or a path ending in the name."""
        ref = ref.strip()
        name = ref.replace("\\", "/").rsplit("/", 1)[-1]
        exact = self.get_source(ref)
        if exact:
            return exact
        candidates = [
            s
            for s in self.list_sources()
            if (len(ref) >= 4 and s.key.startswith(ref)) or name in (s.filename, s.title)
        ]
        keys = {c.key for c in candidates}
        if len(keys) == 1:
            return candidates[0]
        return None

    def update_source(self, key: str, **values: Any) -> None:
        values["updated_at"] = utcnow()
        with self.begin() as conn:
            conn.execute(sources_table.update().where(sources_table.c.key == key).values(**values))

    def stale_embeddings(self, model: str, limit: int | None = None) -> list[str]:
        """Searchable sources whose vectors came from another embedding model (or an unknown
        one), oldest first: the work a model change leaves."""
        c = sources_table.c
        query = (
            sa.select(c.key)
            .where(c.stage == "searchable", sa.or_(c.embedding_model.is_(None), c.embedding_model != model))
            .order_by(c.dropped_at)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.begin() as conn:
            return [row.key for row in conn.execute(query)]

    def set_stage(self, key: str, stage: str, reason: str | None = None) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        self.update_source(key, stage=stage, reason=reason)

    # ---- consent ledger (append-only) -----------------------------------------------------
    def record_consent(
        self,
        *,
        source_key: str,
        party: str,
        scope: str,
        action: str,
        method: str,
        actor: str,
        expires_at: datetime | None = None,
    ) -> list[int]:
        """Append one event per expanded scope; returns the new ledger ids."""
        if action not in ("grant", "revoke"):
            raise ValueError(f"unknown consent action {action!r}")
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValueError("naive datetime given for expires_at; Grace stores timezone-aware UTC only")
        ids = []
        now = utcnow()
        with self.begin() as conn:
            for one in expand_scope(scope):
                result = conn.execute(
                    consent_table.insert().values(
                        source_key=source_key,
                        party=party,
                        scope=one,
                        action=action,
                        method=method,
                        actor=actor,
                        at=now,
                        expires_at=expires_at,
                    )
                )
                ids.append(int(result.inserted_primary_key[0]))
        self.audit(
            actor=actor, action=f"consent.{action}", subject=source_key,
            details={"party": party, "scope": scope, "method": method,
                     "expires_at": expires_at.isoformat() if expires_at else None, "ledger_ids": ids},
        )
        return ids

    def audit(self, *, actor: str, action: str, subject: str, details: dict[str, Any] | None = None) -> None:
        """Append to the hash-chained audit log (grace_pipelines.audit) in this database."""
        from grace_pipelines.audit import AuditLog, AuditSecretError

        log = AuditLog(self)
        try:
            log.append(actor=actor, action=action, subject=subject, details=details)
        except AuditSecretError:
            # a hostile file name shaped like a credential must not stop the work or leak:
            # keep the event, drop the text that looked like a secret
            log.append(actor="redacted" if actor else actor, action=action, subject="(redacted)",
                       details={"redacted": "a value looked like a credential and was not recorded"})

    def consent_events(self, source_key: str) -> list[ConsentEvent]:
        with self.begin() as conn:
            rows = conn.execute(
                consent_table.select()
                .where(consent_table.c.source_key == source_key)
                .order_by(consent_table.c.id)
            )
            return [
                ConsentEvent(party=r.party, scope=r.scope, action=r.action, at=r.at, expires_at=r.expires_at)
                for r in rows
            ]

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

    # ---- quarantine -----------------------------------------------------------------------
    def record_quarantine(
        self, *, filename: str, path: str, reason: str, source_key: str | None = None
    ) -> None:
        with self.begin() as conn:
            conn.execute(
                quarantine_table.insert().values(
                    filename=filename, path=path, reason=reason, source_key=source_key, at=utcnow()
                )
            )
        self.audit(actor="inbox", action="quarantine", subject=filename, details={"reason": reason, "source_key": source_key})

    def list_quarantine(self) -> list[dict[str, Any]]:
        with self.begin() as conn:
            rows = conn.execute(quarantine_table.select().order_by(quarantine_table.c.id))
            return [dict(r._mapping) for r in rows]

    # ---- purge journal --------------------------------------------------------------------
    def begin_purge(self, key: str, plan: dict[str, Any], run_id: str | None) -> dict[str, Any]:
        """Write the purge down before anything is removed (or take over an unfinished one,
        keeping what the earlier attempt found); returns the journal entry."""
        c = purge_journal_table.c
        with self.begin() as conn:
            row = conn.execute(
                purge_journal_table.select().where(c.source_key == key, c.finished_at.is_(None)).order_by(c.id.desc())
            ).first()
            if row is None:
                new_id = conn.execute(purge_journal_table.insert().values(
                    source_key=key, plan=dict(plan), progress={}, run_id=run_id, started_at=utcnow(),
                )).inserted_primary_key[0]
                entry = {"id": int(new_id), "source_key": key, "plan": dict(plan), "progress": {}, "resumed": False}
            else:
                conn.execute(purge_journal_table.update().where(c.id == row.id).values(run_id=run_id))
                entry = {"id": int(row.id), "source_key": key, "plan": dict(row.plan), "progress": dict(row.progress or {}),
                         "resumed": True}
            conn.execute(sources_table.update().where(sources_table.c.key == key).values(
                stage="purging", reason="purge in progress", updated_at=utcnow()))
        return entry

    def purge_progress(self, entry_id: int, **progress: Any) -> None:
        """Add what this attempt removed (counts and bytes add up, names join) to what earlier attempts removed."""
        c = purge_journal_table.c
        with self.begin() as conn:
            row = conn.execute(sa.select(c.progress).where(c.id == entry_id)).first()
            merged = dict(row.progress or {}) if row else {}
            for name, value in progress.items():
                if isinstance(value, int):
                    merged[name] = merged.get(name, 0) + value
                elif isinstance(value, list):
                    merged[name] = list(dict.fromkeys([*merged.get(name, []), *value]))
                else:
                    merged[name] = value
            conn.execute(purge_journal_table.update().where(c.id == entry_id).values(progress=merged))

    def purge_entry(self, entry_id: int) -> dict[str, Any] | None:
        with self.begin() as conn:
            row = conn.execute(purge_journal_table.select().where(purge_journal_table.c.id == entry_id)).first()
        return dict(row._mapping) if row else None

    def finish_purge(self, entry_id: int) -> None:
        with self.begin() as conn:
            conn.execute(purge_journal_table.update().where(purge_journal_table.c.id == entry_id).values(finished_at=utcnow()))

    def unfinished_purges(self) -> list[dict[str, Any]]:
        c = purge_journal_table.c
        with self.begin() as conn:
            rows = conn.execute(purge_journal_table.select().where(c.finished_at.is_(None)).order_by(c.id))
            return [dict(r._mapping) for r in rows]

    def sources_in_stages(self, stages: Sequence[str]) -> list[SourceRow]:
        with self.begin() as conn:
            rows = conn.execute(sources_table.select().where(sources_table.c.stage.in_(list(stages))))
            return [SourceRow(**r._mapping) for r in rows]

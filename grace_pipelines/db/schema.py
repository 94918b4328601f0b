"""Every table of the app state database in one place, with the column type they share.

One `metadata` for all of them: Alembic migrations (db/migrations) and the repositories read
the same definitions, and no domain module has to be imported for its table to exist. The
`Stage` enum is a source's lifecycle as stored in `sources.stage`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any

import sqlalchemy as sa


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
    # when it was recorded: the container's creation-time tag, else the file's mtime at drop (0008)
    sa.Column("recorded_at", UTCDateTime, nullable=True),
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

secrets_table = sa.Table(
    "vault_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
)

approvals_table = sa.Table(
    "vault_approvals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, index=True),
    sa.Column("purpose", sa.String(64), nullable=False),
    sa.Column("approved_by", sa.Text, nullable=False),
    sa.Column("approved_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)

requests_table = sa.Table(
    "vault_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("purpose", sa.String(64), nullable=False),
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
)


class Stage(str, Enum):
    """Where a source is in its lifecycle (the value stored in `sources.stage`)."""

    REGISTERED = "registered"  # known, waiting for (or in) its first run
    STORED = "stored"  # sealed copy in the blob store
    AWAITING_CONSENT = "awaiting_consent"  # held by a consent check
    TRANSCRIBED = "transcribed"
    CHUNKED = "chunked"
    SEARCHABLE = "searchable"
    FAILED = "failed"
    PURGING = "purging"  # a journaled purge is under way
    PURGED = "purged"
    NO_TEXT_LAYER = "no_text_layer"  # a scanned document with nothing to extract

    # behave as the plain string everywhere: "registered", not "Stage.REGISTERED", in messages and
    # SQL, and the same hash, so a stage read back from the database finds its dict or set entry
    __str__ = str.__str__
    __format__ = str.__format__
    __hash__ = str.__hash__


STAGES = tuple(s.value for s in Stage)
# stages a source passes through inside a run: one that rests here with no live run was interrupted
IN_FLIGHT_STAGES = (Stage.REGISTERED, Stage.STORED, Stage.TRANSCRIBED, Stage.CHUNKED, Stage.PURGING)
# the work is over (nothing more will happen without a new request)
DONE_STAGES = (Stage.SEARCHABLE, Stage.FAILED, Stage.PURGED, Stage.NO_TEXT_LAYER)
# registered and not launched: the dispatcher's queue
QUEUED_STAGES = (Stage.REGISTERED,)
# held until consent (or a new grant after a purge) lets the work go on: consent_sensor's watch
HELD_STAGES = (Stage.AWAITING_CONSENT, Stage.PURGED)

# ---- intents: a requested outcome with a deadline (grace_pipelines/intents) ---------------------
intents_table = sa.Table(
    "intents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # searchable | notify | reembed
    sa.Column("description", sa.Text, nullable=False),  # file titles and the deadline, never content
    sa.Column("deadline", UTCDateTime, nullable=True),  # None: a notify without a deadline
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # open | done | failed | overdue | cancelled
    sa.Column("model", sa.String(64), nullable=True),  # reembed: the embedder's code version
    sa.Column("done", sa.Integer, nullable=False, default=0),  # the last progress recorded
    sa.Column("total", sa.Integer, nullable=False, default=0),
    sa.Column("failed", sa.Integer, nullable=False, default=0),
    sa.Column("progress_at", UTCDateTime, nullable=True),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Column("overdue_at", UTCDateTime, nullable=True),  # set once: the overdue event fired
    sa.Column("notified_at", UTCDateTime, nullable=True),  # set once: the completion event fired
)

intent_sources_table = sa.Table(
    "intent_sources",
    metadata,
    sa.Column("intent_id", sa.Integer, sa.ForeignKey("intents.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("source_key", sa.String(16), primary_key=True, index=True),  # may precede its registration
    sa.Column("title", sa.Text, nullable=True),  # the file's title when submitted (before the inbox knows it)
)

# ---- voices: who spoke, remembered across recordings (grace_pipelines/audio/profiles.py) --------
# A profile is a person's name and nothing else; its voice is the mean of the sealed voice
# embeddings (the VOICES blob of each source) of the speakers named as that person. No embedding
# and no name reaches the vector index: chunk rows carry only a recording's own labels (S1, S2).
voice_profiles_table = sa.Table(
    "voice_profiles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),  # as consent names parties
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
)

source_speakers_table = sa.Table(
    "source_speakers",
    metadata,
    sa.Column("source_key", sa.String(16), primary_key=True),
    sa.Column("label", sa.String(8), primary_key=True),  # S1, S2, ... by first appearance
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("first_s", sa.Float, nullable=True),  # the first turn, for "an unnamed second speaker at 00:41"
    sa.Column("last_s", sa.Float, nullable=True),
    sa.Column("profile_id", sa.Integer, sa.ForeignKey("voice_profiles.id", ondelete="SET NULL"), nullable=True),
    sa.Column("how", sa.String(8), nullable=True),  # named (by a person) | matched (by similarity)
    sa.Column("similarity", sa.Float, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

"""`StateDB`: typed access to the app state database (SQLAlchemy 2 Core).

SQLite (a file in GRACE_HOME) by default, the same code on PostgreSQL when
`GRACE_DATABASE_URL` is set. The Dagster instance keeps runs and materializations; this keeps
what Dagster does not model: the sources, who consented to what, why a file was refused, the
HTM ledger, the purge journal and intents. One repository module per concern, mixed in here so callers
hold one object; the audit log and the vault (governance/) build on it, never the reverse.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection

from grace_pipelines.db.consent_ledger import ConsentLedger
from grace_pipelines.db.engine import engine_for
from grace_pipelines.db.intents import IntentRepository
from grace_pipelines.db.purge_journal import PurgeJournal
from grace_pipelines.db.sources import SourceRepository
from grace_pipelines.db.voices import VoiceRepository


class StateDB(SourceRepository, ConsentLedger, PurgeJournal, IntentRepository, VoiceRepository):
    """Cheap to construct; engines are shared per URL."""

    def __init__(self, url: str, keys_dir: str | None = None) -> None:
        """`keys_dir`: GRACE_HOME's keys folder, where the audit log's anchor lives."""
        self.url = url
        self.keys_dir = keys_dir
        self.engine = engine_for(url)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

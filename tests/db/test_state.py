"""State database: migrations match the model on SQLite and PostgreSQL; UTC everywhere."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from grace_pipelines.db.engine import normalise_url
from grace_pipelines.db.schema import metadata
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.consent_records import record_consent


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path) -> StateDB:
    if request.param == "sqlite":
        return StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    return StateDB(request.getfixturevalue("pg_database")("grace_state"))


def test_migrations_match_the_model(db: StateDB) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": "grace_alembic_version"})
        diff = compare_metadata(context, metadata)
        tables = sa.inspect(conn).get_table_names()
    assert diff == []
    assert "grace_alembic_version" in tables and "alembic_version" not in tables, "never collide with Dagster's table"


def test_register_once_and_consent_ledger_is_utc(db: StateDB) -> None:
    args = dict(
        sha256="ab" * 32,
        filename="a.mp3",
        title="a.mp3",
        kind="audio",
        ext="mp3",
        origin="voice_note",
        size=10,
        duration_s=1.5,
        participants=["me", "priya"],
        inbox_path="/x/a.mp3",
    )
    assert db.register_source(key="abababababababab", **args) is True
    assert db.register_source(key="abababababababab", **args) is False
    ids = record_consent(
        db, source_key="abababababababab", party="priya", scope="all", action="grant", method="cli", actor="t"
    )
    assert len(ids) == 2 and ids[1] == ids[0] + 1
    (first, second) = db.consent_rows(source_key="abababababababab")
    assert first["at"].tzinfo is not None and first["at"].utcoffset().total_seconds() == 0
    assert (first["scope"], second["scope"]) == ("transcribe", "index")
    row = db.get_source("abababababababab")
    assert row.participants == ["me", "priya"] and row.dropped_at.tzinfo == timezone.utc
    assert db.find_source("ababab").key == row.key and db.find_source("/elsewhere/a.mp3").key == row.key
    with pytest.raises(ValueError, match="naive datetime"):
        record_consent(
            db,
            source_key=row.key,
            party="me",
            scope="index",
            action="grant",
            method="cli",
            actor="t",
            expires_at=datetime(2030, 1, 1),
        )


def test_plain_postgres_url_uses_the_installed_driver() -> None:
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg2://") or __import__(
        "importlib"
    ).util.find_spec("psycopg")
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"

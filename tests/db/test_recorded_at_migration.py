"""Migration 0008: an existing state database (at 0007, with sources) gains `sources.recorded_at`
as NULL (a source registered before it counts as recorded when dropped); downgrading removes it.
SQLite (batch mode) and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from grace_pipelines.db.state import StateDB
from grace_pipelines.search.filters import allowed_keys, parse_filters


def _alembic(engine: sa.Engine, target: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", "grace_pipelines.db:migrations")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, target)


def _columns(engine: sa.Engine) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns("sources")}


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_database")("grace_0008")


def test_0008_adds_recorded_at_to_existing_sources_and_goes_back(url: str) -> None:
    engine = sa.create_engine(url)
    _alembic(engine, "0007")
    assert "recorded_at" not in _columns(engine)
    dropped = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO sources (key, sha256, filename, title, kind, ext, origin, bytes, participants, "
                "dropped_at, stage, updated_at) VALUES ('00000000000000aa', :sha, 'old.mp3', 'old.mp3', 'audio', "
                "'mp3', 'voice_note', 10, '[\"me\"]', :at, 'searchable', :at)"
            ),
            {"sha": "a" * 64, "at": dropped if engine.dialect.name == "postgresql" else "2026-11-30 09:00:00.000000"},
        )
    _alembic(engine, "head")
    assert "recorded_at" in _columns(engine)
    engine.dispose()
    db = StateDB(url)
    row = db.get_source("00000000000000aa")
    assert row is not None and row.recorded_at is None and row.dropped_at == dropped
    # a source from before 0008 is filtered by its drop time
    day = parse_filters(since="2026-11-30", until="2026-11-30", now=dropped, tz="UTC")
    assert allowed_keys(db, day) == {"00000000000000aa"}
    assert allowed_keys(db, parse_filters(since="2026-12-01", now=dropped, tz="UTC")) == set()
    engine = sa.create_engine(url)
    _alembic(engine, "0007", down=True)
    assert "recorded_at" not in _columns(engine)
    engine.dispose()

"""One SQLAlchemy engine per database URL per process, and the schema brought to the newest
Alembic revision on first use (SQLite in WAL mode with a 30 s busy timeout, so concurrent
sensors and CLI commands wait instead of failing with "database is locked")."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 to SQLAlchemy 2.1; use psycopg2 when that is what's here."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix) and importlib.util.find_spec("psycopg") is None:
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


_ENGINES: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    """One engine (and pool) per URL per process; schema created on first use."""
    url = normalise_url(url)
    engine = _ENGINES.get(url)
    if engine is None:
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
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
    config.set_main_option("script_location", "grace_pipelines.db:migrations")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def dispose_engine(url: str) -> None:
    engine = _ENGINES.pop(normalise_url(url), None)
    if engine is not None:
        engine.dispose()

"""Intents in the state database: submit feeds the HTM SLA, progress reads the sources' state
(failures with their reasons), statuses move once, and an older home gains the tables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from grace_pipelines.db.intents import intent_tags
from grace_pipelines.db.state import StateDB
from grace_pipelines.errors import GraceError
from grace_pipelines.intents.progress import can_move, next_status, progress_of
from grace_pipelines.intents.service import describe, evaluate, submit
from grace_pipelines.settings import load_settings

from .helpers import register

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def env(request, home: Path):
    url = request.getfixturevalue("pg_database")("grace_intents") if request.param == "postgres" else None
    settings = load_settings(home=home, timezone="Europe/Berlin", database_url=url)
    settings.ensure_dirs()
    return settings, StateDB(settings.state_url, keys_dir=str(settings.keys_dir))


def _no_webhook(text: str, **fields):
    return False, "no webhook configured"


def test_submit_lowers_sla_due_and_raises_priority(env) -> None:
    settings, db = env
    late = register(db, settings, "late.pdf", dropped_at=NOW - timedelta(minutes=5))
    early = register(db, settings, "early.pdf", dropped_at=NOW - timedelta(minutes=5))
    db.update_source(early, sla_due=NOW + timedelta(minutes=10))  # already due sooner than the intent
    before = db.get_source(late)
    assert before.sla_due == NOW + timedelta(minutes=25) and before.priority == 0, "document normal: 30 min"
    intent = submit(
        db,
        settings,
        kind="searchable",
        sources=[(late, "late.pdf"), (early, "early.pdf")],
        by="11:15",
        actor="t",
        now=NOW,
    )
    deadline = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)  # 11:15 Berlin
    assert intent.deadline == deadline and intent.status == "open" and intent.keys == tuple(sorted([late, early]))
    assert "late.pdf" in intent.description and "searchable by" in intent.description
    after = db.get_source(late)
    assert after.sla_due == deadline, "min(its sla_due, deadline)"
    assert after.priority == 30, "document base 0 + the warning boost"
    assert after.updated_at == before.updated_at, "recovery's staleness clock is left alone"
    assert db.get_source(early).sla_due == NOW + timedelta(minutes=10), "an earlier SLA stays"
    assert intent_tags(db, [late]) == {"grace/intent": str(intent.id)}
    second = submit(db, settings, kind="notify", sources=[(late, "late.pdf")], actor="t", now=NOW)
    assert intent_tags(db, [late, early]) == {"grace/intent": f"{intent.id},{second.id}"}
    assert second.deadline is None and "tell me when late.pdf" in second.description


def test_submit_refuses_what_cannot_be_done(env) -> None:
    settings, db = env
    key = register(db, settings, "a.pdf", dropped_at=NOW)
    with pytest.raises(GraceError, match="needs a deadline"):
        submit(db, settings, kind="searchable", sources=[(key, "a.pdf")], actor="t", now=NOW)
    with pytest.raises(GraceError, match="not in the future"):
        submit(db, settings, kind="searchable", sources=[(key, "a.pdf")], by="2026-01-01", actor="t", now=NOW)
    with pytest.raises(GraceError, match="nothing is searchable"):
        submit(db, settings, kind="reembed", model="abc", by="monday", actor="t", now=NOW)
    with pytest.raises(GraceError, match="unknown intent kind"):
        submit(db, settings, kind="someday", sources=[(key, "a.pdf")], actor="t", now=NOW)
    assert db.list_intents() == []


def test_progress_counts_done_and_failed_with_reasons(env) -> None:
    settings, db = env
    done = register(db, settings, "done.pdf", dropped_at=NOW, stage="searchable")
    bad = register(db, settings, "scan.pdf", dropped_at=NOW, stage="no_text_layer", reason="a scanned PDF")
    broken = register(db, settings, "broken.pdf", dropped_at=NOW, stage="failed", reason="not a PDF: bad header")
    held = register(db, settings, "held.md", dropped_at=NOW, stage="awaiting_consent", reason="awaiting priya")
    ghost = "f" * 16  # a file still in the inbox
    db.record_quarantine(filename="evil.mp3", path="/q/evil.mp3", reason="not audio", source_key="e" * 16)
    keys = [done, bad, broken, held, ghost, "e" * 16]
    intent = submit(
        db, settings, kind="searchable", sources=[(k, k) for k in keys], by="tomorrow 9am", actor="t", now=NOW
    )
    info = describe(db, settings, intent, NOW)
    assert (info["done"], info["total"], info["failed"]) == (1, 6, 3)
    reasons = {f["title"]: f["reason"] for f in info["failures"]}
    assert reasons == {
        "scan.pdf": "no text layer: a scanned PDF",
        "broken.pdf": "failed: not a PDF: bad header",
        "e" * 16: "quarantined: not audio",
    }
    pending = {p["title"]: p["reason"] for p in info["pending"]}
    assert pending == {
        "held.md": "awaiting consent: awaiting priya",
        ghost: "not registered yet (waiting in the inbox)",
    }
    assert info["on_time"] is True and info["projected_finish"] is not None

    assert evaluate(db, settings, NOW, _no_webhook) == [], "work pending, deadline ahead: nothing fires"
    stored = db.get_intent(intent.id)
    assert (stored.done, stored.total, stored.failed, stored.status) == (1, 6, 3, "open")
    db.set_stage(held, "failed", reason="consent refused")
    assert evaluate(db, settings, NOW, _no_webhook) == [], "the ghost is still pending: not failed yet"
    db.record_quarantine(filename="ghost.wav", path="/q/ghost.wav", reason="empty file", source_key=ghost)
    (event,) = evaluate(db, settings, NOW, _no_webhook)
    assert event["event"] == "intent_failed" and db.get_intent(intent.id).status == "failed"
    assert evaluate(db, settings, NOW + timedelta(days=2), _no_webhook) == [], "final: fires once"


def test_status_transitions() -> None:
    empty = progress_of("searchable", ["a"], {})
    assert next_status("open", empty, NOW, NOW + timedelta(seconds=1)) == "overdue"
    assert next_status("open", empty, None, NOW + timedelta(days=9)) == "open", "notify without deadline waits"
    assert next_status("done", empty, NOW, NOW + timedelta(days=1)) == "done"
    assert can_move("open", "overdue") and can_move("overdue", "done") and not can_move("done", "open")
    assert not can_move("cancelled", "open") and not can_move("overdue", "open")


def test_reembed_progress_counts_sources_embedded_with_the_model(env) -> None:
    settings, db = env
    old = register(db, settings, "old.pdf", dropped_at=NOW, stage="searchable")
    new = register(db, settings, "new.pdf", dropped_at=NOW, stage="searchable")
    db.update_source(old, embedding_model="m-old")
    db.update_source(new, embedding_model="m-new")
    intent = submit(
        db, settings, kind="reembed", model="m-new", model_label="NewModel", by="monday", actor="t", now=NOW
    )
    assert set(intent.keys) == {old, new} and "with NewModel" in intent.description
    info = describe(db, settings, intent, NOW)
    assert (info["done"], info["total"]) == (1, 2) and info["pending"][0]["reason"] == "embedded with an earlier model"
    db.set_stage(old, "purged", reason="consent revoked")
    (event,) = evaluate(db, settings, NOW, _no_webhook)
    assert event["event"] == "intent_done", "a purged source drops out: nothing left to re-embed"
    assert describe(db, settings, db.get_intent(intent.id), NOW)["excluded"][0]["title"] == "old.pdf"


def test_a_home_made_before_intents_gains_the_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", "grace_pipelines.db:migrations")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
        conn.execute(
            sa.text(
                "INSERT INTO sources (key, sha256, filename, title, kind, ext, origin, bytes, participants, "
                "dropped_at, stage, updated_at) VALUES ('abcdabcdabcdabcd', 'ab', 'old.md', 'old.md', 'document', "
                "'md', 'document', 10, '[]', '2026-11-01 10:00:00+00:00', 'searchable', '2026-11-01 10:00:00+00:00')"
            )
        )
        assert "intents" not in sa.inspect(conn).get_table_names()
    engine.dispose()
    db = StateDB(url)  # the first use upgrades to head
    with db.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        version = conn.execute(sa.text("SELECT version_num FROM grace_alembic_version")).scalar_one()
    assert {"intents", "intent_sources"} <= tables and version >= "0007"
    assert db.get_source("abcdabcdabcdabcd").title == "old.md", "the old home's sources are kept"
    settings = load_settings(home=tmp_path / "grace")
    intent = submit(
        db, settings, kind="notify", sources=[("abcdabcdabcdabcd", "old.md")], actor="t", now=datetime.now(UTC)
    )
    assert db.get_intent(intent.id).keys == ("abcdabcdabcdabcd",)

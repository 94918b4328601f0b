"""`intent_sensor` and the runs of an intent, on real Dagster instances with the clock injected:
the deadline makes the dispatcher launch deferred work now, tagged `grace/intent`; overdue and
completion each alert the webhook and the audit log once; a run orphaned by a dead process is
detected and its source re-launched, tagged."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.api import Grace
from grace_pipelines.db.state import StateDB
from grace_pipelines.definitions import build_definitions
from grace_pipelines.intents.service import submit
from grace_pipelines.runtime.recovery import run_tags
from grace_pipelines.settings import load_settings

from ..conftest import FIXTURES, Clock, Driver, drop_file
from ..resources.local_http import local_server, send_json
from .helpers import register

UTC = timezone.utc
NOON = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)  # 12:00 in Berlin


def _setup(home: Path, instance: dg.DagsterInstance, clock: Clock, **overrides):
    settings = load_settings(home=home, timezone="Europe/Berlin", tiny_audio_s=1, heavy_audio_s=15, **overrides)
    settings.ensure_dirs()
    defs = build_definitions(settings, clock=clock)
    return settings, defs, Driver(defs, instance), StateDB(settings.state_url, keys_dir=str(settings.keys_dir))


def test_a_deadline_launches_deferred_work_now_tagged_with_the_intent(home: Path) -> None:
    clock = Clock(NOON)
    with dg.instance_for_test() as instance:
        settings, defs, driver, db = _setup(home, instance, clock)
        drop_file(settings.inbox, "standup.mp3")  # 17 s: heavy here, deferred to the night
        drop_file(settings.inbox, "standup.mp3.consent.json")
        assert driver.tick("inbox_sensor").run_requests == []
        (row,) = db.list_sources()
        assert (row.route, row.sla_due) == ("defer", datetime(2026, 11, 25, 7, 0, tzinfo=UTC))
        intent = submit(
            db, settings, kind="searchable", sources=[(row.key, row.title)], by="13:00", actor="t", now=clock.now
        )
        assert db.get_source(row.key).sla_due == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
        (request,) = driver.tick("inbox_sensor").run_requests  # the night is too late for 13:00: now
        assert request.partition_key == row.key and request.tags["grace/intent"] == str(intent.id)
        assert request.tags["grace/size_class"] == "heavy"


def test_overdue_and_completion_alert_once_each(home: Path) -> None:
    posts: list[dict] = []

    def on_post(handler) -> None:
        posts.append(json.loads(handler.rfile.read(int(handler.headers["Content-Length"]))))
        send_json(handler, 200, {"ok": True})

    clock = Clock(NOON)
    with local_server(on_post) as url, dg.instance_for_test() as instance:
        hook = f"{url}/hooks/T000/B000/secret-token-789"
        settings, defs, driver, db = _setup(home, instance, clock, sla_webhook_url=hook)
        key = register(db, settings, "budget.pdf", dropped_at=NOON)
        intent = submit(db, settings, kind="searchable", sources=[(key, "budget.pdf")], by="12:30", actor="t", now=NOON)
        assert driver.tick("intent_sensor").skip_reason and posts == []
        clock.now = intent.deadline + timedelta(seconds=1)
        driver.tick("intent_sensor")
        driver.tick("intent_sensor")
        (overdue,) = posts
        assert (
            overdue["event"] == "intent_overdue" and overdue["intent"] == intent.id and "budget.pdf" in overdue["text"]
        )
        assert db.get_intent(intent.id).status == "overdue"
        db.set_stage(key, "searchable")
        clock.now += timedelta(minutes=5)
        driver.tick("intent_sensor")
        driver.tick("intent_sensor")
        assert [p["event"] for p in posts] == ["intent_overdue", "intent_done"]
        done = posts[1]
        assert (done["done"], done["total"], done["late"]) == (1, 1, True)
        stored = db.get_intent(intent.id)
        assert stored.status == "done" and stored.completed_at == clock.now and stored.notified_at == clock.now
        audit = [e for e in Grace(home).audit_tail(50) if e["subject"] == f"intent:{intent.id}"]
        assert [e["action"] for e in audit] == ["intent_submitted", "intent_overdue", "intent_done"]
        assert audit[-1]["details"]["delivered"] is True
        assert "secret-token-789" not in json.dumps(audit)


def _dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def test_an_orphaned_run_of_an_intent_source_is_relaunched_tagged(home: Path) -> None:
    clock = Clock(NOON)
    with dg.instance_for_test() as instance:
        settings, defs, driver, db = _setup(home, instance, clock)
        key = register(db, settings, "minutes.pdf", dropped_at=NOON, stage="stored")  # sealed, then killed
        instance.add_dynamic_partitions("sources", [key])
        intent = submit(db, settings, kind="notify", sources=[(key, "minutes.pdf")], actor="t", now=NOON)
        tags = {**run_tags(), "grace/pid": str(_dead_pid()), "grace/source": key, "dagster/partition": key}
        orphan = dg.DagsterRun(
            job_name="ingest_job", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED, tags=tags
        )
        instance.add_run(orphan)
        (request,) = driver.tick("intent_sensor").run_requests
        assert instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.FAILURE, "the dead run is failed"
        assert request.partition_key == key and request.tags["grace/intent"] == str(intent.id)
        assert request.tags["grace/trigger"] == "recovery"
        assert [a.to_user_string() for a in request.asset_selection] == ["transcript", "chunks", "embeddings"]


@pytest.mark.slow  # one real document ingest (MiniLM) through the facade
def test_facade_runs_carry_the_intent_and_completion_fires(home: Path) -> None:
    from grace_pipelines.governance.consent import PolicyRule
    from grace_pipelines.ingest.inbox import scan_inbox

    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance, consent_policy=[PolicyRule(name="mine", origins=["document"])])
        info = grace.submit_intent("notify", [FIXTURES / "project_notes.md"])  # not known yet: dropped
        assert info["pending"][0]["reason"] == "not registered yet (waiting in the inbox)"
        scan_inbox(grace.settings, grace.db, settle_seconds=0)
        (key,) = info["sources"]
        assert grace.run_sources([key]) == {key: True}
        (run,) = instance.get_runs(filters=dg.RunsFilter(tags={"grace/intent": str(info["id"])}))
        assert run.tags["grace/source"] == key
        clock = Clock(datetime.now(UTC))
        driver = Driver(build_definitions(grace.settings, clock=clock), instance)
        driver.tick("intent_sensor")
        status = grace.intent_status(info["id"])
        assert status["status"] == "done" and (status["done"], status["total"]) == (1, 1)
        assert status["notified_at"] is not None


def test_a_reembed_intent_requests_embeddings_only_runs_tagged(home: Path) -> None:
    clock = Clock(NOON)
    with dg.instance_for_test() as instance:
        settings, defs, driver, db = _setup(home, instance, clock, max_files_per_tick=1)
        model = defs.resources["embedder"].code_version()
        keys = [register(db, settings, f"{name}.pdf", dropped_at=NOON, stage="searchable") for name in ("a", "b")]
        for key in keys:
            db.update_source(key, embedding_model="an-older-model")
        intent = submit(db, settings, kind="reembed", model=model, by="monday", actor="t", now=NOON)
        (request,) = driver.tick("intent_sensor").run_requests  # one per tick: max_files_per_tick
        assert request.partition_key in keys and request.tags["grace/intent"] == str(intent.id)
        assert [a.to_user_string() for a in request.asset_selection] == ["embeddings"]
        assert request.tags["grace/embedding_model"] == model
        for key in keys:
            db.update_source(key, embedding_model=model)
        assert driver.tick("intent_sensor").run_requests == []
        assert db.get_intent(intent.id).status == "done"

"""HTM in Dagster terms on real instances, with the clock injected: deferral of heavy work and
the off-peak schedule, SLA escalation (priority, launch now, webhook + audit), per-origin caps
without losing a file, and the metrics asset."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.api import Grace
from grace_pipelines.db.htm_ledger import Ledger
from grace_pipelines.db.state import StateDB
from grace_pipelines.definitions import build_definitions
from grace_pipelines.htm.sla import SlaTarget
from grace_pipelines.settings import load_settings

from ..conftest import FIXTURES, Clock, Driver, drop_file
from ..resources.local_http import local_server, send_json

UTC = timezone.utc
NOON = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
NIGHT = datetime(2026, 11, 25, 0, 10, tzinfo=UTC)  # 01:10 in Berlin, inside 01:00-06:00


def _setup(home: Path, instance: dg.DagsterInstance, clock: Clock, **overrides):
    settings = load_settings(home=home, timezone="Europe/Berlin", tiny_audio_s=1, heavy_audio_s=15, **overrides)
    settings.ensure_dirs()
    defs = build_definitions(settings, clock=clock)
    return settings, defs, Driver(defs, instance), StateDB(settings.state_url)


@pytest.mark.slow  # two recordings through deferral and the schedule; tests/htm/test_policy covers routing
def test_heavy_work_waits_for_offpeak_unless_its_sla_is_at_risk(home: Path) -> None:
    clock = Clock(NOON)
    with dg.instance_for_test() as instance:
        settings, defs, driver, db = _setup(
            home,
            instance,
            clock,
            sla_targets=[
                SlaTarget(size_class="tiny", minutes=5),
                SlaTarget(size_class="normal", minutes=30),
                SlaTarget(size_class="heavy", by="08:00"),
                SlaTarget(origin="meeting", size_class="heavy", minutes=90),
            ],
        )
        drop_file(settings.inbox, "standup.mp3")  # 17 s of audio: heavy with heavy_audio_s=15
        drop_file(settings.inbox, "standup.mp3.consent.json")
        first = driver.tick("inbox_sensor")
        assert first.run_requests == [], "heavy work dropped at noon waits"
        (row,) = db.list_sources()
        assert (row.size_class, row.route, row.launched_at) == ("heavy", "defer", None)
        assert row.sla_due == datetime(2026, 11, 25, 7, 0, tzinfo=UTC), "by 08:00 Berlin the next morning"
        why = Grace(home, timezone="Europe/Berlin").status_of(row.key).why
        assert "deferred to the off-peak window (01:00-06:00 Europe/Berlin)" in why
        assert driver.tick("inbox_sensor").run_requests == [], "still waiting at the next tick"

        schedule = defs.resolve_schedule_def("offpeak_schedule")
        assert schedule.execution_timezone == "Europe/Berlin" and schedule.cron_schedule == "*/10 1,2,3,4,5 * * *"
        common = {
            "instance": instance,
            "resources": {"state": defs.resources["state"]},
            "repository_def": defs.get_repository_def(),
        }
        with dg.build_schedule_context(scheduled_execution_time=NOON + timedelta(hours=1), **common) as context:
            assert isinstance(schedule.evaluate_tick(context).skip_message, str), "outside the window nothing launches"
        with dg.build_schedule_context(scheduled_execution_time=NIGHT, **common) as context:
            (request,) = schedule.evaluate_tick(context).run_requests
        assert request.partition_key == row.key and request.tags["grace/size_class"] == "heavy"
        (run,) = driver.execute(dg.SensorResult(run_requests=[request]))
        assert run.success and db.get_source(row.key).stage == "searchable"

        # a heavy meeting whose 90-minute SLA the night would miss is launched at once
        drop_file(settings.inbox / "meeting", "migration.wav")
        (urgent,) = driver.tick("inbox_sensor").run_requests
        assert db.get_source(urgent.partition_key).route == "run"
        assert urgent.tags["grace/origin"] == "meeting" and urgent.tags["grace/size_class"] == "heavy"


def test_sla_sensor_launches_a_deferred_source_once_it_is_violated(home: Path) -> None:
    clock = Clock(NOON)
    with dg.instance_for_test() as instance:
        settings, defs, driver, db = _setup(home, instance, clock)
        drop_file(settings.inbox, "standup.mp3")
        assert driver.tick("inbox_sensor").run_requests == []
        (row,) = db.list_sources()
        clock.now = row.dropped_at + (row.sla_due - row.dropped_at) * 0.8
        assert driver.tick("sla_sensor").run_requests == [], "warning: priority raised, still deferred"
        assert (row.priority, db.get_source(row.key).priority) == (20, 50), "voice note 20, raised by 30 at warning"
        clock.now = row.sla_due + timedelta(seconds=1)
        (request,) = driver.tick("sla_sensor").run_requests
        assert request.partition_key == row.key and request.tags["dagster/priority"] == "100"
        assert driver.tick("sla_sensor").run_requests == [], "violated fires once"
        kinds = [e["kind"] for e in Ledger(db).events()]
        assert kinds == ["warning", "violated", "starved"]


def test_critical_sla_alerts_the_webhook_and_the_audit_log_once(home: Path) -> None:
    posts: list[dict] = []

    def on_post(handler) -> None:
        posts.append(json.loads(handler.rfile.read(int(handler.headers["Content-Length"]))))
        send_json(handler, 200, {"ok": True})

    clock = Clock(NOON)
    with local_server(on_post) as url, dg.instance_for_test() as instance:
        hook = f"{url}/hooks/T000/B000/secret-token-123"
        settings, defs, driver, db = _setup(home, instance, clock, sla_webhook_url=hook)
        drop_file(settings.inbox, "groceries.ogg")  # 13 s: normal with tiny_audio_s=1 -> voice_note normal, 15 min
        (launched,) = driver.tick("inbox_sensor").run_requests  # launched, never executed: the run is stuck
        row = db.get_source(launched.partition_key)
        allowed = row.sla_due - row.dropped_at
        assert allowed == timedelta(minutes=15)
        for fraction, expected_posts in ((0.5, 0), (0.76, 0), (1.01, 0), (1.51, 1), (3.0, 1)):
            clock.now = row.dropped_at + allowed * fraction
            result = driver.tick("sla_sensor")
            assert result.run_requests == [], "already launched: violated does not launch it twice"
            assert len(posts) == expected_posts, fraction
        (post,) = posts
        assert post["tier"] == "critical" and post["source"] == row.key and post["title"] == "groceries.ogg"
        assert "groceries.ogg" in post["text"] and post["origin"] == "voice_note"
        (entry,) = [e for e in Grace(home).audit_tail(50) if e["action"] == "sla_critical"]
        assert entry["subject"] == row.key and entry["details"]["delivered"] is True
        assert "secret-token-123" not in json.dumps(entry)


def test_origin_cap_delays_a_flood_but_never_drops_a_file_or_starves_another_origin(home: Path) -> None:
    clock = Clock(NOON)
    with dg.instance_for_test() as instance:
        settings, defs, driver, db = _setup(home, instance, clock, origin_runs_per_minute=2, tiny_text_bytes=1)
        flood = settings.inbox / "document"
        for i in range(5):
            note = f"# Note {i}\n\nA distinct note number {i} about topic {i * 7}.\n"
            drop_file(flood, name=f"note{i}.md", data=note)
        drop_file(settings.inbox, "groceries.ogg")  # another origin, same tick
        first = driver.tick("inbox_sensor")
        origins = [r.tags["grace/origin"] for r in first.run_requests]
        assert origins.count("document") == 2 and origins.count("voice_note") == 1
        assert driver.tick("inbox_sensor").run_requests == [], "cap reached for this minute"
        launched = {r.partition_key for r in first.run_requests}
        clock.now += timedelta(seconds=61)
        launched |= {r.partition_key for r in driver.tick("inbox_sensor").run_requests}
        clock.now += timedelta(seconds=61)
        launched |= {r.partition_key for r in driver.tick("inbox_sensor").run_requests}
        assert launched == {r.key for r in db.list_sources()} and len(launched) == 6, "every file launched exactly once"


@pytest.mark.slow  # two ingests for the metrics asset
def test_htm_metrics_and_status_htm(home: Path) -> None:
    from typer.testing import CliRunner

    from grace_pipelines.cli import app

    with dg.instance_for_test() as instance:
        from grace_pipelines.governance.consent import PolicyRule

        policy = [PolicyRule(name="mine", origins=["voice_note", "document"])]
        grace = Grace(home, instance=instance, consent_policy=policy)
        outcomes = grace.ingest([FIXTURES / "groceries.ogg", FIXTURES / "project_notes.md"], wait=True)
        assert {o.state for o in outcomes} == {"searchable"}
        from grace_pipelines.assets.htm_metrics import htm_metrics

        result = dg.materialize([htm_metrics], instance=instance, resources={"state": grace.defs.resources["state"]})
        metadata = result.asset_materializations_for_node("htm_metrics")[0].metadata
        assert metadata["items"].value == 2 and metadata["sla_compliance_pct"].value == 100.0
        assert metadata["p50_latency_s"].value > 0 and metadata["queue_depth"].value == 0
        assert metadata["voice_note.tiny.items"].value == 1 and metadata["document.tiny.items"].value == 1
        assert metadata["stage.transcript.items_per_s"].value > 0
        assert "| voice_note | tiny | 1 |" in metadata["report"].value
    out = CliRunner().invoke(app, ["status", "--htm", "--json", "--home", str(home)])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["summary"]["items"] == 2 and {g["origin"] for g in report["groups"]} == {"voice_note", "document"}


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("01:00", "06:00", [1, 2, 3, 4, 5]),
        ("22:30", "05:00", [22, 23, 0, 1, 2, 3, 4]),
        ("01:00", "06:30", [1, 2, 3, 4, 5, 6]),
    ],
)
def test_offpeak_cron_covers_the_window(start: str, end: str, hours: list[int]) -> None:
    from datetime import time as clock_time

    from grace_pipelines.schedules.offpeak import window_hours

    assert window_hours(clock_time.fromisoformat(start), clock_time.fromisoformat(end)) == hours


def test_a_backlog_past_its_sla_is_launched_in_batches_not_one_run_each(home: Path) -> None:
    clock = Clock(NOON)
    with dg.instance_for_test() as instance:
        settings, defs, driver, db = _setup(
            home, instance, clock, origin_runs_per_minute=1, tiny_batch_size=4, tiny_text_bytes=10_000
        )
        flood = settings.inbox / "document"
        flood.mkdir(parents=True)
        for i in range(10):
            drop_file(flood, name=f"m{i}.txt", data=f"memo {i}\n")
        (first,) = driver.tick("inbox_sensor").run_requests  # one batch; the cap (1/min) holds the rest
        assert first.job_name == "tiny_batch_job"
        clock.now = NOON + timedelta(days=1)  # everything waiting is far past its SLA
        requests = driver.tick("sla_sensor").run_requests
        assert [r.job_name for r in requests] == ["tiny_batch_job", "tiny_batch_job"], "6 overdue: batches of 4 and 2"
        assert all(r.tags["dagster/priority"] == "100" for r in requests)
        launched = [k for r in [first, *requests] for k in r.run_config["ops"]["ingest_batch"]["config"]["keys"]]
        assert sorted(launched) == sorted(r.key for r in db.list_sources()), "each exactly once"
        assert driver.tick("inbox_sensor").run_requests == []


def test_webhook_url_from_the_environment_stays_out_of_the_ui(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://hooks.example.invalid/services/T0/B0/secret-token-456"
    monkeypatch.setenv("GRACE_SLA_WEBHOOK_URL", url)
    defs = build_definitions(load_settings(home=home))
    configured = defs.resources["alerts"].webhook_url
    assert isinstance(configured, dg.EnvVar) and configured.env_var_name == "GRACE_SLA_WEBHOOK_URL"
    with dg.build_resources({"alerts": defs.resources["alerts"]}) as resources:
        assert resources.alerts.webhook_url == url and resources.alerts.enabled

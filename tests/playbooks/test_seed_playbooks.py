"""Each shipped playbook on a real GRACE_HOME: make its check fail, run it the way `grace
playbooks run` does (its job in process on the home's Dagster instance), and assert the action
happened: the alert reached a local webhook, overdue work was launched, a failed source was
re-queued with backoff and a cap, a tampered blob was reported by name, an old key was rotated,
a source past its retention was purged with a receipt."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import dagster as dg

from grace_pipelines.api import Grace
from grace_pipelines.db.htm_ledger import Ledger
from grace_pipelines.db.schema import Stage, utcnow
from grace_pipelines.errors import SYSTEM_FAILURE
from grace_pipelines.htm.dispatcher import dispatch
from grace_pipelines.htm.routing import URGENT_PRIORITY
from grace_pipelines.playbooks.context import PlaybookContext
from grace_pipelines.playbooks.engine import evaluate
from grace_pipelines.playbooks.loading import load_playbooks

from .helpers import override, register, webhook


def _grace(home: Path, **settings) -> Grace:
    grace = Grace(home, **settings)
    grace.init()
    return grace


def _check(result: dict, name: str) -> dict:
    return next(c for c in result["checks"] if c["name"] == name)


def _action(result: dict, do: str) -> dict:
    return next(a for a in result["actions"] if a["do"] == do)


def test_htm_sla_breach_alerts_and_launches_the_overdue_work(home: Path) -> None:
    with webhook() as (url, posts):
        grace = _grace(home, sla_webhook_url=url)
        # a document dropped two hours ago (a 5-minute SLA for tiny documents), never launched
        late = register(grace.settings, grace.db, "late_minutes.md", dropped_at=utcnow() - timedelta(hours=2))
        assert late.launched_at is None and late.sla_due < utcnow()
        result = grace.run_playbook("htm_timing_and_sizing")
    overdue = _check(result, "overdue_sources")
    assert not overdue["passed"] and overdue["values"] == {"": 1.0}
    assert any("late_minutes.md" in d for d in overdue["details"])
    (post,) = posts
    assert post["playbook"] == "htm_timing_and_sizing" and "late_minutes.md" in post["text"]
    assert "overdue_sources" in post["text"]
    assert _action(result, "launch_overdue")["result"]["keys"] == [late.key]
    row = grace.db.get_source(late.key)
    assert row.launched_at is not None and row.priority == URGENT_PRIORITY and row.route == "run"
    assert any(e["kind"] == "escalated" and e["source_key"] == late.key for e in Ledger(grace.db).events())
    (launch,) = [launch for launch in dispatch(grace.settings, grace.db, utcnow()) if late.key in launch.keys]
    assert launch.run_key == row.run_key and launch.priority == URGENT_PRIORITY, "the next tick requests its run"
    (entry,) = [e for e in grace.audit_tail(20) if e["action"] == "playbook.alert"]
    assert entry["details"]["delivered"] is True and "secret-token-123" not in json.dumps(entry)
    with grace.instance() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("playbook_htm_timing_and_sizing"))
        metadata = event.asset_materialization.metadata
        assert metadata["overdue_sources"].value == 1.0 and metadata["checks_failed"].value >= 1
        assert "late_minutes.md" in metadata["report"].value
        assert instance.get_latest_materialization_event(dg.AssetKey("htm_metrics")) is not None


def test_consent_pending_and_an_expiring_grant_send_reminders_naming_source_and_party(home: Path) -> None:
    with webhook() as (url, posts):
        grace = _grace(home, sla_webhook_url=url)
        held = register(
            grace.settings,
            grace.db,
            "board_meeting.md",
            dropped_at=utcnow() - timedelta(days=2),
            participants=["me", "alice"],
            grants={"me": ["all"]},
        )
        grace.db.set_stage(held.key, Stage.AWAITING_CONSENT, reason="waiting on alice")
        soon = register(grace.settings, grace.db, "offsite_plan.md")
        grace.grant(soon.key, "me", "all", expires_at=utcnow() + timedelta(days=2))
        result = grace.run_playbook("secrets_capture_and_consent")
    assert not _check(result, "consent_pending")["passed"] and not _check(result, "grants_expiring")["passed"]
    texts = {p["topic"]: p["text"] for p in posts if "topic" in p}
    assert "board_meeting.md: waiting on alice" in texts["consent_pending"]
    assert "offsite_plan.md: me's index grant expires" in texts["consent_expiring"]
    assert _check(result, "refused_credential_uses")["passed"]
    reminders = [e for e in grace.audit_tail(30) if e["action"] == "playbook.remind"]
    assert {e["subject"] for e in reminders} == {"consent_pending", "consent_expiring"}


def test_failed_sources_are_requeued_with_backoff_and_a_cap(home: Path) -> None:
    grace = _grace(home)
    broken = register(grace.settings, grace.db, "flaky_engine.md")
    bad = register(grace.settings, grace.db, "not_really_text.md")
    grace.db.update_source(broken.key, stage=Stage.FAILED, reason=f"{SYSTEM_FAILURE}: engine crashed")
    grace.db.update_source(bad.key, stage=Stage.FAILED, reason="cannot decode the file")
    result = grace.run_playbook("recording_to_learning")
    assert not _check(result, "failed_sources")["passed"]
    rerun = _action(result, "rerun_failed")["result"]
    assert rerun["requeued"] == 1 and rerun["sources"] == ["flaky_engine.md"], "bad input is never retried"
    row = grace.db.get_source(broken.key)
    assert row.stage == Stage.REGISTERED and row.launched_at is None
    assert grace.db.get_source(bad.key).stage == Stage.FAILED
    assert broken.key in [r.key for r in Ledger(grace.db).waiting()], "the dispatcher will launch it"

    # the next failures: attempt 2 waits 20 minutes after attempt 1, attempt 4 never comes (cap 3)
    (playbook,) = [p for p in load_playbooks(grace.settings)[0] if p.name == "recording_to_learning"]

    def run_at(offset: timedelta) -> dict:
        grace.db.update_source(broken.key, stage=Stage.FAILED, reason=f"{SYSTEM_FAILURE}: engine crashed")
        ctx = PlaybookContext(grace.settings, grace.db, grace.clients.blob_store, None, utcnow() + offset)
        return _action(evaluate(playbook, ctx).to_dict(), "rerun_failed")["result"]

    assert run_at(timedelta(minutes=5))["backing_off"] == ["flaky_engine.md"]
    assert run_at(timedelta(minutes=11))["requeued"] == 1
    assert run_at(timedelta(minutes=25))["backing_off"] == ["flaky_engine.md"], "attempt 3 waits 20 min"
    assert run_at(timedelta(minutes=35))["requeued"] == 1
    assert run_at(timedelta(days=1))["at_cap"] == ["flaky_engine.md"]
    kinds = sorted(e["kind"] for e in Ledger(grace.db).events() if e["source_key"] == broken.key)
    assert kinds == ["rerun:1", "rerun:2", "rerun:3"]


def test_a_tampered_blob_fails_the_check_and_is_reported_by_name(home: Path) -> None:
    with webhook() as (url, posts):
        grace = _grace(home, sla_webhook_url=url)
        row = register(grace.settings, grace.db, "sealed_notes.md")
        store = grace.clients.blob_store
        store.put_json(row.key, "transcript.json", {"segments": []})
        store.put_bytes(row.key, "original", b"a sealed original")
        path = grace.settings.store / row.key / "transcript.json"
        data = bytearray(path.read_bytes())
        data[-5] ^= 0xFF  # flip a byte of the sealed body
        path.write_bytes(bytes(data))
        result = grace.run_playbook("crypto_key_persistence")
    check = _check(result, "unreadable_blobs")
    assert not check["passed"] and check["values"] == {"": 1.0}
    assert (
        check["details"] == ["sealed_notes.md (transcript): tampered"]
        or "sealed_notes.md (transcript)" in (check["details"][0])
    )
    assert any("sealed_notes.md (transcript)" in p["text"] for p in posts)
    assert "sealed_notes.md (transcript)" in result["report"]
    assert _check(result, "key_permissions")["passed"] and _check(result, "key_age_days")["passed"]
    assert not [a for a in result["actions"] if a["do"] == "rotate_keys"], "a fresh key is not rotated"


def test_an_old_key_is_rotated_and_audited(home: Path) -> None:
    grace = _grace(home)
    override(home, "crypto_key_persistence", {"max: 30                  # days;": "max: 0                   # days;"})
    row = register(grace.settings, grace.db, "keyed_notes.md")
    grace.clients.blob_store.put_bytes(row.key, "original", b"sealed under the first key")
    before = grace.key_status()
    (old,) = [k["id"] for k in before["keys"] if k["state"] == "active"]
    result = grace.run_playbook("crypto_key_persistence")
    assert not _check(result, "key_age_days")["passed"], (result["source"], _check(result, "key_age_days"))
    rotated = _action(result, "rotate_keys")["result"]
    assert rotated["rotated"] == 1 and rotated["retired"] == [old] and rotated["new_key"] != old
    after = grace.key_status()
    (active,) = [k for k in after["keys"] if k["state"] == "active"]
    assert active["id"] == rotated["new_key"] and active["blobs"] >= 1
    (entry,) = [e for e in grace.audit_tail(20) if e["action"] == "key.rotate"]
    assert entry["subject"] == rotated["new_key"] and entry["details"]["playbook"] == "crypto_key_persistence"
    assert grace.clients.blob_store.get_bytes(row.key, "original") == b"sealed under the first key"


def test_retention_purges_old_sources_through_purge_job_with_a_receipt(home: Path) -> None:
    grace = _grace(home)
    limits = {
        "days: 3650             # any": "days: 30               # any",
        "days: 3650             # keep equal to the check's": "days: 30",
    }
    override(home, "retention", limits)  # "purge what is older than 30 days"
    old = register(grace.settings, grace.db, "ancient_notes.md", dropped_at=utcnow() - timedelta(days=400))
    fresh = register(grace.settings, grace.db, "fresh_notes.md")
    for row in (old, fresh):
        grace.clients.blob_store.put_bytes(row.key, "original", b"the original")
        grace.clients.blob_store.put_json(row.key, "transcript.json", {"segments": []})
    dry = grace.run_playbook("retention", dry_run=True)
    assert _action(dry, "purge")["result"] == {"would_purge": 1, "sources": ["ancient_notes.md"]}, dry["actions"]
    assert grace.db.get_source(old.key).stage == Stage.REGISTERED, "a dry run changes nothing"
    assert _check(dry, "sources_too_old")["values"] == {"document": 1.0}
    result = grace.run_playbook("retention")
    purged = _action(result, "purge")["result"]
    assert purged["purged"] == 1 and purged["sources"] == ["ancient_notes.md"]
    assert grace.db.get_source(old.key).stage == Stage.PURGED
    assert grace.db.get_source(fresh.key).stage == Stage.REGISTERED
    assert grace.clients.blob_store.list(old.key) == [] and grace.clients.blob_store.list(fresh.key)
    (purge_run,) = result["purge_runs"]
    assert purge_run["success"] and purge_run["title"] == "ancient_notes.md"
    with grace.instance() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("purge_receipt"))
        receipt = event.asset_materialization.metadata["receipt"].value
        assert receipt["source_key"] == old.key and receipt["original_removed"] is True
        assert instance.get_run_by_id(purge_run["run_id"]).job_name == "purge_job"
    assert any(e["action"] == "purge" and e["subject"] == old.key for e in grace.audit_tail(20))


def test_search_index_playbook_materializes_the_index_first(home: Path) -> None:
    grace = _grace(home)
    result = grace.run_playbook("search_index")
    assert result["passed"] and _check(result, "rows")["values"] == {"": 0.0}
    with grace.instance() as instance:
        assert instance.get_latest_materialization_event(dg.AssetKey("search_index")) is not None
        run = instance.get_run_by_id(result["run_id"])
        assert run.job_name == "playbook_search_index_job"


def test_cli_run_dry_run_json(home: Path) -> None:
    from typer.testing import CliRunner

    from grace_pipelines.cli import app

    _grace(home)
    done = CliRunner().invoke(
        app, ["playbooks", "run", "crypto_key_persistence", "--dry-run", "--json", "--home", str(home)]
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)["playbook"]
    assert result["dry_run"] is True and result["playbook"] == "crypto_key_persistence"
    assert {c["name"] for c in result["checks"]} >= {"unreadable_blobs", "key_age_days", "key_permissions"}
    unknown = CliRunner().invoke(app, ["playbooks", "run", "no_such_playbook", "--home", str(home)])
    assert unknown.exit_code == 1 and "no playbook named 'no_such_playbook'" in " ".join(unknown.output.split())

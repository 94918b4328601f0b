"""Holds are holds, not failures: a source awaiting consent, or a scanned document with no text
layer, ends in a green run that says what it waits for; the blocking consent checks still stop
a manual materialization. Real Dagster instance, real stores, real documents."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.api import Grace
from grace_pipelines.db.state import StateDB
from grace_pipelines.definitions import build_definitions
from grace_pipelines.governance.consent_records import decide
from grace_pipelines.ingest.inbox import scan_inbox
from grace_pipelines.settings import load_settings
from grace_pipelines.stores.blobs import ORIGINAL, TRANSCRIPT

from ..conftest import Driver, drop_file

CONSENT_TRANSCRIBE = dg.AssetCheckKey(dg.AssetKey("source"), "consent_transcribe")
CONSENT_INDEX = dg.AssetCheckKey(dg.AssetKey("transcript"), "consent_index")


def _runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs())


def _check_history(instance: dg.DagsterInstance, key: dg.AssetCheckKey) -> list:
    return list(instance.event_log_storage.get_asset_check_execution_history(key, limit=50))


def test_a_source_awaiting_consent_is_a_green_sealed_hold(home: Path, tmp_path: Path) -> None:
    notes = drop_file(tmp_path / "drop", "project_notes.md")  # no sidecar: the owner "me" must grant
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        grace.ingest([notes], wait=True)
        (status,) = grace.status()
        assert status.state == "awaiting_consent" and "me" in status.why
        runs = _runs(instance)
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
        assert runs[0].tags["grace/hold"] == "consent"
        assert runs[0].tags["grace/title"] == "project_notes.md"
        assert _check_history(instance, CONSENT_TRANSCRIBE) == []  # not evaluated, so never red
        event = instance.get_latest_materialization_event(dg.AssetKey("source"))
        metadata = event.asset_materialization.metadata
        assert metadata["awaiting_parties"].value == 1 and metadata["awaiting"].value == "me"
        assert grace.clients.blob_store.exists(status.source_key, ORIGINAL)  # sealed at once...
        assert not grace.clients.blob_store.exists(status.source_key, TRANSCRIPT)  # ...and nothing transcribed

        grace.grant("project_notes.md", "me", "all", wait=True)
        assert grace.status()[0].state == "searchable"
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in _runs(instance))
        (passed,) = _check_history(instance, CONSENT_TRANSCRIBE)
        assert passed.status.value == "SUCCEEDED"


def test_a_manual_materialization_still_meets_the_blocking_check(home: Path, tmp_path: Path) -> None:
    notes = drop_file(tmp_path / "drop", "project_notes.md")
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        (target,) = {i.target for i in grace.drop([notes])}
        (new,) = scan_inbox(grace.settings, grace.db, only={target}, settle_seconds=0).new  # registered, not run
        key = new.key
        instance.add_dynamic_partitions("sources", [key])
        job = grace.defs.resolve_job_def("ingest_job")  # what "Materialize all" in the UI runs
        result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
        assert not result.success
        (failed,) = _check_history(instance, CONSENT_TRANSCRIBE)
        assert failed.status.value == "FAILED"
        assert not grace.clients.blob_store.exists(key, TRANSCRIPT)


def test_transcribe_without_index_stops_after_the_transcript_green(home: Path, tmp_path: Path) -> None:
    notes = drop_file(
        tmp_path / "drop", "project_notes.md", participants=["me", "ana"], grants={"me": ["all"], "ana": ["transcribe"]}
    )
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        grace.ingest([notes], wait=True)
        (status,) = grace.status()
        assert status.state == "awaiting_consent" and "ana" in status.why and "index" in status.why
        (run,) = _runs(instance)
        assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["grace/hold"] == "consent:index"
        assert grace.clients.blob_store.exists(status.source_key, TRANSCRIPT)
        assert _check_history(instance, CONSENT_INDEX) == []
        assert grace.search("project", k=1) == []

        grace.grant(status.source_key, "ana", "index", wait=True)
        assert grace.status()[0].state == "searchable"
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in _runs(instance))


def test_a_scanned_pdf_is_held_with_its_reason_not_failed(home: Path, tmp_path: Path) -> None:
    scan = drop_file(tmp_path / "drop", "docs/scanned_invoice.pdf", name="scanned_invoice.pdf", grants={"me": ["all"]})
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        grace.ingest([scan], wait=True)
        (status,) = grace.status()
        assert status.state == "no_text_layer" and "no text layer" in status.why
        (run,) = _runs(instance)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        records = instance.fetch_observations(dg.AssetKey("transcript"), limit=5).records
        assert records and records[0].asset_observation.metadata["held"].value == "no_text_layer"
        assert instance.get_latest_materialization_event(dg.AssetKey("chunks")) is None


@pytest.fixture
def daemon(home: Path):
    settings = load_settings(home=home, settle_seconds=0.5, tiny_batch_wait_s=0)
    settings.ensure_dirs()
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        yield settings, Driver(defs, instance), StateDB(settings.state_url)


def test_sensors_launch_only_what_consent_allows(daemon) -> None:
    settings, driver, db = daemon
    drop_file(settings.inbox, "project_notes.md", name="held.md")
    drop_file(settings.inbox / "document", "docs/onboarding.docx", name="onboarding.docx", grants={"me": ["all"]})
    requests = {db.get_source(r.partition_key).title: r for r in driver.tick("inbox_sensor").run_requests}
    held, good = requests["held.md"], requests["onboarding.docx"]
    assert held.asset_selection == [dg.AssetKey("source")] and held.asset_check_keys == []
    assert held.tags["grace/hold"] == "consent" and held.tags["grace/title"] == "held.md"
    assert good.asset_selection is None and "grace/hold" not in good.tags
    assert all(run.success for run in driver.execute(list(requests.values())))
    assert {r.title: r.stage for r in db.list_sources()} == {
        "held.md": "awaiting_consent",
        "onboarding.docx": "searchable",
    }
    assert not list(settings.inbox.rglob("held.md")), "the held file's plaintext left the inbox (sealed)"

    row = db.find_source("held.md")
    decide(db, row, party="me", scope="all", action="grant", actor="test")
    (release,) = driver.tick("consent_sensor").run_requests
    assert release.tags["grace/trigger"] == "consent" and release.tags["grace/title"] == "held.md"
    assert all(run.success for run in driver.execute([release]))
    assert db.get_source(row.key).stage == "searchable"

"""The whole flow on real audio, a real Whisper model, real LanceDB and real Dagster
instances: once on SQLite, once with the Dagster instance (dagster-postgres) and the app
state on the local PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.api import Grace
from grace_pipelines.definitions import build_definitions

from .conftest import FIXTURES, Driver, drop_file, sentence


def _materialized(instance: dg.DagsterInstance, asset: str, key: str) -> bool:
    return bool(instance.get_materialized_partitions(dg.AssetKey(asset)) & {key})


# the PostgreSQL stack runs the same flow again on other storage: in the full suite only
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def stack(request, home: Path):
    if request.param == "sqlite":
        grace = Grace(home)
        with dg.instance_for_test() as instance:
            yield grace, instance
        return
    make_db = request.getfixturevalue("pg_database")
    state_url, dagster_url = make_db("grace_state"), make_db("grace_dagster")
    grace = Grace(home, database_url=state_url)
    overrides = {"storage": {"postgres": {"postgres_url": dagster_url}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        yield grace, instance


def test_drop_to_cited_answer_with_consent(stack, manifest) -> None:
    grace, instance = stack
    settings = grace.settings
    defs = build_definitions(settings)
    driver = Driver(defs, instance)
    grace._instance = instance

    for name in ("standup.mp3.consent.json", "standup.mp3", "groceries.ogg.consent.json", "groceries.ogg"):
        drop_file(settings.inbox, name)
    drop_file(settings.inbox, "migration.wav")  # no consent yet
    drop_file(settings.inbox, "standup.mp3", name="standup (copy).mp3")  # same bytes twice
    drop_file(settings.inbox, "corrupt.mp3")
    result = driver.tick("inbox_sensor")
    (batch,) = result.run_requests  # three tiny voice notes: one batch run; duplicate and corrupt file make none
    assert batch.job_name == "tiny_batch_job"
    assert len(batch.run_config["ops"]["ingest_batch"]["config"]["keys"]) == 3
    (run,) = driver.execute(result)
    assert run.success, "a source held for consent does not fail its batch"
    keys = {row.title: row.key for row in grace.db.list_sources()}
    assert len(keys) == 3
    states = {title: grace.status_of(key).state for title, key in keys.items()}
    assert states == {"standup.mp3": "searchable", "groceries.ogg": "searchable", "migration.wav": "awaiting_consent"}
    for title in ("standup.mp3", "groceries.ogg"):  # each source its own materializations, as in a single run
        assert all(_materialized(instance, a, keys[title]) for a in ("source", "transcript", "chunks", "embeddings"))

    # a question phrased differently from the speech finds the recording and the moment
    deadline = sentence(manifest, "standup.mp3", "deadline")
    hits = grace.search("When is the quarterly report due?", k=3)
    assert hits[0].title == "standup.mp3" and hits[0].kind == "audio"
    assert hits[0].start_s <= deadline["start_s"] + 0.5 and hits[0].end_s >= deadline["end_s"] - 0.5
    assert hits[0].end_s - hits[0].start_s < 6, "the window points at the sentence, not the whole note"
    assert hits[0].passage_start_s <= hits[0].start_s and hits[0].passage_end_s >= hits[0].end_s
    assert hits[0].citation == f"standup.mp3 @ 00:0{int(hits[0].start_s)}-00:0{-int(-hits[0].end_s // 1)}"
    market = grace.search("What should I pick up at the shop?", k=1)
    assert market[0].title == "groceries.ogg"

    # the file without consent has no transcript, chunks or vectors
    held = keys["migration.wav"]
    store = defs.resources["blob_store"]
    assert store.list(held) == ["original"], "raw bytes kept, nothing derived"
    assert defs.resources["vector_store"].count(held) == 0
    assert not _materialized(instance, "transcript", held)
    assert not _materialized(instance, "chunks", held)
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("source"), "consent_transcribe")]
    )
    assert check  # the check ran and was recorded
    status = grace.status_of(held)
    assert status.state == "awaiting_consent"
    assert f"grace consent grant {held} --party me --scope transcribe" in status.why
    assert all(h.source_key != held for h in grace.search("Which database are we moving to?", k=5))

    # granting consent later: consent_sensor launches the waiting work
    grace.grant("migration.wav", "me", "all")
    consent_tick = driver.tick("consent_sensor")
    assert [r.partition_key for r in consent_tick.run_requests] == [held]
    assert all(r.success for r in driver.execute(consent_tick))
    postgres = sentence(manifest, "migration.wav", "Postgres")
    hit = grace.search("Which database are we moving to?", k=1)[0]
    assert hit.title == "migration.wav"
    assert hit.start_s <= postgres["start_s"] + 0.5 and hit.end_s >= postgres["end_s"] - 0.5
    assert grace.status_of(held).state == "searchable"
    assert driver.tick("consent_sensor").run_requests == [], "a grant launches its work once"

    # same bytes twice made one source, the inbox is empty, the corrupt file is quarantined
    assert sorted(p.name for p in settings.inbox.iterdir()) == []
    quarantined = grace.db.list_quarantine()
    assert [q["filename"] for q in quarantined] == ["corrupt.mp3"]

    # re-materializing replaces, never duplicates
    standup = keys["standup.mp3"]
    before = defs.resources["vector_store"].count(standup)
    assert before >= 1
    rerun = defs.resolve_job_def("ingest_job").execute_in_process(
        instance=instance, partition_key=standup, asset_selection=[dg.AssetKey("embeddings")]
    )
    assert rerun.success
    assert defs.resources["vector_store"].count(standup) == before
    assert defs.resources["vector_store"].count() == sum(defs.resources["vector_store"].count(k) for k in keys.values())

    # materialization metadata carries figures, never the words said
    event = instance.get_latest_materialization_event(dg.AssetKey("transcript"))
    md = event.asset_materialization.metadata
    assert {"segments", "words", "audio_s", "real_time_factor", "language"} <= set(md)
    text = " ".join(str(v.value) for v in md.values()).lower()
    assert "deadline" not in text and "postgres" not in text and "basil" not in text


@pytest.mark.slow  # its own ingest; the fast purge test revokes and searches
def test_revoked_index_consent_hides_a_source_from_search_at_once(home: Path) -> None:
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        grace.ingest([FIXTURES / "groceries.ogg"], wait=True)
        assert grace.search("dentist appointment", k=1)[0].title == "groceries.ogg"
        grace.revoke("groceries.ogg", "me", "index")
        for mode in ("hybrid", "vector", "keyword"):
            assert grace.search("dentist appointment", k=5, mode=mode) == []

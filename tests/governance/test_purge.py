"""Revocation purges everything derived, from disk and not only from view; re-dropping the
file does not bring it back without a new grant; other sources are untouched."""

from __future__ import annotations

import re
import time
from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.api import Grace
from grace_pipelines.definitions import build_definitions

from ..conftest import FIXTURES, Driver, drop_file


def _trigrams(text: str) -> set[str]:
    words = re.findall(r"[a-z']+", text.lower())
    return {" ".join(words[i : i + 3]) for i in range(len(words) - 2)}


def _files_containing(root: Path, needles: set[bytes]) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes().lower()
            hits = [n for n in needles if n in data]
            if hits:
                found[str(path.relative_to(root))] = hits
    return found


def test_revoke_all_purges_from_disk_and_stays_purged(home: Path) -> None:
    grace = Grace(home)
    grace.init()
    defs = build_definitions(grace.settings)
    with grace.instance() as instance:  # the GRACE_HOME instance: its files are scanned too
        driver = Driver(defs, instance)
        grace._instance = instance
        for name in ("standup.mp3.consent.json", "standup.mp3", "groceries.ogg.consent.json", "groceries.ogg"):
            drop_file(grace.settings.inbox, name)
        assert all(r.success for r in driver.execute(driver.tick("inbox_sensor")))
        keys = {row.title: row.key for row in grace.db.list_sources()}
        purged, kept = keys["standup.mp3"], keys["groceries.ogg"]
        store = defs.resources["blob_store"]
        spoken = " ".join(s["text"] for s in store.get_json(purged, "transcript.json")["segments"])
        other = " ".join(s["text"] for s in store.get_json(kept, "transcript.json")["segments"])
        needles = {t.encode() for t in _trigrams(spoken) - _trigrams(other)}
        assert len(needles) > 20
        assert _files_containing(home, needles) == {}, "nothing said rests in plaintext, even before"
        # what does rest: the source's sealed chunk text in LanceDB; it must be gone after
        table = defs.resources["vector_store"].table()
        sealed = {
            bytes(v)[12:44].lower()
            for v in table.to_arrow()
            .filter(__import__("pyarrow").compute.equal(table.to_arrow()["source_key"], purged))["text_enc"]
            .to_pylist()
        }
        assert _files_containing(home / "lancedb", sealed), "sanity: sealed rows are on disk before"
        needles |= sealed
        before_kept = defs.resources["vector_store"].count(kept)

        for party in ("me", "priya"):
            grace.revoke("standup.mp3", party, "all")
        tick = driver.tick("consent_sensor")
        assert [(r.job_name, r.partition_key) for r in tick.run_requests] == [("purge_job", purged)]
        (run,) = driver.execute(tick)
        assert run.success

        leftovers = _files_containing(home, needles)
        assert leftovers == {}, f"purged words still on disk: {leftovers}"
        assert not (home / "store" / purged).exists() or store.list(purged) == []
        for mode in ("hybrid", "vector", "keyword"):
            assert all(h.source_key != purged for h in grace.search("quarterly report deadline", k=10, mode=mode))
        assert defs.resources["vector_store"].count(purged) == 0
        assert defs.resources["vector_store"].count(kept) == before_kept
        assert grace.search("dentist appointment", k=1)[0].source_key == kept, "other sources untouched"
        status = grace.status_of(purged)
        assert status.state == "purged" and "original" in status.why
        receipt = instance.get_latest_materialization_event(dg.AssetKey("purge_receipt")).asset_materialization.metadata
        assert receipt["index_rows_removed"].value >= 1 and receipt["original_removed"].value is True
        removed = set(receipt["blobs_removed"].value.split(", "))
        assert removed == {"original", "transcript.json", "chunks.json", "text.key", "voices.json"}

        # re-dropping the same file does not resurrect it: it waits for a new grant
        drop_file(grace.settings.inbox, "standup.mp3")
        redrop = driver.tick("inbox_sensor")
        assert [r.partition_key for r in redrop.run_requests] == [purged]
        driver.execute(redrop)
        assert grace.status_of(purged).state == "awaiting_consent"
        assert store.list(purged) == ["original"] and defs.resources["vector_store"].count(purged) == 0
        assert driver.tick("consent_sensor").run_requests == []


@pytest.mark.slow  # waits on the wall clock for a grant to expire
def test_expired_grant_purges(home: Path) -> None:
    from datetime import timedelta

    from grace_pipelines.db.schema import utcnow

    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        defs = build_definitions(grace.settings)
        driver = Driver(defs, instance)
        grace.ingest([FIXTURES / "migration.wav"], wait=True)
        # long enough for the run to finish on a loaded machine; then wait until it has passed
        expires_at = utcnow() + timedelta(seconds=8)
        grace.grant("migration.wav", "me", "all", wait=True, expires_at=expires_at)
        key = grace.resolve("migration.wav").key
        assert grace.status_of(key).state == "searchable"
        driver.tick("consent_sensor")  # sees the grant (nothing to launch: already done)
        time.sleep(max(0.0, (expires_at - utcnow()).total_seconds()) + 0.5)
        assert grace.search("Postgres database", k=5) == [], "an expired grant hides the source at once"
        tick = driver.tick("consent_sensor")
        assert [(r.job_name, r.partition_key) for r in tick.run_requests] == [("purge_job", key)]
        assert all(r.success for r in driver.execute(tick))
        assert grace.status_of(key).state == "purged"
        assert defs.resources["vector_store"].count(key) == 0

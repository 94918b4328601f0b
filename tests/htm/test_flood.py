"""A flood of 500 tiny files from one origin and one voice note from another: the note is
searchable before the flood finishes, the flood runs in batches (not 500 runs), and nothing is
lost: every file ends searchable or with a reason."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.db.state import StateDB
from grace_pipelines.definitions import build_definitions
from grace_pipelines.governance.consent import PolicyRule
from grace_pipelines.settings import load_settings

from ..conftest import Driver, drop_file

pytestmark = pytest.mark.slow  # a load test: 500 files through the inbox

FLOOD = 500


def test_flood_of_tiny_files_does_not_starve_a_voice_note(home: Path) -> None:
    settings = load_settings(
        home=home, consent_policy=[PolicyRule(name="docs", origins=["document"])], tiny_batch_wait_s=1
    )
    settings.ensure_dirs()
    defs = build_definitions(settings)
    db = StateDB(settings.state_url)
    flood = settings.inbox / "document"
    flood.mkdir(parents=True)
    past = time.time() - 60
    for i in range(FLOOD):
        path = flood / f"memo{i:03d}.txt"
        path.write_text(f"Memo {i}: the parcel number {i * 17 + 3} goes to shelf {i % 40}.\n")
        os.utime(path, (past, past))
    (flood / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")  # bad input in the flood
    os.utime(flood / "broken.pdf", (past, past))
    for name in ("groceries.ogg", "groceries.ogg.consent.json"):
        drop_file(settings.inbox, name, age_s=59)  # dropped after the flood
    with dg.instance_for_test() as instance:
        driver = Driver(defs, instance)
        requests: list[dg.RunRequest] = []
        for _ in range(3):  # the sensor's ticks while the runs wait in the queue
            requests += driver.tick("inbox_sensor").run_requests
        time.sleep(settings.tiny_batch_wait_s + 0.1)  # the odd one out (501st) waits this long for company
        requests += driver.tick("inbox_sensor").run_requests
        jobs = [r.job_name for r in requests]
        assert jobs.count("tiny_batch_job") == FLOOD // settings.tiny_batch_size, "batched, not one run per file"
        assert jobs.count("ingest_job") == 2, "the voice note (alone: not held back) and the 501st document"
        runs = driver.execute(requests)  # dequeued by priority, as the run queue does
        note = next(r for r in db.list_sources() if r.title == "groceries.ogg")
        memos = [r for r in db.list_sources() if r.title.startswith("memo")]
        assert note.stage == "searchable"
        assert len(memos) == FLOOD and all(m.stage == "searchable" for m in memos), "nothing lost"
        assert note.searchable_at < max(m.searchable_at for m in memos), "the note did not wait for the flood"
        assert note.searchable_at < sorted(m.searchable_at for m in memos)[FLOOD // 2]
        (broken,) = [r for r in db.list_sources() if r.title == "broken.pdf"]
        assert broken.stage == "failed" and "broken.pdf" in broken.reason, "bad input ends with a reason naming it"
        failed_runs = [r for r in runs if not r.success]
        assert len(failed_runs) == 1, "only the run holding the broken file fails, and it names it"
        tags = failed_runs[0].dagster_run.tags
        assert broken.key in tags.get("grace/sources", tags.get("grace/source", ""))
        assert len(instance.get_materialized_partitions(dg.AssetKey("embeddings"))) == FLOOD + 1

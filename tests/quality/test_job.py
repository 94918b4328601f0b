"""The quality job on really ingested sources (a recording and a paged PDF): the sensor asks
for one run over both, the run records one evaluation per source and check with the source's
partition and the materialization it judged, real data passes, a corrupted store fails the
right check with its severity for that source only, no metadata carries a word of content, and
one source's checks run alone the way the UI launches them."""

from __future__ import annotations

import re
from typing import Any

import dagster as dg
import pytest

from grace_pipelines.assets.quality import quality_run_config
from grace_pipelines.quality.checks import BY_NAME, CHECKS, ERROR
from grace_pipelines.stores.blobs import CHUNKS, TRANSCRIPT

from ..conftest import Driver

pytestmark = pytest.mark.slow  # one real ingest for the package (whisper, PDF, MiniLM) and GE's import


def _latest(instance: dg.DagsterInstance, asset: str, check: str, key: str) -> Any:
    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(asset), check), limit=100
    )
    return next(r for r in history if r.partition == key)


def _evaluations(result: dg.ExecuteInProcessResult) -> list[Any]:
    return [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]


def _run(ingested, keys: list[str], checks: list[str] | None = None) -> dg.ExecuteInProcessResult:
    job = ingested.defs.resolve_job_def("quality_job")
    result = job.execute_in_process(instance=ingested.instance, run_config=quality_run_config(keys, 500, checks))
    assert result.success
    return result


def test_sensor_launches_one_run_that_records_every_check_per_partition(ingested) -> None:
    driver = Driver(ingested.defs, ingested.instance)
    tick = driver.tick("quality_sensor")
    (request,) = tick.run_requests
    keys = request.run_config["ops"]["quality_batch"]["config"]["keys"]
    assert sorted(keys) == sorted(ingested.keys.values())
    (result,) = driver.execute(tick)
    assert result.success
    evaluations = _evaluations(result)
    assert len(evaluations) == len(CHECKS) * 2
    assert {(e.partition, e.check_name) for e in evaluations} == {(k, c.name) for k in keys for c in CHECKS}
    assert [e.check_name for e in evaluations if not e.passed] == [], "real data passes every check"
    for e in evaluations:
        assert e.severity.value == BY_NAME[e.check_name].severity
    audio, pdf = ingested.keys["standup.mp3"], ingested.keys["kettle_guide.pdf"]
    by = {(e.partition, e.check_name): e for e in evaluations}
    assert by[(audio, "quality_transcript_speech_rate")].metadata["applicable"].value is True
    assert by[(pdf, "quality_transcript_speech_rate")].metadata["applicable"].value is False
    assert by[(pdf, "quality_chunks_located")].metadata["rows_evaluated"].value >= 1

    # what the UI shows: the latest result per partition, tied to the materialization it judged
    for key in keys:
        for check in CHECKS:
            record = _latest(ingested.instance, check.asset, check.name, key)
            assert record.status.value == "SUCCEEDED" and record.run_id == result.run_id
            target = record.event.asset_check_evaluation.target_materialization_data
            latest = ingested.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(check.asset), asset_partitions=[key]), limit=1
            ).records[0]
            assert target is not None and target.storage_id == latest.storage_id
    assert driver.tick("quality_sensor").run_requests == [], "each materialization is checked once"


def test_no_metadata_or_description_carries_content(ingested) -> None:
    store = ingested.grace.clients.blob_store
    words: set[str] = set()
    for key in ingested.keys.values():
        payload = store.get_json(key, TRANSCRIPT)
        text = payload.get("text") or " ".join(s["text"] for s in payload["segments"])
        words.update(w.lower() for w in re.findall(r"[A-Za-z]{4,}", text))
    assert {"deadline", "warranty"} <= words  # the fixtures' content really is there to leak
    # the outcomes' own fixed words: booleans, source kinds, "does not apply to a document source"
    allowed = {"true", "false", "audio", "video", "document", "source", "does", "apply", "measured", "engine"}
    for e in _evaluations(_run(ingested, list(ingested.keys.values()))):
        shown = " ".join([e.description or "", *(f"{k} {v.value}" for k, v in e.metadata.items())]).lower()
        leaked = (set(re.findall(r"[a-z]{4,}", shown)) & words) - allowed
        # words that are also the checks' own vocabulary (e.g. "text") are not content
        vocabulary = set(re.findall(r"[a-z]{4,}", (BY_NAME[e.check_name].description + " " + e.check_name).lower()))
        assert leaked - vocabulary == set(), (e.check_name, leaked)


def test_a_corrupted_store_fails_the_right_check_for_that_source_only(ingested) -> None:
    store = ingested.grace.clients.blob_store
    index = ingested.grace.clients.chunk_index
    audio, pdf = ingested.keys["standup.mp3"], ingested.keys["kettle_guide.pdf"]
    pieces = store.get_json(audio, CHUNKS)
    table = index.table()
    row = table.search().where(f"id = '{audio}:0'").limit(1).to_list()[0]
    row.pop("_distance", None)
    try:
        store.put_json(audio, CHUNKS, [{**pieces[0], "text": "  "}, *pieces[1:]])  # an empty chunk
        table.delete(f"id = '{audio}:0'")  # a missing vector
        result = _run(ingested, [audio, pdf], ["quality_chunks_not_empty", "quality_embeddings_one_per_chunk"])
        failed = {(e.partition, e.check_name, e.severity.value) for e in _evaluations(result) if not e.passed}
        assert failed == {
            (audio, "quality_chunks_not_empty", ERROR),
            (audio, "quality_embeddings_one_per_chunk", ERROR),
        }
        record = _latest(ingested.instance, "embeddings", "quality_embeddings_one_per_chunk", audio)
        assert record.status.value == "FAILED"
        md = record.event.asset_check_evaluation.metadata
        assert md["rows_evaluated"].value == len(pieces) - 1 and md["chunks"].value == len(pieces)
        assert _latest(ingested.instance, "embeddings", "quality_embeddings_one_per_chunk", pdf).status.value == (
            "SUCCEEDED"
        )
    finally:
        store.put_json(audio, CHUNKS, pieces)
        if index.count(audio) < len(pieces):
            table.add([row])
    assert all(e.passed for e in _evaluations(_run(ingested, [audio], ["quality_embeddings_one_per_chunk"])))


def test_one_partitions_checks_run_alone_as_the_ui_launches_them(ingested) -> None:
    key = ingested.keys["standup.mp3"]
    selected = {dg.AssetCheckKey(dg.AssetKey("transcript"), "quality_transcript_ordered")}
    job = ingested.defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection=selected
    )
    result = job.execute_in_process(instance=ingested.instance, partition_key=key)
    assert result.success
    (evaluation,) = _evaluations(result)
    assert (evaluation.check_name, evaluation.partition, evaluation.passed) == ("quality_transcript_ordered", key, True)
    assert evaluation.metadata["rows_evaluated"].value >= 1
    assert _latest(ingested.instance, "transcript", "quality_transcript_ordered", key).run_id == result.run_id

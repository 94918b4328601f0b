"""quality_sensor on a real Dagster test instance and a real state database: it asks for a
quality run for sources whose `embeddings` were materialized since its cursor, never twice for
one materialization, batches keys, skips what is no longer searchable, and a re-embedding is
checked again."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.assets.quality import QUALITY_JOB, QUALITY_OP
from grace_pipelines.db.schema import Stage
from grace_pipelines.db.state import StateDB
from grace_pipelines.resources import StateResource
from grace_pipelines.sensors.quality import build_quality_sensor
from grace_pipelines.settings import load_settings


@pytest.fixture
def setup(home: Path):
    settings = load_settings(home=home, chunk_chars=400, chunk_overlap=80)
    settings.ensure_dirs()
    db = StateDB(settings.state_url)
    with dg.instance_for_test() as instance:
        yield settings, db, instance, StateResource(url=settings.state_url)


def _source(db: StateDB, instance: dg.DagsterInstance, n: int, stage: str = Stage.SEARCHABLE) -> str:
    key = f"{n:016x}"
    db.register_source(
        key=key,
        sha256=key * 4,
        filename=f"memo {n}.m4a",
        title=f"memo {n}.m4a",
        kind="audio",
        ext=".m4a",
        origin="voice_note",
        size=1000,
        duration_s=5.0,
        participants=["me"],
        inbox_path=None,
    )
    db.update_source(key, stage=stage)
    instance.add_dynamic_partitions("sources", [key])
    return key


def _searchable(instance: dg.DagsterInstance, *keys: str) -> None:
    for key in keys:  # what ingest_job and tiny_batch_job record once a source is searchable
        instance.report_runless_asset_event(dg.AssetMaterialization("embeddings", partition=key))


class Ticker:
    def __init__(self, settings, instance, state, **kwargs) -> None:
        self.sensor = build_quality_sensor(settings, **kwargs)
        self.instance, self.state, self.cursor = instance, state, None

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, resources={"state": self.state})
        result = self.sensor(context)
        self.cursor = result.cursor if result.cursor is not None else self.cursor
        return result


def _keys(request: dg.RunRequest) -> list[str]:
    return request.run_config["ops"][QUALITY_OP]["config"]["keys"]


def test_newly_searchable_sources_get_one_quality_run_and_not_twice(setup) -> None:
    settings, db, instance, state = setup
    ticker = Ticker(settings, instance, state)
    assert ticker.tick().run_requests == []  # nothing searchable yet
    a, b = _source(db, instance, 1), _source(db, instance, 2)
    _searchable(instance, a, b)
    (request,) = ticker.tick().run_requests
    assert request.job_name == QUALITY_JOB and _keys(request) == [a, b]
    assert request.run_config["ops"][QUALITY_OP]["config"]["chunk_chars"] == 400
    assert request.tags["grace/trigger"] == "quality" and request.tags["grace/title"] == "memo 1.m4a (+1 more)"
    assert "grace/source" not in request.tags and "grace/sources" not in request.tags  # not an ingest run
    again = ticker.tick()
    assert again.run_requests == [] and "no source became searchable" in again.skip_reason.skip_message

    _searchable(instance, b)  # re-embedded (a new model): checked again, alone
    (second,) = ticker.tick().run_requests
    assert _keys(second) == [b] and second.run_key != request.run_key


def test_keys_are_batched_and_what_is_no_longer_searchable_is_dropped(setup) -> None:
    settings, db, instance, state = setup
    ticker = Ticker(settings, instance, state, per_run=3, runs_per_tick=2)
    keys = [_source(db, instance, n) for n in range(1, 9)]
    purged = _source(db, instance, 99, stage=Stage.PURGED)
    _searchable(instance, keys[0], purged, *keys[1:])
    first = ticker.tick().run_requests  # 6 materializations per tick at most: the purged one and 5 keys
    assert [_keys(r) for r in first] == [keys[0:3], keys[3:5]]
    assert len({r.run_key for r in first}) == 2
    second = ticker.tick().run_requests
    assert [_keys(r) for r in second] == [keys[5:8]]
    assert ticker.tick().run_requests == []


def test_the_same_key_twice_in_a_window_is_checked_once(setup) -> None:
    settings, db, instance, state = setup
    ticker = Ticker(settings, instance, state)
    a = _source(db, instance, 1)
    _searchable(instance, a, a, a)
    (request,) = ticker.tick().run_requests
    assert _keys(request) == [a]


def test_only_sources_that_left_searchable_give_a_cursor_and_no_run(setup) -> None:
    settings, db, instance, state = setup
    ticker = Ticker(settings, instance, state)
    gone = _source(db, instance, 5)
    _searchable(instance, gone)
    db.update_source(gone, stage=Stage.PURGED)
    result = ticker.tick()
    assert result.run_requests == [] and "no longer searchable" in result.skip_reason.skip_message
    assert ticker.cursor is not None
    assert ticker.tick().run_requests == []


def test_quality_waits_while_ingest_runs_unless_a_source_waited_too_long(setup) -> None:
    settings, db, instance, state = setup
    a = _source(db, instance, 1)
    _searchable(instance, a)
    ingest = dg.DagsterRun(job_name="ingest_job", status=dg.DagsterRunStatus.STARTED)
    instance.add_run(ingest)
    patient = Ticker(settings, instance, state)
    waiting = patient.tick()
    assert waiting.run_requests == [] and "waiting for 1 ingest run" in waiting.skip_reason.skip_message
    assert patient.cursor is None, "nothing consumed while waiting"
    impatient = Ticker(settings, instance, state, max_wait_s=0.0)  # a flood must not starve quality
    (forced,) = impatient.tick().run_requests
    assert _keys(forced) == [a] and int(forced.tags["dagster/priority"]) < 0
    instance.report_run_failed(ingest)  # the ingest run is over: the patient sensor goes on
    (request,) = patient.tick().run_requests
    assert _keys(request) == [a]

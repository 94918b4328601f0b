"""`quality_sensor`: launch the data-quality checks for sources that became searchable.

Non-blocking by design: nothing waits on it, and the ingest run never runs a suite (they cost
a 5-8 s great-expectations import). The sensor reads the event log: every `embeddings`
materialization after its cursor (a storage id) is a source (re-)made searchable, so each one
is checked once per materialization, whether a single ingest run, a tiny batch, a consent
release or a re-embedding made it. Keys whose source is no longer searchable (purged, failed
since) are dropped. Up to `per_run` keys go into one `quality_job` run (GE imported once per
batch), at most `runs_per_tick` runs a tick; the run key names the storage ids it covers, so a
tick replayed after a crash asks for nothing twice.

On two cores a quality run beside an ingest run would slow the ingest down, so the sensor
yields: while an ingest run is queued or running it waits (cursor kept), unless the oldest
waiting materialization is older than `max_wait_s` (a flood must not starve quality for
ever). Its runs also carry the lowest `dagster/priority`, so the queue starts ingest first.
"""

from __future__ import annotations

import time

import dagster as dg

from grace_pipelines import tags as tag
from grace_pipelines.assets.quality import QUALITY_JOB, quality_job, quality_run_config
from grace_pipelines.db.schema import Stage
from grace_pipelines.resources import StateResource
from grace_pipelines.settings import GraceSettings

EMBEDDINGS = dg.AssetKey("embeddings")
PER_RUN = 50  # keys per quality run: GE's import (5-8 s) is paid once per run
RUNS_PER_TICK = 4
MAX_WAIT_S = 600.0  # run anyway once a searchable source waited this long behind ingest work
PRIORITY = -10  # ingest runs carry 0..20 (jobs.run_requests_for): they dequeue first
INGEST_JOBS = ("ingest_job", "tiny_batch_job")
BUSY = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def quality_request(keys: list[str], titles: list[str], first: int, last: int, chunk_chars: int) -> dg.RunRequest:
    """One `quality_job` run over `keys` (materializations `first`..`last` of `embeddings`)."""
    return dg.RunRequest(
        run_key=f"quality:{first}-{last}",
        job_name=QUALITY_JOB,
        run_config=quality_run_config(keys, chunk_chars),
        tags={
            tag.TRIGGER: "quality",
            tag.TITLE: tag.title_tag(titles[0] if titles else keys[0], len(keys) - 1),
            tag.PRIORITY: str(PRIORITY),
        },
    )


def ingest_in_flight(instance: dg.DagsterInstance) -> int:
    """Ingest runs queued or running (what a quality run would compete with for the CPU)."""
    return sum(
        len(instance.get_run_ids(filters=dg.RunsFilter(job_name=job, statuses=BUSY), limit=50)) for job in INGEST_JOBS
    )


def build_quality_sensor(
    settings: GraceSettings,
    interval: int = 30,
    per_run: int = PER_RUN,
    runs_per_tick: int = RUNS_PER_TICK,
    max_wait_s: float = MAX_WAIT_S,
) -> dg.SensorDefinition:
    @dg.sensor(
        name="quality_sensor",
        job=quality_job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Runs the data-quality checks (quality_job) for sources that became searchable, in batches, "
        "when no ingest run is waiting.",
    )
    def quality_sensor(context: dg.SensorEvaluationContext, state: StateResource) -> dg.SensorResult:
        after = int(context.cursor) if context.cursor else None
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=EMBEDDINGS, after_storage_id=after),
            limit=per_run * runs_per_tick,
            ascending=True,
        ).records
        if not records:
            return dg.SensorResult(skip_reason="no source became searchable since the last check")
        busy = ingest_in_flight(context.instance)
        waited = time.time() - records[0].timestamp
        if busy and waited < max_wait_s:
            return dg.SensorResult(
                skip_reason=f"{len(records)}+ source(s) to check; waiting for {busy} ingest run(s) "
                f"(oldest waited {waited:.0f} s of {max_wait_s:.0f} s)"
            )
        db = state.db()
        batch: dict[str, int] = {}  # key -> storage id of its newest materialization in this window
        for record in records:
            if record.partition_key:
                batch.pop(record.partition_key, None)
                batch[record.partition_key] = record.storage_id
        pending: list[tuple[str, int, str]] = []
        for key, storage_id in batch.items():
            row = db.get_source(key)
            if row is not None and row.stage == Stage.SEARCHABLE:
                pending.append((key, storage_id, row.title))
        requests = [
            quality_request(
                [k for k, _, _ in group],
                [t for _, _, t in group],
                min(s for _, s, _ in group),
                max(s for _, s, _ in group),
                settings.chunk_chars,
            )
            for group in (pending[i : i + per_run] for i in range(0, len(pending), per_run))
        ]
        cursor = str(records[-1].storage_id)
        if not requests:
            return dg.SensorResult(
                cursor=cursor, skip_reason=f"{len(batch)} source(s) materialized but no longer searchable"
            )
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return quality_sensor

"""`recovery_sensor`: under the daemon, what killed processes left is found and finished.

Each tick calls grace_pipelines.runtime.recovery: runs whose process is gone are marked failed and
their pool slots freed (otherwise every later run of that pool waits for ever), lost launches
go back to the dispatcher's queue, sources an interrupted run left mid-pipeline get a run
that resumes them from their last completed stage, unfinished purges are re-launched from the
purge journal, and temporary files no live run can own are removed. Thin: the logic is in
grace_pipelines/runtime/recovery.py, shared with the Python API and `grace doctor`.
"""

from typing import Any

import dagster as dg

from grace_pipelines.governance.holds import allowed_work
from grace_pipelines.jobs import purge_request, resume_request
from grace_pipelines.resources import BlobStore, StateResource, VectorStore
from grace_pipelines.runtime.recovery import recover
from grace_pipelines.settings import GraceSettings

SWEEP_EVERY_TICKS = 20


def build_recovery_sensor(settings: GraceSettings, jobs: list[Any], interval: int = 15) -> dg.SensorDefinition:
    @dg.sensor(
        name="recovery_sensor",
        jobs=jobs,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Fails runs whose process is gone, frees their pool slots, resumes interrupted sources and purges.",
    )
    def recovery_sensor(
        context: dg.SensorEvaluationContext,
        state: StateResource,
        blob_store: BlobStore,
        vector_store: VectorStore,
    ) -> dg.SensorResult:
        db = state.db()
        tick = int(context.cursor or 0)
        report = recover(
            context.instance,
            settings,
            db,
            blob_store=blob_store,
            vector_store=vector_store,
            sweep_temp=tick % SWEEP_EVERY_TICKS == 0,
        )  # folders walked every ~5 min, or after a death
        for run in report.dead_runs:
            context.log.warning(f"run {run['run_id']} ({run['job']}) marked failed: {run['why']}")
        if report.slots_freed:
            context.log.warning(f"freed the pool slots of {len(report.slots_freed)} finished or dead run(s)")
        if report.temp_files:
            context.log.info(f"removed {len(report.temp_files)} temporary file(s) left by killed writers")
        tag = str(tick + 1)
        requests = []
        for item in report.resume:
            row = db.get_source(item.key)
            allowed = allowed_work(db, row).narrowed(item.assets) if row is not None else None
            if allowed is not None and not allowed.assets:
                continue  # consent holds the rest: consent_sensor launches it once granted
            requests.append(resume_request(item, row, tag, allowed))
        requests += [
            purge_request(p["source_key"], p["plan"], f"purge-resume:{p['source_key']}:{p['journal_id']}")
            for p in report.purges
        ]
        if not requests:
            return dg.SensorResult(skip_reason=f"nothing to recover ({report.live_runs} live run(s))", cursor=tag)
        return dg.SensorResult(run_requests=requests, cursor=tag)

    return recovery_sensor

"""`inbox_sensor`: a file dropped into GRACE_HOME/inbox becomes a partition and a run.

Each tick scans incrementally (cursor), registers new sources in the state database, adds
their keys to the dynamic partitions `sources` and requests one `ingest_job` run per new
source (run key = source key, so a source is never launched twice). Refused files are
quarantined with a reason and never stop the others.
"""


from typing import Any

import dagster as dg

from grace_pipelines.inbox import scan_inbox
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import StateResource
from grace_pipelines.settings import GraceSettings


def run_request_for(drop_key: str, origin: str, kind: str, run_key: str | None = None) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key or drop_key,
        partition_key=drop_key,
        tags={"grace/origin": origin, "grace/kind": kind, "grace/source": drop_key},
    )


def build_inbox_sensor(settings: GraceSettings, job: Any) -> dg.SensorDefinition:
    @dg.sensor(
        name="inbox_sensor",
        job=job,
        minimum_interval_seconds=settings.inbox_poll_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Picks up files dropped into the inbox folder within seconds.",
    )
    def inbox_sensor(context: dg.SensorEvaluationContext, state: StateResource) -> dg.SensorResult:
        settings.ensure_dirs()
        result = scan_inbox(settings, state.db(), context.cursor)
        for name, reason in result.quarantined:
            context.log.warning(f"quarantined {name!r}: {reason}")
        for name, key in result.duplicates:
            context.log.info(f"{name!r} has the same bytes as source {key}; kept one")
        drops = result.new + result.retry
        return dg.SensorResult(
            run_requests=[run_request_for(d.key, d.origin, d.kind, run_key=d.run_key) for d in drops],
            dynamic_partitions_requests=(
                [sources_partitions.build_add_request([d.key for d in result.new])] if result.new else []
            ),
            cursor=result.cursor,
            skip_reason=None if drops else f"no new files ({result.seen} in inbox, {result.unsettled} still being written)",
        )

    return inbox_sensor

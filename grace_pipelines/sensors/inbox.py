"""`inbox_sensor`: a file dropped into GRACE_HOME/inbox becomes a partition and, when the
HTM dispatcher says so, a run.

Each tick scans incrementally (cursor), registers new sources in the state database (with a
size class, SLA deadline and priority) and adds their keys to the dynamic partitions
`sources`; then the dispatcher (grace_pipelines/htm/dispatcher.py) launches what should start now:
normal work at once, tiny work batched, heavy work deferred to `offpeak_schedule`, each origin
capped per minute. Refused files are quarantined with a reason and never stop the others.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import dagster as dg

from grace_pipelines.db.schema import utcnow
from grace_pipelines.htm.dispatcher import dispatch
from grace_pipelines.ingest.inbox import scan_inbox
from grace_pipelines.jobs import run_requests_for
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import StateResource
from grace_pipelines.settings import GraceSettings


def build_inbox_sensor(
    settings: GraceSettings, jobs: list[Any], clock: Callable[[], datetime] = utcnow
) -> dg.SensorDefinition:
    @dg.sensor(
        name="inbox_sensor",
        jobs=jobs,
        minimum_interval_seconds=settings.inbox_poll_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Picks up files dropped into the inbox folder within seconds.",
    )
    def inbox_sensor(context: dg.SensorEvaluationContext, state: StateResource) -> dg.SensorResult:
        settings.ensure_dirs()
        now = clock()
        result = scan_inbox(settings, state.db(), context.cursor, dropped_at=now)
        for name, reason in result.quarantined:
            context.log.warning(f"quarantined {name!r}: {reason}")
        for name, key in result.duplicates:
            context.log.info(f"{name!r} has the same bytes as source {key}; kept one")
        launches = dispatch(settings, state.db(), now)
        for launch in launches:
            context.log.info(
                f"launch {len(launch.keys)} {launch.origin}/{launch.size_class} source(s): {launch.reason}"
            )
        requests = [request for launch in launches for request in run_requests_for(launch, settings)]
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=(
                [sources_partitions.build_add_request([d.key for d in result.new])] if result.new else []
            ),
            cursor=result.cursor,
            skip_reason=None
            if requests
            else (f"nothing to launch ({result.seen} in inbox, {result.unsettled} still being written)"),
        )

    return inbox_sensor

"""`offpeak_schedule`: launches the heavy work the dispatcher deferred, inside the off-peak
window (default 01:00-06:00 in the configured time zone), every 10 minutes while it is open.

Evaluation time is the schedule's own tick time, so a test (or a backfilled tick) sees the
clock the schedule was meant to run at.
"""

from __future__ import annotations

from datetime import time, timezone
from typing import Any

import dagster as dg

from grace_pipelines.db.schema import utcnow
from grace_pipelines.htm.dispatcher import dispatch
from grace_pipelines.jobs import run_requests_for
from grace_pipelines.resources import StateResource
from grace_pipelines.settings import GraceSettings


def window_hours(start: time, end: time) -> list[int]:
    """The hours a cron must fire in to cover [start, end) (wrapping past midnight)."""
    hours, h = [], start.hour
    last = end.hour if end.minute else (end.hour - 1) % 24
    while True:
        hours.append(h)
        if h == last:
            return hours
        h = (h + 1) % 24


def build_offpeak_schedule(settings: GraceSettings, job: Any) -> dg.ScheduleDefinition:
    hours = ",".join(str(h) for h in window_hours(settings.offpeak_start, settings.offpeak_end))

    @dg.schedule(
        name="offpeak_schedule",
        target=job,
        cron_schedule=f"*/10 {hours} * * *",
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Launches deferred heavy work {settings.offpeak_start:%H:%M}-{settings.offpeak_end:%H:%M} "
        f"({settings.timezone}).",
    )
    def offpeak_schedule(context: dg.ScheduleEvaluationContext, state: StateResource) -> Any:
        now = context.scheduled_execution_time or utcnow()
        now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
        launches = dispatch(settings, state.db(), now, deferred_only=True)
        requests = [r for launch in launches for r in run_requests_for(launch, settings)]
        if not requests:
            return dg.SkipReason("no deferred heavy work waiting")
        return requests

    return offpeak_schedule

"""Schedules: weekly key rotation, nightly search-index upkeep, hourly HTM metrics (each with one
target, the job of its asset), and the off-peak window for deferred heavy work (offpeak.py)."""

import dagster as dg

from grace_pipelines.jobs import htm_metrics_job, key_rotation_job, search_index_job
from grace_pipelines.schedules.offpeak import build_offpeak_schedule

__all__ = ["build_offpeak_schedule", "htm_metrics_schedule", "key_rotation_schedule", "search_index_schedule"]

key_rotation_schedule = dg.ScheduleDefinition(
    name="key_rotation_schedule",
    target=key_rotation_job,
    cron_schedule="0 3 * * 0",  # Sundays 03:00
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Weekly key rotation, off-peak.",
)

search_index_schedule = dg.ScheduleDefinition(
    name="search_index_schedule",
    target=search_index_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly search-index upkeep, off-peak.",
)

htm_metrics_schedule = dg.ScheduleDefinition(
    name="htm_metrics_schedule",
    target=htm_metrics_job,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly HTM metrics (plotted from the asset's numeric metadata).",
)

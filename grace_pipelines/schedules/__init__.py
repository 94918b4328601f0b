"""Schedules: the off-peak window for deferred heavy work (offpeak.py) and the layered views.
Key rotation, search-index upkeep and HTM metrics run from their playbooks (playbooks/*.yaml,
grace_pipelines/playbooks), so every recurring job has one home."""

import dagster as dg

from grace_pipelines.jobs import layers_job
from grace_pipelines.schedules.offpeak import build_offpeak_schedule

__all__ = ["build_offpeak_schedule", "layers_schedule"]

layers_schedule = dg.ScheduleDefinition(
    name="layers_schedule",
    target=layers_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: the control room's layered views (ops, orchestration, intent, dev) refreshed.",
)

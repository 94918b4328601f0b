"""Schedules: weekly key rotation, nightly search-index upkeep, hourly HTM metrics, and the
off-peak window for deferred heavy work (schedules/offpeak.py)."""

import dagster as dg

from grace_pipelines.schedules.offpeak import build_offpeak_schedule

__all__ = [
    "build_offpeak_schedule", "htm_metrics_job", "htm_metrics_schedule", "key_rotation_job", "key_rotation_schedule",
    "search_index_job", "search_index_schedule",
]

key_rotation_job = dg.define_asset_job(
    "key_rotation_job",
    selection=dg.AssetSelection.assets("keyring"),
    description="Rotate the key-encryption key: re-wrap every blob, verify, retire the old key.",
)

key_rotation_schedule = dg.ScheduleDefinition(
    name="key_rotation_schedule",
    job=key_rotation_job,
    cron_schedule="0 3 * * 0",  # Sundays 03:00
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Weekly key rotation, off-peak.",
)

search_index_job = dg.define_asset_job(
    "search_index_job",
    selection=dg.AssetSelection.assets("search_index"),
    description="Compact the chunks table, fold new rows into the indices, build the vector index at scale.",
)

search_index_schedule = dg.ScheduleDefinition(
    name="search_index_schedule",
    job=search_index_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly search-index upkeep, off-peak.",
)

htm_metrics_job = dg.define_asset_job(
    "htm_metrics_job",
    selection=dg.AssetSelection.assets("htm_metrics"),
    description="Record throughput, latency, SLA compliance, queue depth and starvation.",
)

htm_metrics_schedule = dg.ScheduleDefinition(
    name="htm_metrics_schedule",
    job=htm_metrics_job,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly HTM metrics (plotted from the asset's numeric metadata).",
)

"""Schedules: weekly key rotation and nightly search-index upkeep (the configurable off-peak
window and metrics come with the HTM issue)."""

import dagster as dg

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

"""Schedules: weekly key rotation (off-peak work and metrics come with the HTM issue)."""

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

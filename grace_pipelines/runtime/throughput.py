"""Per-stage throughput from the Dagster instance's step statistics of ingest runs (items and
bytes per busy second), for `htm_metrics` and `grace status --htm`. Reads the instance, so it
imports Dagster; the HTM policy modules beside it do not."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from grace_pipelines import tags as tag
from grace_pipelines.db.state import StateDB

STAGES = ("source", "transcript", "chunks", "embeddings", "ingest_batch")  # ingest_batch: tiny batches, all four


def stage_throughput(instance: dg.DagsterInstance, db: StateDB, since: datetime) -> dict[str, dict[str, float]]:
    """Items and bytes per busy second of each stage, from the step statistics of ingest runs."""
    runs = [
        run
        for job in ("ingest_job", "tiny_batch_job")
        for run in instance.get_runs(filters=dg.RunsFilter(job_name=job, created_after=since), limit=5000)
    ]
    totals = {s: {"items": 0.0, "busy_s": 0.0, "bytes": 0.0} for s in STAGES}
    sizes: dict[str, int] = {}
    for run in runs:
        keys = [k for k in run.tags.get(tag.SOURCES, run.tags.get(tag.SOURCE, "")).split(",") if k]
        for key in keys:
            if key not in sizes:
                row = db.get_source(key)
                sizes[key] = row.bytes if row else 0
        for step in instance.get_run_step_stats(run.run_id):
            if (
                step.step_key in totals
                and step.start_time
                and step.end_time
                and step.status
                and step.status.value == "SUCCESS"
            ):
                totals[step.step_key]["items"] += len(keys)
                totals[step.step_key]["busy_s"] += step.end_time - step.start_time
                totals[step.step_key]["bytes"] += sum(sizes[k] for k in keys)
    out = {}
    for stage, t in totals.items():
        if t["busy_s"] > 0:
            out[stage] = {
                "items": t["items"],
                "busy_s": round(t["busy_s"], 2),
                "items_per_s": round(t["items"] / t["busy_s"], 3),
                "bytes_per_s": round(t["bytes"] / t["busy_s"], 1),
            }
    return out

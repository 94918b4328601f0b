"""`htm_metrics`: the task manager's health, hourly, as numeric metadata the UI plots.

Items, bytes, throughput (overall and per stage), p50/p95 drop-to-searchable latency, SLA
compliance, queue depth and starvation events, overall and per origin and size class, plus a
markdown table (grace_pipelines/htm/metrics.py computes them; `grace status --htm` prints the same).
"""


from datetime import datetime, timedelta

import dagster as dg

from grace_pipelines.htm.metrics import htm_report, markdown, numeric_metadata
from grace_pipelines.resources import StateResource
from grace_pipelines.db.schema import utcnow
from grace_pipelines.db.state import StateDB

STAGES = ("source", "transcript", "chunks", "embeddings", "ingest_batch")  # ingest_batch: tiny batches, all four
WINDOW = timedelta(hours=1)


def stage_throughput(instance: dg.DagsterInstance, db: StateDB, since: datetime) -> dict[str, dict[str, float]]:
    """Items and bytes per busy second of each stage, from the step statistics of ingest runs."""
    runs = [
        run for job in ("ingest_job", "tiny_batch_job")
        for run in instance.get_runs(filters=dg.RunsFilter(job_name=job, created_after=since), limit=5000)
    ]
    totals = {s: {"items": 0.0, "busy_s": 0.0, "bytes": 0.0} for s in STAGES}
    sizes: dict[str, int] = {}
    for run in runs:
        keys = [k for k in run.tags.get("grace/sources", run.tags.get("grace/source", "")).split(",") if k]
        for key in keys:
            if key not in sizes:
                row = db.get_source(key)
                sizes[key] = row.bytes if row else 0
        for step in instance.get_run_step_stats(run.run_id):
            if step.step_key in totals and step.start_time and step.end_time and step.status and step.status.value == "SUCCESS":
                totals[step.step_key]["items"] += len(keys)
                totals[step.step_key]["busy_s"] += step.end_time - step.start_time
                totals[step.step_key]["bytes"] += sum(sizes[k] for k in keys)
    out = {}
    for stage, t in totals.items():
        if t["busy_s"] > 0:
            out[stage] = {"items": t["items"], "busy_s": round(t["busy_s"], 2),
                          "items_per_s": round(t["items"] / t["busy_s"], 3), "bytes_per_s": round(t["bytes"] / t["busy_s"], 1)}
    return out


@dg.asset(group_name="operations", kinds={"python", "sqlite"})
def htm_metrics(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """Throughput, latency, SLA compliance, queue depth and starvation over the last hour."""
    db = state.db()
    now = utcnow()
    report = htm_report(db, now, WINDOW, stages=stage_throughput(context.instance, db, now - WINDOW))
    return dg.MaterializeResult(metadata={**numeric_metadata(report), "report": dg.MetadataValue.md(markdown(report))})

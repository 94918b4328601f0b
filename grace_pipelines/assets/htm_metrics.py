"""`htm_metrics`: the task manager's health, hourly, as numeric metadata the UI plots.

Items, bytes, throughput (overall and per stage), p50/p95 drop-to-searchable latency, SLA
compliance, queue depth and starvation events, overall and per origin and size class, plus a
markdown table (grace_pipelines/htm/metrics.py computes them; `grace status --htm` prints the same).
"""

from datetime import timedelta

import dagster as dg

from grace_pipelines.db.schema import utcnow
from grace_pipelines.htm.metrics import htm_report, markdown, numeric_metadata
from grace_pipelines.resources import StateResource
from grace_pipelines.runtime.throughput import stage_throughput

WINDOW = timedelta(hours=1)


@dg.asset(group_name="orchestration", kinds={"python", "sqlite"})
def htm_metrics(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """Throughput, latency, SLA compliance, queue depth and starvation over the last hour."""
    db = state.db()
    now = utcnow()
    report = htm_report(db, now, WINDOW, stages=stage_throughput(context.instance, db, now - WINDOW))
    return dg.MaterializeResult(metadata={**numeric_metadata(report), "report": dg.MetadataValue.md(markdown(report))})

"""The `orchestration` layer: what the task manager (HTM) did today and who is waiting.

`sla_tiers` counts today's SLA escalations from the HTM ledger (warning at 75 % of a target,
violated at 100 %, critical at 150 %, starved: never started within its SLA) per origin x size
class, plotted; `htm_metrics` (assets/htm_metrics.py) sits in the same group with throughput,
latency, compliance and queue depth. Counting is plain code (runtime/health.py).
"""

import dagster as dg

from grace_pipelines.db.htm_ledger import Ledger
from grace_pipelines.db.schema import utcnow
from grace_pipelines.resources import StateResource
from grace_pipelines.runtime.health import SLA_KINDS, md_table, start_of_day, tier_counts, tier_totals
from grace_pipelines.settings import GraceSettings

GROUP = "orchestration"


def build_orchestration_assets(settings: GraceSettings) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name=GROUP,
        kinds={"python", "sqlite"},
        check_specs=[
            dg.AssetCheckSpec("no_critical_sla", asset="sla_tiers", description="No critical SLA event today (WARN)")
        ],
    )
    def sla_tiers(context: dg.AssetExecutionContext, state: StateResource):
        """Look here first: `critical` (a source at 150 % of its drop-to-searchable target; the
        webhook was alerted) and `starved` (work that never started within its SLA), today, per
        origin x size class in the table; then `htm_metrics` beside it for throughput, p95
        latency and queue depth. Counts since midnight in the configured time zone."""
        now = utcnow()
        since = start_of_day(now, settings.tz)
        pairs = tier_counts(Ledger(state.db()).events(since=since))
        totals = tier_totals(pairs)
        metadata: dict = {
            **totals,
            "events": sum(totals.values()),
            "since": since.isoformat(),
            # one plottable series per origin x size x tier that happened (keys stay stable day to day)
            **{f"{kind}/{origin}/{size}": c[kind] for (origin, size), c in pairs.items() for kind in SLA_KINDS},
            "by_origin_and_size": dg.MetadataValue.md(
                md_table(
                    ("origin", "size", *SLA_KINDS),
                    ((origin, size, *(c[k] for k in SLA_KINDS)) for (origin, size), c in pairs.items()),
                    empty="no SLA event today",
                )
            ),
        }
        worst = [f"{origin}/{size}: {c['critical']}" for (origin, size), c in pairs.items() if c["critical"]]
        check = dg.AssetCheckResult(
            check_name="no_critical_sla",
            passed=totals["critical"] == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description="no critical SLA event today" if not worst else "critical today: " + ", ".join(worst),
            metadata={"critical": totals["critical"], "starved": totals["starved"]},
        )
        context.log.info(f"SLA events today: {totals}")
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return [sla_tiers]

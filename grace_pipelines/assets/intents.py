"""`intents`: what people asked for and how far it is, as numeric metadata the UI plots, with the
check `intents_on_time` (WARN when an open intent is projected to miss its deadline, or is
overdue). The figures come from grace_pipelines/intents/service.py, the same ones `grace intent
status` prints; descriptions carry file titles and deadlines, never content.
"""

from datetime import timedelta

import dagster as dg

from grace_pipelines.db.intents import LIVE_STATUSES
from grace_pipelines.db.schema import utcnow
from grace_pipelines.intents.progress import STATUSES
from grace_pipelines.intents.service import describe
from grace_pipelines.resources import StateResource
from grace_pipelines.settings import GraceSettings

RECENT = timedelta(days=1)  # finished intents stay in the table (and the plots) this long
MAX_ROWS = 50


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def build_intents_asset(settings: GraceSettings) -> dg.AssetsDefinition:
    """The asset for one GRACE_HOME's settings (time zone of the deadlines, expected processing rate)."""

    @dg.asset(
        group_name="intent",
        kinds={"python"},
        check_specs=[
            dg.AssetCheckSpec("intents_on_time", asset="intents", description="Open intents meet their deadline")
        ],
    )
    def intents(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
        """Intents by status, the progress of each open (or recently finished) one, and whether the
        open ones are projected to meet their deadlines."""
        db = state.db()
        now = utcnow()
        rows = db.list_intents()
        counts = {s: 0 for s in STATUSES}
        for row in rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        shown = [r for r in rows if r.status in LIVE_STATUSES or (r.completed_at and now - r.completed_at < RECENT)]
        shown = shown[-MAX_ROWS:]
        metadata: dict[str, object] = {f"{s}_count": dg.MetadataValue.int(n) for s, n in counts.items()}
        lines = [
            "| intent | status | description | deadline | done/total | failed | on time |",
            "|---|---|---|---|---|---|---|",
        ]
        late: list[str] = []
        for row in shown:
            info = describe(db, settings, row, now)
            prefix = f"intent.{row.id}"
            metadata[f"{prefix}.done"] = dg.MetadataValue.int(info["done"])
            metadata[f"{prefix}.total"] = dg.MetadataValue.int(info["total"])
            metadata[f"{prefix}.failed"] = dg.MetadataValue.int(info["failed"])
            metadata[f"{prefix}.fraction"] = dg.MetadataValue.float(
                info["done"] / info["total"] if info["total"] else 1.0
            )
            if not info["on_time"]:
                late.append(f"#{row.id}")
            lines.append(
                f"| #{row.id} | {row.status} | {_cell(row.description)} | {info['deadline_local'] or '-'} "
                f"| {info['done']}/{info['total']} | {info['failed']} | {'yes' if info['on_time'] else 'no'} |"
            )
        metadata["at_risk_count"] = dg.MetadataValue.int(len(late))
        metadata["report"] = dg.MetadataValue.md("\n".join(lines) if shown else "No open or recent intents.")
        context.log.info(f"{counts['open']} open, {counts['overdue']} overdue, {len(late)} at risk")
        check = dg.AssetCheckResult(
            check_name="intents_on_time",
            passed=not late,
            severity=dg.AssetCheckSeverity.WARN,
            description=None if not late else f"{', '.join(late)} overdue or projected to miss the deadline",
            metadata={"at_risk": dg.MetadataValue.int(len(late)), "overdue": dg.MetadataValue.int(counts["overdue"])},
        )
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return intents

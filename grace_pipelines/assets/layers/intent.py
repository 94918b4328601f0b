"""The `intent` layer: is Grace doing what the person asked of it?

`search_quality` shows the latest `grace eval` result (recall@1, recall@5 and MRR per search
mode on the eval set, which search/evaluation.py records under GRACE_HOME/eval/latest.json),
with a floor on hybrid recall@5. The `intents` asset (requested outcomes with deadlines) lives
in assets/intents.py in the same group. Feedback on answers does not exist yet.
"""

from datetime import datetime
from typing import Any

import dagster as dg
from pydantic import Field

from grace_pipelines.db.schema import utcnow
from grace_pipelines.runtime.health import age_s, md_table
from grace_pipelines.search.evaluation import SUMMARY_FILE, latest_summary
from grace_pipelines.settings import GraceSettings

GROUP = "intent"
FLOOR = 0.9  # the retrieval floor CI holds (tests/eval/test_retrieval_floor.py)


class SearchQualityConfig(dg.Config):
    recall_at_5_floor: float = Field(FLOOR, ge=0.0, le=1.0, description="WARN when recall@5 falls below this")
    mode: str = Field("hybrid", description="The search mode the floor applies to")


def build_intent_assets(settings: GraceSettings) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name=GROUP,
        kinds={"python", "lancedb"},
        check_specs=[
            dg.AssetCheckSpec(
                "recall_at_5_floor", asset="search_quality", description="Hybrid recall@5 above the floor (WARN)"
            )
        ],
    )
    def search_quality(context: dg.AssetExecutionContext, config: SearchQualityConfig):
        """Look here first: `recall_at_5_floor` (WARN) and the per-mode table: does search find
        the right passage in the top 5 (recall@5), first (recall@1), and how high (MRR)? From the
        latest `grace eval`; `evaluated: 0` means none has run yet. Then the `intents` asset:
        requested outcomes with deadlines, done / total and what failed. (Feedback on answers is
        not collected yet.)"""
        summary = latest_summary(settings.home)
        if summary is None:
            hint = f"no evaluation yet: run `grace eval` (it records {SUMMARY_FILE} under GRACE_HOME)"
            context.log.info(hint)
            return dg.MaterializeResult(
                metadata={"evaluated": 0, "hint": hint},
                check_results=[
                    dg.AssetCheckResult(
                        check_name="recall_at_5_floor",
                        passed=True,
                        severity=dg.AssetCheckSeverity.WARN,
                        description=hint,
                        metadata={"evaluated": 0},
                    )
                ],
            )
        modes: dict[str, dict[str, Any]] = summary.get("modes") or {}
        metadata: dict[str, Any] = {
            "evaluated": 1,
            "evaluated_at": str(summary.get("evaluated_at")),
            "corpus_sources": int(summary.get("sources") or 0),
            "questions": int(summary.get("questions") or 0),
            **{
                f"{mode}/{name}": float(m[name])
                for mode, m in modes.items()
                for name in ("recall_at_1", "recall_at_5", "mrr")
                if m.get(name) is not None
            },
            "modes": dg.MetadataValue.md(
                md_table(
                    ("mode", "recall@1", "recall@5", "MRR", "p50 ms"),
                    (
                        (mode, m.get("recall_at_1"), m.get("recall_at_5"), m.get("mrr"), m.get("p50_ms"))
                        for mode, m in modes.items()
                    ),
                )
            ),
        }
        try:
            metadata["age_s"] = age_s(datetime.fromisoformat(str(summary["evaluated_at"])), utcnow())
        except (KeyError, ValueError):
            pass
        recall = (modes.get(config.mode) or {}).get("recall_at_5")
        if recall is None:
            passed, why = False, f"the latest evaluation has no {config.mode!r} mode"
        else:
            passed = float(recall) >= config.recall_at_5_floor
            why = f"{config.mode} recall@5 {float(recall):.3f} (floor {config.recall_at_5_floor:.2f})"
        check = dg.AssetCheckResult(
            check_name="recall_at_5_floor",
            passed=passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=why,
            metadata={"recall_at_5": float(recall) if recall is not None else -1.0, "floor": config.recall_at_5_floor},
        )
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return [search_quality]

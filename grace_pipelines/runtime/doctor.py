"""`grace doctor`: what recovery found (dead runs, leaked pool slots, stuck sources, unfinished
purges, temporary files) and what under GRACE_HOME others could read, as one JSON report;
with `repair`, the permissions are tightened too (recovery has already repaired the rest)."""

from __future__ import annotations

from typing import Any

from grace_pipelines.runtime.recovery import RecoveryReport
from grace_pipelines.settings import GraceSettings
from grace_pipelines.stores.permissions import loose_paths, tighten


def doctor_report(settings: GraceSettings, report: RecoveryReport, *, repair: bool) -> dict[str, Any]:
    loose = loose_paths(settings.home, skip=[settings.inbox])
    fixed = tighten(p for p, _ in loose) if repair else 0
    if repair:
        loose = loose_paths(settings.home, skip=[settings.inbox])
    stuck = [{"source_key": r.key, "stage": r.stage, "why": r.why} for r in report.resume]
    stuck += [{"source_key": k, "stage": "registered", "why": "its launch or run was lost"} for k in report.requeued]
    problems = {
        "dead_runs": report.dead_runs,
        "slots": report.slots_freed,
        "stuck_sources": stuck,
        "unfinished_purges": [p["source_key"] for p in report.purges],
        "temp_files": report.temp_files,
        "permissions": [
            {"path": str(p.relative_to(settings.home.parent)) if p != settings.home else str(p), "mode": oct(m)}
            for p, m in loose
        ],
    }
    found = report.found_anything or bool(loose) or bool(fixed)
    return {
        "home": str(settings.home),
        "repaired": repair,
        "healthy": not found if not repair else not loose,
        "permissions_fixed": fixed,
        "recovery_s": report.seconds,
        "resumed": report.outcomes,
        **problems,
    }

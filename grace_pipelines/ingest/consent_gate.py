"""The consent gate shared by the stages: evaluate a scope and shape the check result.

`source` carries the blocking check `consent_transcribe` and `transcript` the blocking check
`consent_index`; a failed check stops everything downstream in the run and names who is
missing and the command that grants. Stages also re-verify before touching content
(defense in depth: a run can be launched with a subset of assets).
"""

import dagster as dg

from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import Stage, utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.consent import grant_command, missing_parties


def missing_for(db: StateDB, row: SourceRow, scope: str) -> list[str]:
    return missing_parties(row.participants, db.consent_events(row.key), scope, utcnow())


def consent_check_result(db: StateDB, row: SourceRow, scope: str) -> dg.AssetCheckResult:
    missing = missing_for(db, row, scope)
    commands = [grant_command(row.key, party, scope) for party in missing]
    if missing:
        db.set_stage(
            row.key,
            Stage.AWAITING_CONSENT,
            reason=f"{scope}: missing consent from {', '.join(missing)}; run: " + " ; ".join(commands),
        )
    return dg.AssetCheckResult(
        check_name=f"consent_{scope}",
        passed=not missing,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"every participant consented to {scope}"
            if not missing
            else f"{scope} needs consent from: {', '.join(missing)}"
        ),
        metadata={
            "source_key": row.key,
            "title": row.title,
            "scope": scope,
            "participants": ", ".join(row.participants),
            "missing_parties": ", ".join(missing) or "none",
            "missing_count": len(missing),
            "grant_commands": dg.MetadataValue.md("\n".join(f"`{c}`" for c in commands) or "none needed"),
        },
    )


def require_consent(db: StateDB, row: SourceRow, scope: str) -> None:
    missing = missing_for(db, row, scope)
    if missing:
        raise dg.Failure(
            description=f"source {row.key} ({row.title}) lacks {scope} consent from {', '.join(missing)}",
            metadata={"missing_parties": ", ".join(missing)},
            allow_retries=False,
        )


def load_row(db: StateDB, key: str) -> SourceRow:
    row = db.get_source(key)
    if row is None:
        raise dg.Failure(description=f"source {key} is not registered in the state database", allow_retries=False)
    return row

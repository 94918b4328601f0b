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
from grace_pipelines.governance.consent import grant_command, missing_parties, name_command, voice_holds


def missing_for(db: StateDB, row: SourceRow, scope: str) -> list[str]:
    """Who (or which voice) `scope` still waits on: parties without a grant, and for `index`
    the voices the declared participants do not account for (governance/consent.voice_holds)."""
    missing = missing_parties(row.participants, db.consent_events(row.key), scope, utcnow())
    if scope == "index":
        missing += [h["reason"] for h in voice_holds(row.participants, db.source_speakers(row.key))]
    return missing


def consent_check_result(db: StateDB, row: SourceRow, scope: str) -> dg.AssetCheckResult:
    parties = missing_parties(row.participants, db.consent_events(row.key), scope, utcnow())
    voices = voice_holds(row.participants, db.source_speakers(row.key)) if scope == "index" else []
    missing = parties + [v["reason"] for v in voices]  # what missing_for says, without asking twice
    commands = [grant_command(row.key, party, scope) for party in parties]
    commands += [name_command(row.key, v["label"]) for v in voices]
    held_by = [v["reason"] for v in voices]
    why = "; ".join(
        ([f"missing consent from {', '.join(parties)}"] if parties else [])
        + ([f"held by {', '.join(held_by)} (nobody declared them)"] if held_by else [])
    )
    if missing:
        db.set_stage(row.key, Stage.AWAITING_CONSENT, reason=f"{scope}: {why}; run: " + " ; ".join(commands))
    return dg.AssetCheckResult(
        check_name=f"consent_{scope}",
        passed=not missing,
        # a voice found while transcribing is a hold, not a failed run: WARN does not fail the
        # step; chunks sees the same hold and skips (nothing downstream is materialized)
        severity=dg.AssetCheckSeverity.ERROR if parties or not missing else dg.AssetCheckSeverity.WARN,
        description=(f"every participant consented to {scope}" if not missing else f"{scope}: {why}"),
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


def voices_holding(db: StateDB, key: str) -> list[str]:
    """The voices nobody declared that hold indexing `key` (empty when none, or not a recording)."""
    row = db.get_source(key)
    return [v["reason"] for v in voice_holds(row.participants, db.source_speakers(key))] if row else []


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

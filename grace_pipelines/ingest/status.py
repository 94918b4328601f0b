"""Each source's state and why, as `grace status`, the ingest outcomes and the web app show it:
the lifecycle `Stage` stored in the database, told to a person (`processing`, `awaiting_consent`
naming who is missing and the command that grants, deferred heavy work with its window, ...)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import Stage, utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.consent import grant_command, missing_parties
from grace_pipelines.settings import GraceSettings


@dataclass
class SourceStatus:
    source_key: str | None
    title: str
    kind: str | None
    origin: str | None
    state: str  # awaiting_consent | processing | searchable | failed | quarantined | purging | purged | no_text_layer
    why: str
    recorded_at: datetime | None = None  # creation-time tag, else the file's mtime at drop (UTC)
    dropped_at: datetime | None = None  # when the inbox registered it (UTC)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("recorded_at", "dropped_at"):  # ISO 8601 UTC in JSON
            if out[name] is not None:
                out[name] = out[name].astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        return out


def status_for(row: SourceRow, settings: GraceSettings, db: StateDB, embedding_model: str) -> SourceStatus:
    """What a person is told about a source: its state and why, with the command that moves it on."""
    status = stage_status(row)
    if (
        status.state == "processing"
        and row.stage == Stage.REGISTERED
        and row.launched_at is None
        and row.route == "defer"
        and row.sla_due
    ):
        status.why = (
            f"heavy work, deferred to the off-peak window ({settings.offpeak_start:%H:%M}-"
            f"{settings.offpeak_end:%H:%M} {settings.timezone}); due {row.sla_due:%Y-%m-%d %H:%M} UTC"
        )
    elif status.state == "processing" and row.stage == Stage.REGISTERED and row.launched_at is None and row.sla_due:
        status.why = f"waiting to be launched ({row.size_class} {row.origin}, due {row.sla_due:%H:%M:%S} UTC)"
    if status.state == "searchable" and row.embedding_model != embedding_model:
        status.state = "processing"
        status.why = (
            "indexed by an earlier embedding model; reembed_sensor re-embeds it (or: grace reembed), "
            "search skips it until then"
        )
    if status.state == "awaiting_consent":
        now = utcnow()
        events = db.consent_events(row.key)
        waiting = [scope for scope in ("transcribe", "index") if missing_parties(row.participants, events, scope, now)]
        if not waiting:
            status.state = "processing"
            status.why = "consent complete; consent_sensor launches the held work (or: grace consent grant ... --wait)"
        else:
            lines = []
            for scope in waiting:
                missing = missing_parties(row.participants, events, scope, now)
                lines.append(
                    f"{scope}: missing consent from {', '.join(missing)} ("
                    + "; ".join(grant_command(row.key, p, scope) for p in missing)
                    + ")"
                )
            status.why = " | ".join(lines)
    return status


def stage_status(row: SourceRow) -> SourceStatus:
    """The state a stored stage shows as (several stages are all 'processing')."""
    stage = row.stage
    if stage == Stage.SEARCHABLE:
        state, why = "searchable", "transcribed, chunked and indexed"
    elif stage == Stage.FAILED:
        state, why = "failed", row.reason or "failed"
    elif stage == Stage.NO_TEXT_LAYER:
        state, why = "no_text_layer", row.reason or "no text layer"
    elif stage == Stage.PURGING:
        state, why = (
            "purging",
            "purge in progress (an interrupted purge is finished by the next grace command or recovery_sensor)",
        )
    elif stage == Stage.PURGED:
        state, why = "purged", row.reason or "purged"
    elif stage == Stage.AWAITING_CONSENT:
        state, why = "awaiting_consent", row.reason or "waiting for consent"
    else:
        state, why = "processing", f"at stage {stage}"
    return SourceStatus(
        row.key, row.title, row.kind, row.origin, state, why, recorded_at=row.recorded_at, dropped_at=row.dropped_at
    )

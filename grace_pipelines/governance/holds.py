"""Held work that consent now lets go on: a source held before transcription needs every
`transcribe` grant; one whose transcript exists needs the `index` grants too and then only
chunks and embeddings run again. Shared by `consent_sensor` and `grace consent grant --wait`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import HELD_STAGES, utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.consent import SCOPES, grant_command, missing_parties
from grace_pipelines.stores.blobs import TRANSCRIPT


def released(db: StateDB, blob_store: object, keys: Iterable[str]) -> list[tuple[SourceRow, bool]]:
    """(row, index_only) for each held source in `keys` that may proceed now, in key order;
    `index_only`: its transcript exists, so only the index stages are left."""
    out = []
    for key in sorted(set(keys)):
        row = db.get_source(key)
        if row is None or row.stage not in HELD_STAGES:
            continue
        events = db.consent_events(key)
        now = utcnow()
        if missing_parties(row.participants, events, "transcribe", now):
            continue
        has_transcript = blob_store.exists(key, TRANSCRIPT)  # type: ignore[attr-defined]
        if has_transcript and missing_parties(row.participants, events, "index", now):
            continue
        out.append((row, has_transcript))
    return out


def consent_overview(db: StateDB, *, pending: bool = False) -> list[dict[str, Any]]:
    """Per source and scope: participants, who granted, who is missing (and the command that
    grants for each); `pending`: only what still waits on someone."""
    out = []
    now = utcnow()
    for row in db.list_sources():
        events = db.consent_events(row.key)
        for scope in SCOPES:
            missing = missing_parties(row.participants, events, scope, now)
            if pending and not missing:
                continue
            out.append(
                {
                    "source_key": row.key,
                    "title": row.title,
                    "scope": scope,
                    "participants": row.participants,
                    "granted": [p for p in row.participants if p not in missing],
                    "missing": missing,
                    "commands": [grant_command(row.key, p, scope) for p in missing],
                }
            )
    return out

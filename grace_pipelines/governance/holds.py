"""What consent lets a source's work do, and held work that consent now lets go on.

Launchers (the dispatcher behind `inbox_sensor`, `consent_sensor`, `grace ingest --wait`)
ask `allowed_work` before they start a run, so a source waiting for someone is a hold, not a
failed run: without every `transcribe` grant only `source` runs (the bytes are sealed into the
store and the plaintext leaves the inbox) with no consent check evaluated; with `transcribe`
but not `index`, `source` and `transcript` run. The blocking consent checks stay on the assets
as the safety net for manual materializations. Shared by the sensors, the facade and
`grace consent grant --wait`; no Dagster here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import HELD_STAGES, utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.consent import (
    SCOPES,
    grant_command,
    missing_parties,
    name_command,
    refused_parties,
    voice_holds,
)
from grace_pipelines.stores.blobs import TRANSCRIPT

INGEST_ASSETS = ("source", "transcript", "chunks", "embeddings")
INDEX_ASSETS = ("chunks", "embeddings")
CONSENT_CHECKS = (("source", "consent_transcribe"), ("transcript", "consent_index"))


@dataclass(frozen=True)
class Allowed:
    """The part of the ingest graph consent lets a run do now.

    `assets`: the ingest assets to select, in graph order. `checks`: the (asset, check) pairs to
    evaluate; the consent check of a scope still awaited is left out, so the run is a green hold
    rather than a red failure. `awaiting`: scope -> parties still missing."""

    assets: tuple[str, ...]
    checks: tuple[tuple[str, str], ...]
    awaiting: dict[str, list[str]] = field(default_factory=dict)

    @property
    def held(self) -> bool:
        return bool(self.awaiting)

    @property
    def complete(self) -> bool:
        """The whole graph with every check: nothing is held."""
        return not self.awaiting and self.assets == INGEST_ASSETS

    def narrowed(self, wanted: Iterable[str]) -> Allowed:
        """Only the assets of `wanted` that are allowed (a resume or an index-only re-run)."""
        wanted = set(wanted)
        assets = tuple(a for a in self.assets if a in wanted)
        return Allowed(assets, tuple(c for c in self.checks if c[0] in assets), self.awaiting)

    def reason(self) -> str:
        """Who the hold waits on, e.g. `awaiting consent: transcribe from ana, bo`."""
        if not self.awaiting:
            return "consent complete"
        return "awaiting consent: " + "; ".join(f"{s} from {', '.join(p)}" for s, p in self.awaiting.items())


def allowed_work(db: StateDB, row: SourceRow, now: datetime | None = None) -> Allowed:
    """What `row`'s ingest may do under the consent ledger right now."""
    now = now or utcnow()
    events = db.consent_events(row.key)
    voices = [h["reason"] for h in voice_holds(row.participants, db.source_speakers(row.key))]
    awaiting = {
        scope: missing
        for scope in ("transcribe", "index")
        if (missing := missing_parties(row.participants, events, scope, now) + (voices if scope == "index" else []))
    }
    if "transcribe" in awaiting:
        return Allowed(("source",), (), awaiting)
    if "index" in awaiting:
        return Allowed(("source", "transcript"), (CONSENT_CHECKS[0],), awaiting)
    return Allowed(INGEST_ASSETS, CONSENT_CHECKS)


def released(db: StateDB, blob_store: object, keys: Iterable[str]) -> list[tuple[SourceRow, Allowed]]:
    """(row, what to run) for each held source in `keys` that a grant lets go further, in key
    order: the rest of the graph as far as consent allows, or only the index stages when its
    transcript exists."""
    out = []
    for key in sorted(set(keys)):
        row = db.get_source(key)
        if row is None or row.stage not in HELD_STAGES:
            continue
        allowed = allowed_work(db, row)
        if "transcribe" in allowed.awaiting:
            continue
        if blob_store.exists(key, TRANSCRIPT):  # type: ignore[attr-defined]
            if allowed.held:
                continue
            allowed = allowed.narrowed(INDEX_ASSETS)
        out.append((row, allowed))
    return out


def consent_overview(db: StateDB, *, pending: bool = False) -> list[dict[str, Any]]:
    """Per source and scope: participants, who granted, who is missing (and the command that
    grants for each), and which of the missing refused (their latest event is a revocation);
    `pending`: only what still waits on someone who has not decided."""
    out = []
    now = utcnow()
    for row in db.list_sources():
        events = db.consent_events(row.key)
        voices = voice_holds(row.participants, db.source_speakers(row.key))
        for scope in SCOPES:
            missing = missing_parties(row.participants, events, scope, now)
            refused = refused_parties(events, scope)
            waiting = [p for p in missing if p not in refused]  # who has not decided yet
            held_by = voices if scope == "index" else []  # voices nobody declared (grace speakers name)
            if pending and not waiting and not held_by:
                continue
            out.append(
                {
                    "source_key": row.key,
                    "title": row.title,
                    "scope": scope,
                    "participants": row.participants,
                    "granted": [p for p in row.participants if p not in missing],
                    "missing": missing,
                    "refused": [p for p in missing if p in refused],
                    "commands": [grant_command(row.key, p, scope) for p in missing]
                    + [name_command(row.key, v["label"]) for v in held_by],
                    "voices": [v["reason"] for v in held_by],
                }
            )
    return out

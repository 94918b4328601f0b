"""The cited moment of a recording, as WAV bytes a person can hear (`grace play`, the web app):
parse the citation, check the recording may still be played (index consent), decode just that
window from the sealed original in memory (nothing is written to disk)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grace_pipelines.audio.clip import clip_wav
from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.errors import GraceError
from grace_pipelines.governance.consent import missing_parties
from grace_pipelines.search.citations import parse_citation
from grace_pipelines.stores.blobs import ORIGINAL


def cited_clip(
    citation: str,
    *,
    db: StateDB,
    blob_store: Any,
    resolve: Callable[[str], SourceRow],
    context_s: float = 1.0,
    source_key: str | None = None,
) -> tuple[bytes, SourceRow]:
    """The cited window (plus `context_s` either side) and the source it came from."""
    try:
        cited = parse_citation(citation)
    except ValueError as exc:
        raise GraceError(str(exc)) from None
    row = db.get_source(source_key) if source_key else resolve(cited.title)
    if row is None:
        raise GraceError(f"no recording matches {cited.title!r}")
    if row.kind == "document":
        raise GraceError(f"{row.title} is a document; only recordings can be played")
    if missing_parties(row.participants, db.consent_events(row.key), "index", utcnow()):
        raise GraceError(f"{row.title} has no consent to be searched or played")
    if not blob_store.exists(row.key, ORIGINAL):
        raise GraceError(f"{row.title}: the recording is not stored (purged?)")
    try:
        wav = clip_wav(
            blob_store.get_bytes(row.key, ORIGINAL), cited.start_s, cited.end_s, context_s=context_s, name=row.title
        )
    except ValueError as exc:
        raise GraceError(str(exc)) from None
    return wav, row

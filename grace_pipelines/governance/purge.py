"""Purge planning and the purge itself: what consent no longer covers (and so must go), and
removing it (transcript and chunk blobs, the source's LanceDB rows with every old table
version, the original when no consent is left), journaled so a killed purge is finished by the
next attempt with one receipt counting everything removed. No Dagster: `purge_receipt` (assets)
runs it, the consent sensor and the facade plan it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from grace_pipelines.db.schema import Stage, utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.consent import SCOPES, missing_parties
from grace_pipelines.stores.blobs import ORIGINAL

if TYPE_CHECKING:
    from grace_pipelines.resources import BlobStore, VectorStore


def purge_plan(db: StateDB, key: str, *, purge_original_on_revoke: bool, now: datetime) -> dict[str, Any] | None:
    """What a purge of `key` should remove now, or None when consent still covers it all."""
    row = db.get_source(key)
    if row is None or (row.stage == Stage.PURGED and not purge_original_on_revoke):
        return None
    events = db.consent_events(key)
    missing = {scope: missing_parties(row.participants, events, scope, now) for scope in SCOPES}
    if not any(missing.values()):
        return None
    nothing_left = all(set(m) == set(row.participants) for m in missing.values())
    who = sorted({p for m in missing.values() for p in m})
    reason = f"consent withdrawn or expired ({', '.join(s for s, m in missing.items() if m)}: {', '.join(who)})"
    turns = None if purge_original_on_revoke or nothing_left else _turns_of(db, key, who)
    if turns:  # only their words go; the others' stay searchable
        return {"remove_original": False, "reason": f"{reason}: their turns removed", "turns_of": turns}
    return {"remove_original": purge_original_on_revoke or nothing_left, "reason": reason}


def _turns_of(db: StateDB, key: str, parties: list[str]) -> dict[str, list[str]] | None:
    """party -> their speaker labels in `key`, when every party withdrawing is a named voice
    there (else None: the whole source is purged, since their part cannot be told apart)."""
    heard: dict[str, list[str]] = {}
    for s in db.source_speakers(key):
        if s["name"]:
            heard.setdefault(s["name"].casefold(), []).append(s["label"])
    if not parties or any(p.casefold() not in heard for p in parties):
        return None
    return {p: sorted(heard[p.casefold()]) for p in parties}


def purge_turns(
    key: str,
    turns_of: dict[str, list[str]],
    *,
    blob_store: BlobStore,
    vector_store: VectorStore,
    db: StateDB,
    reindex: Any,
) -> dict[str, Any]:
    """Remove one person's turns from a recording: their words from the sealed transcript, their
    voice embedding and speaker rows, every index row of the source with its old LanceDB
    versions; the party leaves the participants; `reindex()` then chunks and embeds what the
    others said (returns the new row count). Every step is idempotent, so a resumed purge
    finishes it; the original recording is kept (settings.purge_original_on_revoke deletes
    the whole source instead)."""
    from grace_pipelines.audio.diarize import without_speakers
    from grace_pipelines.audio.profiles import voices_of
    from grace_pipelines.stores.blobs import TRANSCRIPT, VOICES

    labels = {label for group in turns_of.values() for label in group}
    payload = blob_store.get_json(key, TRANSCRIPT)
    segments, words_removed = without_speakers(payload.get("segments") or [], labels)
    payload["segments"] = segments
    if payload.get("speakers"):
        spk = payload["speakers"]
        spk["turns"] = [t for t in spk.get("turns", []) if t["speaker"] not in labels]
        spk["seconds"] = {k: v for k, v in spk.get("seconds", {}).items() if k not in labels}
    blob_store.put_json(key, TRANSCRIPT, payload)
    voices = {k: v.tolist() for k, v in voices_of(blob_store, key).items() if k not in labels}
    if voices:
        blob_store.put_json(key, VOICES, voices)
    elif blob_store.exists(key, VOICES):
        blob_store.delete(key, VOICES)
    db.remove_source_speakers(key, sorted(labels))
    row = db.get_source(key)
    leaving = {p.casefold() for p in turns_of}
    if row is not None:
        db.update_source(key, participants=[p for p in row.participants if p.casefold() not in leaving])
    index = vector_store.purge_source(key)
    rows = reindex() if segments else 0
    return {
        "source_key": key,
        "turns_of": sorted(turns_of),
        "speaker_labels_removed": sorted(labels),
        "words_removed": words_removed,
        "index_rows_removed": index["rows"],
        "index_versions_removed": index["versions_removed"],
        "index_rows_written": rows,
        "blobs_removed": [],
        "blob_bytes_removed": 0,
        "temp_files_removed": 0,
        "original_removed": False,
        "at": utcnow().isoformat(),
    }


def purge_source(
    key: str,
    *,
    remove_original: bool,
    blob_store: BlobStore,
    vector_store: VectorStore,
    db: StateDB | None = None,
    journal_id: int | None = None,
) -> dict:
    """Remove what was derived from `key` (and the original if asked); return the receipt.

    With a journal entry, each removal is added to it as it happens, so a purge killed half-way
    and finished by a later attempt still reports everything that was removed."""
    removed_blobs: list[str] = []
    freed = 0
    for name in blob_store.list(key):
        if name == ORIGINAL and not remove_original:
            continue
        size = blob_store.delete(key, name)
        freed += size
        removed_blobs.append(name)
        if db is not None and journal_id is not None:
            db.purge_progress(journal_id, blob_bytes_removed=size, blobs_removed=[name])
    temp_removed = blob_store.remove_temp_files(key)  # a killed writer's or rotation's copies
    if db is not None:  # its speakers (the voice embeddings went with the VOICES blob)
        db.forget_source_speakers(key)
    index = vector_store.purge_source(key)
    if db is not None and journal_id is not None:
        db.purge_progress(
            journal_id,
            index_rows_removed=index["rows"],
            index_versions_removed=index["versions_removed"],
            temp_files_removed=len(temp_removed),
        )
        done = (db.purge_entry(journal_id) or {}).get("progress", {})
        removed_blobs = list(dict.fromkeys(done.get("blobs_removed", removed_blobs)))
        freed, rows = done.get("blob_bytes_removed", freed), done.get("index_rows_removed", index["rows"])
        versions, temps = (
            done.get("index_versions_removed", index["versions_removed"]),
            done.get("temp_files_removed", 0),
        )
    else:
        rows, versions, temps = index["rows"], index["versions_removed"], len(temp_removed)
    return {
        "source_key": key,
        "blobs_removed": removed_blobs,
        "blob_bytes_removed": freed,
        "index_rows_removed": rows,
        "index_versions_removed": versions,
        "temp_files_removed": temps,
        "original_removed": ORIGINAL in removed_blobs or not blob_store.exists(key, ORIGINAL),
        "at": utcnow().isoformat(),
    }


def requested_plan(
    db: StateDB,
    key: str,
    *,
    purge_original_on_revoke: bool,
    reason: str,
    remove_original: bool | None,
    only_if_needed: bool,
) -> dict[str, Any] | None:
    """The plan for a purge a person asked for: what consent no longer covers, or (unless
    `only_if_needed`) the derived data anyway; `remove_original` overrides the plan's choice."""
    plan = purge_plan(db, key, purge_original_on_revoke=purge_original_on_revoke, now=utcnow())
    if plan is None:
        if only_if_needed:
            return None
        plan = {"remove_original": False, "reason": reason}
    if remove_original is not None:
        plan["remove_original"] = remove_original
    if not only_if_needed:
        plan["reason"] = reason
        plan.pop("turns_of", None)  # a purge asked for by name takes the whole source
    return plan

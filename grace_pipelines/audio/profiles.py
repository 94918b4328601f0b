"""Voices remembered across recordings: name a speaker once, and every past and future
recording's speaker with that voice carries the name.

A profile is a name (db/voices.py); its voice is the mean of the voice embeddings of the
speakers a person named as that profile (the anchors), each sealed in its recording's VOICES
blob. A recording's other speakers are matched to the nearest profile when the cosine of their
voice embeddings reaches VOICE_MATCH. That threshold was chosen on measured pairs of speaker
voices from different recordings (bench/speaker_diarization.py): the same voice met itself at
0.884-0.959 (27 pairs), different voices stayed at or below 0.840 (95 pairs, the closest two
being two female espeak-ng voices); the threshold sits in that gap. Forgetting a person deletes
the profile and every voice embedding of theirs (the entries in the VOICES blobs of the
recordings they were heard in), so the voice cannot be matched again, and audits a receipt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from grace_pipelines.errors import GraceError
from grace_pipelines.stores.blobs import VOICES

if TYPE_CHECKING:
    from grace_pipelines.db.state import StateDB

VOICE_MATCH = 0.86
NAME_MAX = 80


def _clean_name(name: str) -> str:
    """A voice's name follows the rule for party names (it can become a participant)."""
    from grace_pipelines.governance.consent import check_name

    name = " ".join(name.split())
    try:
        name = check_name(name)
    except ValueError:
        name = ""
    if not name or len(name) > NAME_MAX:
        raise GraceError(f"a speaker's name must be 1-{NAME_MAX} printable characters")
    return name


def voices_of(blob_store: Any, key: str) -> dict[str, np.ndarray]:
    if not blob_store.exists(key, VOICES):
        return {}
    return {label: np.asarray(v, dtype=np.float32) for label, v in blob_store.get_json(key, VOICES).items()}


def record_speakers(db: StateDB, blob_store: Any, key: str, speakers: dict[str, Any] | None) -> dict[str, str]:
    """After a recording's speaker turns are stored: its speakers in the state database, each
    matched to a known voice where one is close enough. Returns label -> name of the matched."""
    if not speakers:
        db.forget_source_speakers(key)
        return {}
    turns = speakers.get("turns") or []
    rows = []
    for label, seconds in (speakers.get("seconds") or {}).items():
        mine = [t for t in turns if t["speaker"] == label]
        rows.append(
            {
                "label": label,
                "seconds": float(seconds),
                "first_s": min((t["start"] for t in mine), default=None),
                "last_s": max((t["end"] for t in mine), default=None),
            }
        )
    db.set_source_speakers(key, rows)
    match_source(db, blob_store, key)
    sync_participants(db, key)
    return {s["label"]: s["name"] for s in db.source_speakers(key) if s["name"]}


def sync_participants(db: StateDB, key: str) -> list[str]:
    """A voice named (or matched) as someone the recording did not declare makes them a
    participant: their own grant is then asked for like anyone's, and a recording already
    searchable waits for it (search hides it at once). Returns who was added."""
    from grace_pipelines.db.schema import Stage

    row = db.get_source(key)
    if row is None:
        return []
    declared = {p.casefold() for p in row.participants}
    heard = [s["name"] for s in db.source_speakers(key) if s["name"]]
    added = [n for n in dict.fromkeys(heard) if n.casefold() not in declared]
    if added:
        db.update_source(key, participants=[*row.participants, *added])
        if row.stage == Stage.SEARCHABLE:
            who = ", ".join(added)
            db.set_stage(key, Stage.AWAITING_CONSENT, reason=f"index: {who} heard in it, no grant yet")
    return added


def profile_voices(db: StateDB, blob_store: Any) -> dict[int, np.ndarray]:
    """Each profile's voice: the mean of its named anchors' embeddings (unit length)."""
    sums: dict[int, list[np.ndarray]] = {}
    cache: dict[str, dict[str, np.ndarray]] = {}
    for s in db.source_speakers():
        if s["how"] != "named" or s["profile_id"] is None:
            continue
        voices = cache.setdefault(s["source_key"], voices_of(blob_store, s["source_key"]))
        if s["label"] in voices:
            sums.setdefault(s["profile_id"], []).append(voices[s["label"]])
    out = {}
    for pid, vecs in sums.items():
        mean = np.mean(vecs, axis=0)
        out[pid] = mean / max(float(np.linalg.norm(mean)), 1e-9)
    return out


def match_source(db: StateDB, blob_store: Any, key: str, profiles: dict[int, np.ndarray] | None = None) -> int:
    """(Re)match the speakers of one recording that no person named; returns how many matched."""
    profiles = profile_voices(db, blob_store) if profiles is None else profiles
    voices = voices_of(blob_store, key)
    matched = 0
    for s in db.source_speakers(key):
        if s["how"] == "named":
            continue
        vec = voices.get(s["label"])
        best, best_sim = None, -1.0
        if vec is not None:
            for pid, voice in profiles.items():
                sim = float(voice @ vec)
                if sim > best_sim:
                    best, best_sim = pid, sim
        if best is not None and best_sim >= VOICE_MATCH:
            db.assign_speaker(key, s["label"], best, "matched", round(best_sim, 4))
            matched += 1
        elif s["profile_id"] is not None:
            db.assign_speaker(key, s["label"], None, None, None)
    return matched


def rematch_all(db: StateDB, blob_store: Any) -> int:
    profiles = profile_voices(db, blob_store)
    keys = sorted({s["source_key"] for s in db.source_speakers()})
    matched = 0
    for k in keys:
        matched += match_source(db, blob_store, k, profiles)
        sync_participants(db, k)
    return matched


def name_speaker(db: StateDB, blob_store: Any, key: str, label: str, name: str, actor: str) -> dict[str, Any]:
    """Name speaker `label` of recording `key` as `name` (a new profile, or one more anchor of an
    existing one), then label that voice everywhere it is heard."""
    name = _clean_name(name)
    label = label.strip().upper()
    known = {s["label"]: s for s in db.source_speakers(key)}
    if label not in known:
        have = ", ".join(sorted(known)) or "none"
        raise GraceError(f"no speaker {label!r} in this recording (its speakers: {have})")
    if label not in voices_of(blob_store, key):
        raise GraceError(f"speaker {label} has no voice embedding (too little speech, or forgotten)")
    profile = db.profile_named(name) or db.add_profile(name, actor)
    db.assign_speaker(key, label, profile["id"], "named", 1.0)
    matched = rematch_all(db, blob_store)
    heard = db.sources_spoken_by([profile["id"]])
    return {"name": profile["name"], "source_key": key, "label": label, "matched": matched, "recordings": len(heard)}


def merge_profiles(db: StateDB, blob_store: Any, source_name: str, into_name: str) -> dict[str, Any]:
    """Two profiles that are one person: `source_name`'s speakers become `into_name`'s."""
    a, b = db.profile_named(source_name), db.profile_named(into_name)
    for ref, row in ((source_name, a), (into_name, b)):
        if row is None:
            raise GraceError(f"no voice profile named {ref!r} (see `grace speakers list`)")
    if a["id"] == b["id"]:
        raise GraceError("a profile cannot be merged into itself")
    db.move_speakers(a["id"], b["id"])
    db.delete_profile(a["id"])
    rematch_all(db, blob_store)
    return {"name": b["name"], "merged": a["name"], "recordings": len(db.sources_spoken_by([b["id"]]))}


def forget_profile(db: StateDB, blob_store: Any, name: str) -> dict[str, Any]:
    """Delete a person's profile and every voice embedding of theirs; the turns stay, unnamed."""
    profile = db.profile_named(name)
    if profile is None:
        raise GraceError(f"no voice profile named {name!r} (see `grace speakers list`)")
    heard = db.sources_spoken_by([profile["id"]])
    removed = 0
    for key, labels in heard.items():
        voices = {k: v.tolist() for k, v in voices_of(blob_store, key).items() if k not in labels}
        removed += len(labels)
        if voices:
            blob_store.put_json(key, VOICES, voices)
        elif blob_store.exists(key, VOICES):
            blob_store.delete(key, VOICES)
    db.delete_profile(profile["id"])
    return {"name": profile["name"], "recordings": len(heard), "voice_embeddings_deleted": removed}


def names_for(db: StateDB, key: str) -> dict[str, str]:
    return {s["label"]: s["name"] for s in db.source_speakers(key) if s["name"]}

"""The ingest stages themselves, one function per stage and source: store the bytes, transcribe
or extract, chunk, embed. The four assets and the tiny-batch op both call these, so a source
batched with 199 others gets exactly what a single run gives it (materialization metadata,
consent checks, states)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import numpy as np

from grace_pipelines.db.schema import Stage, utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.engines.transcription import EngineUnavailable, TranscriptionError
from grace_pipelines.ingest.consent_gate import (
    consent_check_result,
    load_row,
    missing_for,
    require_consent,
)
from grace_pipelines.ingest.media import MediaError
from grace_pipelines.search import sentences
from grace_pipelines.stores.blobs import CHUNKS, ORIGINAL, TRANSCRIPT, VOICES, seal_bytes, seal_text
from grace_pipelines.text.chunking import chunk_sections, chunk_transcript
from grace_pipelines.text.extract import ExtractBudget, NoTextLayer, extract
from grace_pipelines.text.keywords import blind_tokens

if TYPE_CHECKING:  # the resources (or plain clients) the stages are handed
    from grace_pipelines.resources import BlobStore, Embedder, Speakers, Transcriber, VectorStore


class SourceHeld(Exception):
    """The source cannot go further and nothing is broken: a scanned document with no text
    layer. The stage records why; the run ends green with nothing downstream materialized."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(reason)
        self.stage, self.reason = stage, reason


def store_source(key: str, blob_store: BlobStore, db: StateDB) -> tuple[dict[str, Any], dg.AssetCheckResult]:
    """The stage itself, for one source (a single run's asset and a batch run both call it)."""
    row = load_row(db, key)
    inbox_path = Path(row.inbox_path) if row.inbox_path else None
    copied = False
    if not blob_store.exists(key, ORIGINAL):
        if inbox_path is None or not inbox_path.exists():
            db.set_stage(key, Stage.FAILED, reason="original file vanished from the inbox before it was stored")
            raise dg.Failure(
                description=f"{row.title}: the inbox file is gone and no stored copy exists", allow_retries=False
            )
        data = inbox_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != row.sha256:
            db.set_stage(key, Stage.FAILED, reason="file changed after it was dropped")
            raise dg.Failure(
                description=f"{row.title}: bytes changed after the drop (hash mismatch)", allow_retries=False
            )
        blob_store.put_bytes(key, ORIGINAL, data)
        if hashlib.sha256(blob_store.get_bytes(key, ORIGINAL)).hexdigest() != row.sha256:
            raise dg.Failure(description=f"{row.title}: stored copy failed verification")
        copied = True
    if inbox_path is not None:
        inbox_path.unlink(missing_ok=True)
        db.update_source(key, inbox_path=None)
    if db.get_source(key).stage in (Stage.REGISTERED, Stage.FAILED):  # type: ignore[union-attr]
        db.set_stage(key, Stage.STORED)
    check = consent_check_result(db, row, "transcribe")
    awaiting = [] if check.passed else missing_for(db, row, "transcribe")
    metadata = {
        "bytes": row.bytes,
        "duration_s": float(row.duration_s or 0.0),
        "kind": row.kind,
        "format": row.ext,
        "origin": row.origin,
        "size_class": row.size_class or "unknown",
        "title": row.title,
        "participants": len(row.participants),
        "copied_from_inbox": copied,
        # a hold shows as what it is: how many parties are awaited, and who (names, never content)
        "awaiting_parties": len(awaiting),
        "awaiting": ", ".join(awaiting) or "nobody",
    }
    return metadata, check


def make_transcript(
    key: str,
    transcriber: Transcriber,
    blob_store: BlobStore,
    db: StateDB,
    log: Any,
    budget: ExtractBudget | None = None,
    speakers: Speakers | None = None,
) -> tuple[dict[str, Any], dg.AssetCheckResult]:
    """The stage itself, for one source (a single run's asset and a batch run both call it).
    A recording also gets its speaker turns here (`speakers`), from the bytes already decrypted
    in memory: one step, so drop-to-searchable pays no second run step or blob read."""
    row = load_row(db, key)
    require_consent(db, row, "transcribe")
    data = blob_store.get_bytes(key, ORIGINAL)
    metadata: dict[str, object] = {"kind": row.kind}
    try:
        if row.kind == "document":
            # size/time/memory budgets (the `extraction` resource); an overrun is a MediaError
            # naming the file and the limit, so the source fails as below
            doc = extract(data, row.ext, row.title, budget=budget or ExtractBudget())
            payload = {
                "kind": "document",
                "format": doc.kind_label,
                "text": doc.text,
                "sections": [
                    {"char_start": s.char_start, "char_end": s.char_end, "page": s.page, "heading": s.heading}
                    for s in doc.sections
                ],
            }
            pages = {s.page for s in doc.sections if s.page is not None}
            metadata.update(
                {
                    "format": doc.kind_label,
                    "chars": len(doc.text),
                    "sections": len(doc.sections),
                    "pages_with_text": len(pages),
                    "lines": doc.text.count("\n") + 1,
                }
            )
        else:
            named = [p["name"] for p in db.profiles()] if speakers is not None else []
            result = transcriber.transcribe(data, row.title, vocabulary=named)
            turns_md = add_speakers(key, result, data, row.title, speakers, blob_store) if speakers else {}
            payload = {"kind": row.kind, **result.to_dict()}
            if turns_md:
                payload["speakers"] = turns_md.pop("_payload")
            words = sum(len(s.get("words") or []) for s in result.segments)
            chars = sum(len(s["text"]) for s in result.segments)
            if not chars:
                raise TranscriptionError(f"{row.title}: no speech recognised")
            metadata.update(
                {
                    "engine": result.engine,
                    "model": result.model,
                    "segments": len(result.segments),
                    "words": words,
                    "chars": chars,
                    "audio_s": round(result.duration_s, 3),
                    "transcribe_s": round(result.seconds, 3),
                    "real_time_factor": round(result.seconds / result.duration_s, 4) if result.duration_s else 0.0,
                    "language": result.language or "unknown",
                    "language_probability": round(result.language_probability or 0.0, 4),
                    **turns_md,
                }
            )
            for note in result.notes:
                log.warning(note)
    except EngineUnavailable:
        raise  # a system failure: the run fails and the source is not blamed
    except NoTextLayer as exc:
        db.set_stage(key, Stage.NO_TEXT_LAYER, reason=str(exc))
        raise SourceHeld(Stage.NO_TEXT_LAYER, str(exc)) from None
    except (TranscriptionError, MediaError) as exc:
        db.set_stage(key, Stage.FAILED, reason=str(exc))
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    size = blob_store.put_json(key, TRANSCRIPT, payload)
    metadata["stored_bytes"] = size
    if row.kind != "document" and speakers is not None:
        from grace_pipelines.audio.profiles import record_speakers

        metadata["named_speakers"] = len(record_speakers(db, blob_store, key, payload.get("speakers")))
        row = load_row(db, key)  # a voice heard in it may have made someone a participant
    db.set_stage(key, Stage.TRANSCRIBED)
    check = consent_check_result(db, row, "index")
    return metadata, check


def add_speakers(
    key: str, result: Any, audio: bytes, title: str, speakers: Speakers, blob_store: BlobStore
) -> dict[str, Any]:
    """Label the transcription's segments and words with speakers (in place), seal each
    speaker's voice embedding (the VOICES blob, for the profile store), and return the
    metadata: counts and seconds, never names. `_payload` is the transcript's `speakers` block."""
    from grace_pipelines.audio.diarize import label_segments

    started = time.perf_counter()
    found = speakers.diarize(audio, title, result)
    result.samples = None  # the decoded audio is not needed past this point
    if found is None:
        return {}
    result.segments = label_segments(result.segments, found.turns)
    if found.centroids:
        blob_store.put_json(
            key, VOICES, {label: [round(float(v), 6) for v in vec] for label, vec in found.centroids.items()}
        )
    elif blob_store.exists(key, VOICES):
        blob_store.delete(key, VOICES)
    notes = [n for n in found.notes if not n.startswith("diarized in")]
    return {
        "speakers": len(found.seconds),
        "speaker_turns": len(found.turns),
        "speaker_engine": found.engine,
        "diarize_s": round(time.perf_counter() - started, 3),
        **({"speaker_note": "; ".join(notes)} if notes else {}),
        "_payload": {
            "engine": found.engine,
            "turns": [t.to_dict() for t in found.turns],
            "seconds": {s: round(v, 3) for s, v in found.seconds.items()},
            "notes": notes,
        },
    }


def make_chunks(key: str, blob_store: BlobStore, db: StateDB, chunk_chars: int, chunk_overlap: int) -> dict[str, Any]:
    """The stage itself, for one source (a single run's asset and a batch run both call it)."""
    row = load_row(db, key)
    require_consent(db, row, "index")
    payload = blob_store.get_json(key, TRANSCRIPT)
    if payload.get("kind") == "document":
        pieces = chunk_sections(payload["text"], payload.get("sections") or [], chunk_chars, chunk_overlap)
    else:
        pieces = chunk_transcript(payload["segments"], chunk_chars, chunk_overlap)
    blob_store.put_json(key, CHUNKS, [c.to_dict() for c in pieces])
    db.set_stage(key, Stage.CHUNKED)
    lengths = [len(c.text) for c in pieces]
    timed = [c for c in pieces if c.start_s is not None]
    return {
        "chunks": len(pieces),
        "mean_chars": round(sum(lengths) / len(lengths), 1) if lengths else 0.0,
        "max_chars": max(lengths, default=0),
        "timed_chunks": len(timed),
        "chunk_chars": chunk_chars,
        "chunk_overlap": chunk_overlap,
    }


def make_embeddings(
    key: str, embedder: Embedder, vector_store: VectorStore, blob_store: BlobStore, db: StateDB
) -> dict[str, Any]:
    """The stage itself, for one source (a single run's asset calls it)."""
    rows, embed_s = embedding_rows(key, embedder, blob_store, db)
    vector_store.upsert_source(key, rows, embedder.dim)
    return mark_searchable(key, rows, embed_s, embedder, vector_store, db)


def embedding_rows(
    key: str, embedder: Embedder, blob_store: BlobStore, db: StateDB
) -> tuple[list[dict[str, Any]], float]:
    """The LanceDB rows of one source (vectors, sealed text, blind keywords) and the embedding time.
    A batch run collects these for many sources and writes them in one merge (upsert_sources)."""
    row = load_row(db, key)
    require_consent(db, row, "index")
    pieces = blob_store.get_json(key, CHUNKS)
    text_key = blob_store.text_key(key, create=True)
    index_key = blob_store.index_key()
    started = time.perf_counter()
    spans = [sentences.pieces_of(p["text"], p.get("moments")) for p in pieces]
    texts = [p["text"] for p in pieces] + [p["text"][a:b] for p, s in zip(pieces, spans) for a, b, _, _ in s]
    embedded = embedder.embed(texts) if texts else np.zeros((0, embedder.dim), dtype=np.float32)
    vectors, sentence_vectors, at = embedded[: len(pieces)], [], len(pieces)
    for s in spans:  # one embedding batch for chunks and sentences (the embedder sorts by length)
        sentence_vectors.append(embedded[at : at + len(s)])
        at += len(s)
    embed_s = time.perf_counter() - started
    rows = [
        {
            "id": f"{key}:{p['index']}",
            "source_key": key,
            "chunk_index": p["index"],
            "text_enc": seal_text(text_key, p["text"], f"{key}:{p['index']}"),
            "keywords": blind_tokens(index_key, p["text"]),
            "title": row.title,
            "kind": row.kind,
            "start_s": p.get("start_s"),
            "end_s": p.get("end_s"),
            "line_start": p.get("line_start"),
            "line_end": p.get("line_end"),
            "moments": json.dumps(p.get("moments") or []),
            "sentences_enc": seal_bytes(text_key, sentences.pack(sv), sentences.aad_for(key, p["index"])),
            "page": p.get("page"),
            "heading_enc": seal_text(text_key, p["heading"], f"{key}:{p['index']}:heading")
            if p.get("heading")
            else None,
            "model": embedder.model_name,
            "model_version": embedder.model_version,
            "vector": vector.tolist(),
        }
        for p, vector, sv in zip(pieces, vectors, sentence_vectors)
    ]
    return rows, embed_s


def mark_searchable(
    key: str, rows: list[dict[str, Any]], embed_s: float, embedder: Embedder, vector_store: VectorStore, db: StateDB
) -> dict[str, Any]:
    """Once a source's rows are written: its state (and first-searchable time) and metadata."""
    row = load_row(db, key)
    db.update_source(
        key,
        stage=Stage.SEARCHABLE,
        reason=None,
        embedding_model=embedder.code_version(),
        **({"searchable_at": utcnow()} if row.searchable_at is None else {}),
    )
    return {
        "vectors": len(rows),
        "dimensions": embedder.dim,
        "model": embedder.model_name,
        "model_version": embedder.model_version,
        "table": vector_store.table_name,
        "embed_s": round(embed_s, 3),
        "chunks_per_s": round(len(rows) / embed_s, 1) if embed_s > 0 else 0.0,
    }

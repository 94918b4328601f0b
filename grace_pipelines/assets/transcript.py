"""`transcript`: what was said (with start/end seconds and word timings) or written.

Audio and video go through the Transcriber resource from bytes in memory; documents are
decoded as text. The result is stored as a blob; metadata carries counts, seconds, language
and real-time factor, never the words. Carries the blocking check `consent_index`.
"""


from typing import Any

import dagster as dg

from grace_pipelines.assets.consent_gate import (
    consent_check_result,
    load_row,
    require_consent,
)
from grace_pipelines.assets.source import ORIGINAL, source
from grace_pipelines.ingest.media import MediaError
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, Extraction, StateResource, Transcriber
from grace_pipelines.resources.transcriber import EngineUnavailable, TranscriptionError
from grace_pipelines.db.state import StateDB
from grace_pipelines.text.extract import ExtractBudget, NoTextLayer, extract

TRANSCRIPT = "transcript.json"


@dg.asset(
    partitions_def=sources_partitions,
    group_name="ingest",
    kinds={"python", "whisper"},
    deps=[source],
    pool="transcription",
    check_specs=[
        dg.AssetCheckSpec(
            "consent_index", asset="transcript", blocking=True,
            description="Every participant granted consent to index (chunk, embed, search) this source.",
        )
    ],
)
def transcript(
    context: dg.AssetExecutionContext, transcriber: Transcriber, blob_store: BlobStore, state: StateResource,
    extraction: Extraction,
) -> dg.MaterializeResult:
    """Timed segments of speech for audio/video, or the text of a document."""
    metadata, check = make_transcript(context.partition_key, transcriber, blob_store, state.db(), context.log,
                                      budget=extraction.budget())
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


def make_transcript(
    key: str, transcriber: Transcriber, blob_store: BlobStore, db: StateDB, log: Any, budget: ExtractBudget | None = None,
) -> tuple[dict[str, Any], dg.AssetCheckResult]:
    """The stage itself, for one source (a single run's asset and a batch run both call it)."""
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
            metadata.update({"format": doc.kind_label, "chars": len(doc.text), "sections": len(doc.sections),
                             "pages_with_text": len(pages), "lines": doc.text.count("\n") + 1})
        else:
            result = transcriber.transcribe(data, row.title)
            payload = {"kind": row.kind, **result.to_dict()}
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
                }
            )
            for note in result.notes:
                log.warning(note)
    except EngineUnavailable:
        raise  # a system failure: the run fails and the source is not blamed
    except NoTextLayer as exc:
        db.set_stage(key, "no_text_layer", reason=str(exc))
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except (TranscriptionError, MediaError) as exc:
        db.set_stage(key, "failed", reason=str(exc))
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    size = blob_store.put_json(key, TRANSCRIPT, payload)
    metadata["stored_bytes"] = size
    db.set_stage(key, "transcribed")
    check = consent_check_result(db, row, "index")
    return metadata, check

"""`chunks`: ~500-character, sentence-aware pieces with ~100 characters of overlap.

Each chunk keeps where it came from: start/end seconds of the speech it covers, or the line
range of a document. Chunking policy lives in grace_pipelines.text.chunking (pure code).
"""


from typing import Any

import dagster as dg

from grace_pipelines.assets.consent_gate import load_row, require_consent
from grace_pipelines.assets.transcript import TRANSCRIPT, transcript
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, StateResource
from grace_pipelines.db.state import StateDB
from grace_pipelines.text.chunking import chunk_sections, chunk_transcript

CHUNKS = "chunks.json"



class ChunkingConfig(dg.Config):
    chunk_chars: int = 500
    chunk_overlap: int = 100


@dg.asset(
    partitions_def=sources_partitions,
    group_name="index",
    kinds={"python"},
    deps=[transcript],
)
def chunks(
    context: dg.AssetExecutionContext, config: ChunkingConfig, blob_store: BlobStore, state: StateResource
) -> dg.MaterializeResult:
    """Overlapping sentence-aware chunks of the transcript, each with its time window or lines."""
    return dg.MaterializeResult(
        metadata=make_chunks(context.partition_key, blob_store, state.db(), config.chunk_chars, config.chunk_overlap)
    )


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
    db.set_stage(key, "chunked")
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

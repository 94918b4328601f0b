"""`chunks`: ~500-character, sentence-aware pieces with ~100 characters of overlap.

Each chunk keeps where it came from: start/end seconds of the speech it covers, or the line
range of a document. Chunking policy lives in grace_pipelines.text.chunking (pure code).
"""

import dagster as dg

from grace_pipelines.assets.transcript import transcript
from grace_pipelines.ingest.consent_gate import voices_holding
from grace_pipelines.ingest.stages import make_chunks
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, Chunking, StateResource


class ChunkingConfig(dg.Config):
    """Overrides for one run (the launchpad); unset: the `chunking` resource (GRACE_HOME's settings)."""

    chunk_chars: int | None = None
    chunk_overlap: int | None = None


@dg.asset(
    partitions_def=sources_partitions,
    group_name="index",
    kinds={"python"},
    deps=[transcript],
    output_required=False,
)
def chunks(
    context: dg.AssetExecutionContext,
    config: ChunkingConfig,
    chunking: Chunking,
    blob_store: BlobStore,
    state: StateResource,
):
    """Overlapping sentence-aware chunks of the transcript, each with its time window or lines.
    Skipped (nothing downstream runs) while a voice nobody declared holds the recording."""
    key, db = context.partition_key, state.db()
    held = voices_holding(db, key)
    if held:
        context.log.info(f"{key} is held: {'; '.join(held)}")
        context.log_event(
            dg.AssetObservation(asset_key="chunks", partition=key, metadata={"held_by_voices": len(held)})
        )
        return
    size = config.chunk_chars if config.chunk_chars is not None else chunking.chunk_chars
    overlap = config.chunk_overlap if config.chunk_overlap is not None else chunking.chunk_overlap
    yield dg.MaterializeResult(metadata=make_chunks(key, blob_store, db, size, overlap))

"""`chunks`: ~500-character, sentence-aware pieces with ~100 characters of overlap.

Each chunk keeps where it came from: start/end seconds of the speech it covers, or the line
range of a document. Chunking policy lives in grace_pipelines.text.chunking (pure code).
"""

import dagster as dg

from grace_pipelines.assets.transcript import transcript
from grace_pipelines.ingest.stages import make_chunks
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, StateResource


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

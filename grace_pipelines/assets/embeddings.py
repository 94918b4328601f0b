"""`embeddings`: chunk vectors upserted into the current embedding model's LanceDB table.

Row ids are `{source_key}:{chunk_index}`; the upsert also deletes the source's rows beyond
the new chunk count, so re-materializing replaces and never duplicates. Each row records the
embedding model's name and version. Chunk text is stored encrypted under the source's text
key and indexed only as keyed hashes of its stems: no plaintext rests in LanceDB.

Its code version is the embedder's identity (set in definitions.py), so a model change marks
this asset, and nothing upstream, as changed; `reembed_sensor` then re-runs it alone.
"""

import dagster as dg

from grace_pipelines.assets.chunks import chunks
from grace_pipelines.ingest.stages import make_embeddings
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, Embedder, StateResource, VectorStore

EMBEDDINGS_CODE_VERSION = "1"  # bump when this asset's own logic changes


@dg.asset(
    partitions_def=sources_partitions,
    group_name="index",
    kinds={"lancedb", "onnx"},
    deps=[chunks],
    pool="index_writer",  # one LanceDB writer at a time: a purge's cleanup must not race an upsert
)
def embeddings(
    context: dg.AssetExecutionContext,
    embedder: Embedder,
    vector_store: VectorStore,
    blob_store: BlobStore,
    state: StateResource,
) -> dg.MaterializeResult:
    """Vectors of every chunk of one source in LanceDB, searchable by vector and keyword."""
    return dg.MaterializeResult(
        metadata=make_embeddings(context.partition_key, embedder, vector_store, blob_store, state.db())
    )

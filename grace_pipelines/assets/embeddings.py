"""`embeddings`: chunk vectors upserted into the current embedding model's LanceDB table.

Row ids are `{source_key}:{chunk_index}`; the upsert also deletes the source's rows beyond
the new chunk count, so re-materializing replaces and never duplicates. Each row records the
embedding model's name and version. Chunk text is stored encrypted under the source's text
key and indexed only as keyed hashes of its stems: no plaintext rests in LanceDB.

Its code version is the embedder's identity (set in definitions.py), so a model change marks
this asset, and nothing upstream, as changed; `reembed_sensor` then re-runs it alone.
"""

EMBEDDINGS_CODE_VERSION = "1"  # bump when this asset's own logic changes


import json
import time
from typing import Any

import dagster as dg

from grace_pipelines.assets.chunks import CHUNKS, chunks
from grace_pipelines.assets.consent_gate import load_row, require_consent
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, Embedder, StateResource, VectorStore
from grace_pipelines.resources.blob_store import seal_text
from grace_pipelines.db.schema import utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.text.keywords import blind_tokens


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
    return dg.MaterializeResult(metadata=make_embeddings(context.partition_key, embedder, vector_store, blob_store, state.db()))


def make_embeddings(key: str, embedder: Embedder, vector_store: VectorStore, blob_store: BlobStore, db: StateDB) -> dict[str, Any]:
    """The stage itself, for one source (a single run's asset calls it)."""
    rows, embed_s = embedding_rows(key, embedder, blob_store, db)
    vector_store.upsert_source(key, rows, embedder.dim)
    return mark_searchable(key, rows, embed_s, embedder, vector_store, db)


def embedding_rows(key: str, embedder: Embedder, blob_store: BlobStore, db: StateDB) -> tuple[list[dict[str, Any]], float]:
    """The LanceDB rows of one source (vectors, sealed text, blind keywords) and the embedding time.
    A batch run collects these for many sources and writes them in one merge (upsert_sources)."""
    row = load_row(db, key)
    require_consent(db, row, "index")
    pieces = blob_store.get_json(key, CHUNKS)
    text_key = blob_store.text_key(key, create=True)
    index_key = blob_store.index_key()
    started = time.perf_counter()
    vectors = embedder.embed([p["text"] for p in pieces])
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
            "page": p.get("page"),
            "heading_enc": seal_text(text_key, p["heading"], f"{key}:{p['index']}:heading") if p.get("heading") else None,
            "model": embedder.model_name,
            "model_version": embedder.model_version,
            "vector": vector.tolist(),
        }
        for p, vector in zip(pieces, vectors)
    ]
    return rows, embed_s


def mark_searchable(
    key: str, rows: list[dict[str, Any]], embed_s: float, embedder: Embedder, vector_store: VectorStore, db: StateDB
) -> dict[str, Any]:
    """Once a source's rows are written: its state (and first-searchable time) and metadata."""
    row = load_row(db, key)
    db.update_source(key, stage="searchable", reason=None, embedding_model=embedder.code_version(),
                     **({"searchable_at": utcnow()} if row.searchable_at is None else {}))
    return {
        "vectors": len(rows),
        "dimensions": embedder.dim,
        "model": embedder.model_name,
        "model_version": embedder.model_version,
        "table": vector_store.table_name,
        "embed_s": round(embed_s, 3),
        "chunks_per_s": round(len(rows) / embed_s, 1) if embed_s > 0 else 0.0,
    }

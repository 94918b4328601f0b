"""`purge_receipt`: everything derived from a source removed, and a receipt to prove it.

Launched by `consent_sensor` when consent is revoked or expires (or by `grace purge`).
Removes the transcript and chunk blobs, the source's rows in LanceDB (vectors, text and
full-text entries) followed by compaction and removal of every old table version so the
bytes are gone from disk, and the raw media too when no consent is left at all or the
settings say so. The receipt (counts and bytes, never content) is the materialization's
metadata; the source's state becomes `purged`.
"""

import json

import dagster as dg

from grace_pipelines.assets.consent_gate import load_row
from grace_pipelines.assets.source import ORIGINAL
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, StateResource, VectorStore
from grace_pipelines.state import utcnow


class PurgeConfig(dg.Config):
    remove_original: bool = False
    reason: str = "consent revoked"


def purge_source(key: str, *, remove_original: bool, blob_store: BlobStore, vector_store: VectorStore) -> dict:
    """Remove what was derived from `key` (and the original if asked); return the receipt."""
    removed_blobs: list[str] = []
    freed = 0
    for name in blob_store.list(key):
        if name == ORIGINAL and not remove_original:
            continue
        freed += blob_store.delete(key, name)
        removed_blobs.append(name)
    index = vector_store.purge_source(key)
    return {
        "source_key": key,
        "blobs_removed": removed_blobs,
        "blob_bytes_removed": freed,
        "index_rows_removed": index["rows"],
        "index_versions_removed": index["versions_removed"],
        "original_removed": ORIGINAL in removed_blobs,
        "at": utcnow().isoformat(),
    }


@dg.asset(
    partitions_def=sources_partitions,
    group_name="governance",
    kinds={"python", "lancedb"},
    pool="index_writer",
)
def purge_receipt(
    context: dg.AssetExecutionContext,
    config: PurgeConfig,
    blob_store: BlobStore,
    vector_store: VectorStore,
    state: StateResource,
) -> dg.MaterializeResult:
    """Proof that a source's transcript, chunks, vectors and index entries were purged."""
    db = state.db()
    key = context.partition_key
    row = load_row(db, key)
    receipt = purge_source(key, remove_original=config.remove_original, blob_store=blob_store, vector_store=vector_store)
    receipt["reason"] = config.reason
    db.set_stage(key, "purged", reason=f"{config.reason}; receipt: " + json.dumps(
        {k: receipt[k] for k in ("blobs_removed", "index_rows_removed", "original_removed")}
    ))
    db.audit(actor=f"purge_job:{context.run_id[:8]}", action="purge", subject=key, details=receipt)
    context.log.info(f"purged {row.title}: {receipt['index_rows_removed']} index rows, {len(receipt['blobs_removed'])} blobs")
    return dg.MaterializeResult(
        metadata={
            "source_key": key,
            "title": row.title,
            "reason": config.reason,
            "blobs_removed": ", ".join(receipt["blobs_removed"]) or "none",
            "blob_bytes_removed": receipt["blob_bytes_removed"],
            "index_rows_removed": receipt["index_rows_removed"],
            "index_versions_removed": receipt["index_versions_removed"],
            "original_removed": receipt["original_removed"],
            "receipt": dg.MetadataValue.json(receipt),
        }
    )

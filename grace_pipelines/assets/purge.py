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
from grace_pipelines.db.schema import utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.audit.log import record


class PurgeConfig(dg.Config):
    remove_original: bool = False
    reason: str = "consent revoked"


def purge_source(
    key: str, *, remove_original: bool, blob_store: BlobStore, vector_store: VectorStore,
    db: StateDB | None = None, journal_id: int | None = None,
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
    index = vector_store.purge_source(key)
    if db is not None and journal_id is not None:
        db.purge_progress(journal_id, index_rows_removed=index["rows"], index_versions_removed=index["versions_removed"],
                          temp_files_removed=len(temp_removed))
        done = (db.purge_entry(journal_id) or {}).get("progress", {})
        removed_blobs = list(dict.fromkeys(done.get("blobs_removed", removed_blobs)))
        freed, rows = done.get("blob_bytes_removed", freed), done.get("index_rows_removed", index["rows"])
        versions, temps = done.get("index_versions_removed", index["versions_removed"]), done.get("temp_files_removed", 0)
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
    """Proof that a source's transcript, chunks, vectors and index entries were purged.

    Journaled: the purge is written down (stage `purging`) before anything is removed and
    marked done after the receipt, so a kill at any point is finished by the next attempt
    (recovery launches it), with LanceDB compaction and version cleanup whatever the rows say."""
    db = state.db()
    key = context.partition_key
    row = load_row(db, key)
    entry = db.begin_purge(key, {"remove_original": config.remove_original, "reason": config.reason}, context.run_id)
    plan = entry["plan"] if entry["resumed"] else {"remove_original": config.remove_original, "reason": config.reason}
    remove_original = bool(plan["remove_original"]) or config.remove_original
    reason = plan["reason"] if entry["resumed"] and plan["reason"] != config.reason else config.reason
    receipt = purge_source(key, remove_original=remove_original, blob_store=blob_store, vector_store=vector_store,
                           db=db, journal_id=entry["id"])
    receipt["reason"] = reason
    receipt["resumed"] = entry["resumed"]
    db.set_stage(key, "purged", reason=f"{reason}; receipt: " + json.dumps(
        {k: receipt[k] for k in ("blobs_removed", "index_rows_removed", "original_removed")}
    ))
    record(db, actor=f"purge_job:{context.run_id[:8]}", action="purge", subject=key, details=receipt)
    db.finish_purge(entry["id"])
    context.log.info(f"purged {row.title}: {receipt['index_rows_removed']} index rows, {len(receipt['blobs_removed'])} blobs")
    return dg.MaterializeResult(
        metadata={
            "source_key": key,
            "title": row.title,
            "reason": reason,
            "blobs_removed": ", ".join(receipt["blobs_removed"]) or "none",
            "blob_bytes_removed": receipt["blob_bytes_removed"],
            "index_rows_removed": receipt["index_rows_removed"],
            "index_versions_removed": receipt["index_versions_removed"],
            "temp_files_removed": receipt["temp_files_removed"],
            "resumed": receipt["resumed"],
            "original_removed": receipt["original_removed"],
            "receipt": dg.MetadataValue.json(receipt),
        }
    )

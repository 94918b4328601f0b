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

from grace_pipelines.db.schema import Stage
from grace_pipelines.governance.audit.log import record
from grace_pipelines.governance.purge import purge_source
from grace_pipelines.ingest.consent_gate import load_row
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, StateResource, VectorStore


class PurgeConfig(dg.Config):
    remove_original: bool = False
    reason: str = "consent revoked"


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
    entry = db.begin_purge(
        key, {"remove_original": config.remove_original, "reason": config.reason}, context.run.run_id
    )
    plan = entry["plan"] if entry["resumed"] else {"remove_original": config.remove_original, "reason": config.reason}
    remove_original = bool(plan["remove_original"]) or config.remove_original
    reason = plan["reason"] if entry["resumed"] and plan["reason"] != config.reason else config.reason
    receipt = purge_source(
        key,
        remove_original=remove_original,
        blob_store=blob_store,
        vector_store=vector_store,
        db=db,
        journal_id=entry["id"],
    )
    receipt["reason"] = reason
    receipt["resumed"] = entry["resumed"]
    db.set_stage(
        key,
        Stage.PURGED,
        reason=f"{reason}; receipt: "
        + json.dumps({k: receipt[k] for k in ("blobs_removed", "index_rows_removed", "original_removed")}),
    )
    record(db, actor=f"purge_job:{context.run.run_id[:8]}", action="purge", subject=key, details=receipt)
    db.finish_purge(entry["id"])
    context.log.info(
        f"purged {row.title}: {receipt['index_rows_removed']} index rows, {len(receipt['blobs_removed'])} blobs"
    )
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

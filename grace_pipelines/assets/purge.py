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
from grace_pipelines.governance.purge import purge_source, purge_turns
from grace_pipelines.ingest.consent_gate import load_row
from grace_pipelines.ingest.stages import make_chunks, make_embeddings
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, Chunking, Embedder, StateResource, VectorStore


class PurgeConfig(dg.Config):
    remove_original: bool = False
    reason: str = "consent revoked"
    # party -> their speaker labels: only their turns go (governance/purge.purge_plan decides)
    turns_of: dict[str, list[str]] | None = None


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
    embedder: Embedder,
    chunking: Chunking,
) -> dg.MaterializeResult:
    """Proof that a source's transcript, chunks, vectors and index entries were purged.

    Journaled: the purge is written down (stage `purging`) before anything is removed and
    marked done after the receipt, so a kill at any point is finished by the next attempt
    (recovery launches it), with LanceDB compaction and version cleanup whatever the rows say."""
    db = state.db()
    key = context.partition_key
    row = load_row(db, key)
    asked = {"remove_original": config.remove_original, "reason": config.reason}
    if config.turns_of:
        asked["turns_of"] = config.turns_of
    entry = db.begin_purge(key, asked, context.run.run_id)
    plan = entry["plan"] if entry["resumed"] else asked
    if plan.get("turns_of"):
        return _purge_turns(context, db, key, row, plan, entry, blob_store, vector_store, embedder, chunking)
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


def _purge_turns(context, db, key, row, plan, entry, blob_store, vector_store, embedder, chunking):
    """One person's turns out of a recording, the rest re-indexed (governance/purge.purge_turns)."""

    def reindex() -> int:
        make_chunks(key, blob_store, db, chunking.chunk_chars, chunking.chunk_overlap)
        return int(make_embeddings(key, embedder, vector_store, blob_store, db)["vectors"])

    receipt = purge_turns(
        key, plan["turns_of"], blob_store=blob_store, vector_store=vector_store, db=db, reindex=reindex
    )
    receipt["reason"], receipt["resumed"] = plan["reason"], entry["resumed"]
    if not receipt["index_rows_written"]:
        db.set_stage(key, Stage.PURGED, reason=f"{plan['reason']}; nothing said by anyone else")
    record(db, actor=f"purge_job:{context.run.run_id[:8]}", action="purge.turns", subject=key, details=receipt)
    db.finish_purge(entry["id"])
    context.log.info(
        f"removed {receipt['words_removed']} words of {len(receipt['turns_of'])} person(s) from {row.title}; "
        f"{receipt['index_rows_written']} rows re-indexed"
    )
    return dg.MaterializeResult(
        metadata={
            "source_key": key,
            "title": row.title,
            "reason": plan["reason"],
            "words_removed": receipt["words_removed"],
            "index_rows_removed": receipt["index_rows_removed"],
            "index_versions_removed": receipt["index_versions_removed"],
            "index_rows_written": receipt["index_rows_written"],
            "resumed": receipt["resumed"],
            "original_removed": False,
            "receipt": dg.MetadataValue.json(receipt),
        }
    )

"""`source`: the dropped file's bytes, verified and moved into the store.

The inbox copy is removed only after the stored copy is read back and its hash matches the
key. Carries the blocking check `consent_transcribe`: without every participant's grant, the
bytes are kept but nothing is transcribed.
"""


import hashlib
from pathlib import Path
from typing import Any

import dagster as dg

from grace_pipelines.assets.consent_gate import consent_check_result, load_row
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, StateResource
from grace_pipelines.db.state import StateDB

ORIGINAL = "original"


@dg.asset(
    partitions_def=sources_partitions,
    group_name="ingest",
    kinds={"python", "file"},
    check_specs=[
        dg.AssetCheckSpec(
            "consent_transcribe", asset="source", blocking=True,
            description="Every participant granted consent to transcribe this source.",
        )
    ],
)
def source(context: dg.AssetExecutionContext, blob_store: BlobStore, state: StateResource) -> dg.MaterializeResult:
    """The raw recording or document of one drop, copied into the store and verified by hash."""
    metadata, check = store_source(context.partition_key, blob_store, state.db())
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


def store_source(key: str, blob_store: BlobStore, db: StateDB) -> tuple[dict[str, Any], dg.AssetCheckResult]:
    """The stage itself, for one source (a single run's asset and a batch run both call it)."""
    row = load_row(db, key)
    inbox_path = Path(row.inbox_path) if row.inbox_path else None
    copied = False
    if not blob_store.exists(key, ORIGINAL):
        if inbox_path is None or not inbox_path.exists():
            db.set_stage(key, "failed", reason="original file vanished from the inbox before it was stored")
            raise dg.Failure(description=f"{row.title}: the inbox file is gone and no stored copy exists", allow_retries=False)
        data = inbox_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != row.sha256:
            db.set_stage(key, "failed", reason="file changed after it was dropped")
            raise dg.Failure(description=f"{row.title}: bytes changed after the drop (hash mismatch)", allow_retries=False)
        blob_store.put_bytes(key, ORIGINAL, data)
        if hashlib.sha256(blob_store.get_bytes(key, ORIGINAL)).hexdigest() != row.sha256:
            raise dg.Failure(description=f"{row.title}: stored copy failed verification")
        copied = True
    if inbox_path is not None:
        inbox_path.unlink(missing_ok=True)
        db.update_source(key, inbox_path=None)
    if db.get_source(key).stage in ("registered", "failed"):  # type: ignore[union-attr]
        db.set_stage(key, "stored")
    check = consent_check_result(db, row, "transcribe")
    metadata = {
        "bytes": row.bytes,
        "duration_s": float(row.duration_s or 0.0),
        "kind": row.kind,
        "format": row.ext,
        "origin": row.origin,
        "size_class": row.size_class or "unknown",
        "title": row.title,
        "participants": len(row.participants),
        "copied_from_inbox": copied,
    }
    return metadata, check

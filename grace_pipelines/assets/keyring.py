"""`keyring`: the key-encryption keys after their latest rotation.

Materializing it rotates: a new key becomes active, every blob's (and every vault value's)
data key is re-wrapped
under it (the data itself is not re-encrypted), every blob is verified to decrypt, then the
old key is retired (its material destroyed). An interrupted rotation resumes on the next run
and no blob is ever unreadable in between (grace_pipelines.crypto.rotation). `grace keys
rotate` materializes it; the weekly `crypto_key_persistence` playbook rotates through the same
code when the active key is older than its limit (playbooks/crypto_key_persistence.yaml).
"""

import dagster as dg

from grace_pipelines.crypto.rotation import rotate, status
from grace_pipelines.governance.audit.log import record
from grace_pipelines.resources import BlobStore, StateResource
from grace_pipelines.stores.sealed import sealed_things


@dg.asset(group_name="governance", kinds={"python"})
def keyring(context: dg.AssetExecutionContext, blob_store: BlobStore, state: StateResource) -> dg.MaterializeResult:
    """The keyring after rotating to a fresh key and re-wrapping every blob's data key."""
    ring = blob_store.keyring()
    blobs = sealed_things(blob_store.root, state.db())
    report = rotate(ring, blobs).to_dict()
    after = status(ring, blobs).to_dict()
    audit_rotation(state, report)
    context.log.info(f"rotated to {report['new_key_id']}: {report['rewrapped']} blobs re-wrapped")
    return dg.MaterializeResult(
        metadata={
            "active_key": report["new_key_id"],
            "retired_keys": ", ".join(report["retired"]) or "none",
            "blobs": report["blobs"],
            "rewrapped": report["rewrapped"],
            "verified": report["verified"],
            "rewrap_s": round(report["rewrap_seconds"], 3),
            "verify_s": round(report["verify_seconds"], 3),
            "seconds": round(report["seconds"], 3),
            "resumed": report["resumed"],
            "report": dg.MetadataValue.json(report),
            "keys": dg.MetadataValue.json(after),
        }
    )


def audit_rotation(state: StateResource, report: dict) -> None:
    """Record the rotation in the audit log (ids and counts only, never key material)."""
    record(
        state.db(),
        actor="key_rotation",
        action="key.rotate",
        subject=report["new_key_id"],
        details={
            k: report[k] for k in ("old_key_ids", "retired", "blobs", "rewrapped", "verified", "seconds", "resumed")
        },
    )

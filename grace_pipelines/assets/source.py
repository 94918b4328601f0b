"""`source`: the dropped file's bytes, verified and moved into the store.

The inbox copy is removed only after the stored copy is read back and its hash matches the
key. Carries the blocking check `consent_transcribe`: without every participant's grant, the
bytes are kept but nothing is transcribed.
"""

import dagster as dg

from grace_pipelines.ingest.stages import store_source
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, StateResource


@dg.asset(
    partitions_def=sources_partitions,
    group_name="ingest",
    kinds={"python", "file"},
    check_specs=[
        dg.AssetCheckSpec(
            "consent_transcribe",
            asset="source",
            blocking=True,
            description="Every participant granted consent to transcribe this source.",
        )
    ],
)
def source(context: dg.AssetExecutionContext, blob_store: BlobStore, state: StateResource) -> dg.MaterializeResult:
    """The raw recording or document of one drop, copied into the store and verified by hash."""
    metadata, check = store_source(context.partition_key, blob_store, state.db())
    return dg.MaterializeResult(metadata=metadata, check_results=[check])

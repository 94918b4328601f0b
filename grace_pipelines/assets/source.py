"""`source`: the dropped file's bytes, verified and moved into the store.

The inbox copy is removed only after the stored copy is read back and its hash matches the
key. Carries the blocking check `consent_transcribe`: without every participant's grant, the
bytes are kept but nothing is transcribed. A multi-asset that can be subset, so a launcher can
run it without that check for a source still awaiting consent (a green hold that seals the
bytes, governance/holds.py) while a manual materialization always evaluates it.
"""

import dagster as dg

from grace_pipelines.ingest.stages import store_source
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, StateResource

CONSENT_TRANSCRIBE = dg.AssetCheckKey(dg.AssetKey("source"), "consent_transcribe")


@dg.multi_asset(
    name="source",
    specs=[
        dg.AssetSpec(
            "source",
            group_name="ingest",
            kinds={"python", "file"},
            description="The raw recording or document of one drop, copied into the store and verified by hash.",
        )
    ],
    partitions_def=sources_partitions,
    check_specs=[
        dg.AssetCheckSpec(
            "consent_transcribe",
            asset="source",
            blocking=True,
            description="Every participant granted consent to transcribe this source.",
        )
    ],
    can_subset=True,
)
def source(context: dg.AssetExecutionContext, blob_store: BlobStore, state: StateResource):
    """The raw recording or document of one drop, copied into the store and verified by hash."""
    metadata, check = store_source(context.partition_key, blob_store, state.db())
    checked = CONSENT_TRANSCRIBE in context.selected_asset_check_keys
    yield dg.MaterializeResult(asset_key="source", metadata=metadata, check_results=[check] if checked else [])

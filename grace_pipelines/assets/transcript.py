"""`transcript`: what was said (with start/end seconds and word timings) or written.

Audio and video go through the Transcriber resource from bytes in memory, then the Speakers
resource labels each segment and word with who said it; documents are
decoded as text. The result is stored as a blob; metadata carries counts, seconds, language
and real-time factor, never the words. Carries the blocking check `consent_index`.

A scanned document with no text layer is a hold, not a failure: the step ends green with an
observation giving the reason, and nothing downstream runs (the spec is skippable). A
multi-asset that can be subset, so a launcher can run it without `consent_index` while that
consent is still awaited (governance/holds.py).
"""

import dagster as dg

from grace_pipelines.ingest.stages import SourceHeld, make_transcript
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, Extraction, Speakers, StateResource, Transcriber

CONSENT_INDEX = dg.AssetCheckKey(dg.AssetKey("transcript"), "consent_index")


@dg.multi_asset(
    name="transcript",
    specs=[
        dg.AssetSpec(
            "transcript",
            deps=["source"],
            group_name="ingest",
            kinds={"python", "whisper"},
            skippable=True,
            description="Timed segments of speech for audio/video, or the text of a document.",
        )
    ],
    partitions_def=sources_partitions,
    pool="transcription",
    check_specs=[
        dg.AssetCheckSpec(
            "consent_index",
            asset="transcript",
            blocking=True,
            description="Every participant granted consent to index (chunk, embed, search) this source.",
        )
    ],
    can_subset=True,
)
def transcript(
    context: dg.AssetExecutionContext,
    transcriber: Transcriber,
    blob_store: BlobStore,
    state: StateResource,
    extraction: Extraction,
    speakers: Speakers,
):
    """Timed segments of speech for audio/video, or the text of a document."""
    key = context.partition_key
    try:
        metadata, check = make_transcript(
            key, transcriber, blob_store, state.db(), context.log, budget=extraction.budget(), speakers=speakers
        )
    except SourceHeld as held:
        context.log.info(f"{key} is held ({held.stage}): {held.reason}")
        context.log_event(
            dg.AssetObservation(
                asset_key="transcript", partition=key, metadata={"held": str(held.stage), "reason": held.reason}
            )
        )
        return
    checked = CONSENT_INDEX in context.selected_asset_check_keys
    yield dg.MaterializeResult(asset_key="transcript", metadata=metadata, check_results=[check] if checked else [])

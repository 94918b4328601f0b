"""`transcript`: what was said (with start/end seconds and word timings) or written.

Audio and video go through the Transcriber resource from bytes in memory; documents are
decoded as text. The result is stored as a blob; metadata carries counts, seconds, language
and real-time factor, never the words. Carries the blocking check `consent_index`.
"""

import dagster as dg

from grace_pipelines.assets.source import source
from grace_pipelines.ingest.stages import make_transcript
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import BlobStore, Extraction, StateResource, Transcriber


@dg.asset(
    partitions_def=sources_partitions,
    group_name="ingest",
    kinds={"python", "whisper"},
    deps=[source],
    pool="transcription",
    check_specs=[
        dg.AssetCheckSpec(
            "consent_index",
            asset="transcript",
            blocking=True,
            description="Every participant granted consent to index (chunk, embed, search) this source.",
        )
    ],
)
def transcript(
    context: dg.AssetExecutionContext,
    transcriber: Transcriber,
    blob_store: BlobStore,
    state: StateResource,
    extraction: Extraction,
) -> dg.MaterializeResult:
    """Timed segments of speech for audio/video, or the text of a document."""
    metadata, check = make_transcript(
        context.partition_key, transcriber, blob_store, state.db(), context.log, budget=extraction.budget()
    )
    return dg.MaterializeResult(metadata=metadata, check_results=[check])

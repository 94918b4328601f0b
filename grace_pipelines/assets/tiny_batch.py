"""`tiny_batch_job`: many tiny sources through source -> transcript -> chunks -> embeddings in
ONE run, so 200 voice memos pay for one run start (process, imports, models) instead of 200.

The batch's keys come in run config (any keys, no partition range to over-select). For each
key the op calls the very stage functions the four assets call, in order, and reports
per key exactly what a single run would: an `AssetMaterialization` of each asset with the
key's partition and the stage's metadata, and an `AssetCheckEvaluation` of the two blocking
consent checks for that partition. A key leaves the chain at its first failure or failed
consent check (its state says why) and the others go on; the run fails at the end naming the
keys that failed, so nothing is silent.
"""

import dagster as dg
from pydantic import Field

from grace_pipelines.assets.chunks import make_chunks
from grace_pipelines.assets.embeddings import embedding_rows, mark_searchable
from grace_pipelines.assets.source import store_source
from grace_pipelines.assets.transcript import make_transcript
from grace_pipelines.resources import BlobStore, Embedder, Extraction, StateResource, Transcriber, VectorStore
from grace_pipelines.resources.transcriber import EngineUnavailable


class BatchConfig(dg.Config):
    keys: list[str] = Field(description="Source keys (partitions of `sources`) to take through the chain")
    chunk_chars: int = 500
    chunk_overlap: int = 100


def _evaluation(check: dg.AssetCheckResult, asset: str, key: str) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(asset), check_name=str(check.check_name), passed=check.passed, partition=key,
        metadata=check.metadata, severity=check.severity, description=check.description,
    )


@dg.op(out={}, pool="transcription", tags={"kind": "batch"})
def ingest_batch(
    context: dg.OpExecutionContext,
    config: BatchConfig,
    transcriber: Transcriber,
    embedder: Embedder,
    vector_store: VectorStore,
    blob_store: BlobStore,
    state: StateResource,
    extraction: Extraction,
):
    """Take each key of the batch through the four stages, reporting per-key materializations
    and consent checks."""
    db = state.db()
    known = set(context.instance.get_dynamic_partitions("sources"))
    failed: dict[str, str] = {}
    held = 0
    pending: dict[str, tuple[list, float]] = {}  # key -> (LanceDB rows, embed seconds), written together
    for key in config.keys:
        if key not in known:
            failed[key] = "not a partition of `sources`"
            continue
        try:
            metadata, check = store_source(key, blob_store, db)
            yield dg.AssetMaterialization("source", partition=key, metadata=metadata)
            yield _evaluation(check, "source", key)
            if not check.passed:
                held += 1
                continue  # waits for consent; consent_sensor launches it once granted
            metadata, check = make_transcript(key, transcriber, blob_store, db, context.log, budget=extraction.budget())
            yield dg.AssetMaterialization("transcript", partition=key, metadata=metadata)
            yield _evaluation(check, "transcript", key)
            if not check.passed:
                held += 1
                continue
            metadata = make_chunks(key, blob_store, db, config.chunk_chars, config.chunk_overlap)
            yield dg.AssetMaterialization("chunks", partition=key, metadata=metadata)
            pending[key] = embedding_rows(key, embedder, blob_store, db)
        except dg.Failure as exc:  # bad input: the stage recorded why in the source's state
            failed[key] = exc.description or "failed"
        except EngineUnavailable as exc:  # a system failure: say so on the source, go on
            db.set_stage(key, "failed", reason=f"system failure: {exc}")
            failed[key] = f"system failure: {exc}"
    if pending:
        # one merge for the whole batch: a merge scans the table, so one per source would make a
        # batch's cost grow with the table (measured at 1M rows: 1.15 s per single-source merge)
        vector_store.upsert_sources({key: rows for key, (rows, _) in pending.items()}, embedder.dim)
        for key, (rows, embed_s) in pending.items():
            metadata = mark_searchable(key, rows, embed_s, embedder, vector_store, db)
            yield dg.AssetMaterialization("embeddings", partition=key, metadata=metadata)
    context.log.info(f"batch of {len(config.keys)}: {len(config.keys) - len(failed) - held} searchable, "
                     f"{held} held for consent, {len(failed)} failed")
    if failed:
        listed = "; ".join(f"{k}: {why}" for k, why in list(failed.items())[:20])
        raise dg.Failure(description=f"{len(failed)} of {len(config.keys)} sources failed: {listed}", allow_retries=False)


@dg.job(executor_def=dg.in_process_executor, description="Many tiny sources through the ingest chain in one run.")
def tiny_batch_job():
    ingest_batch()

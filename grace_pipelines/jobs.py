"""Every Dagster job of Grace and the run requests that launch them, in one place.

- `ingest_job` (built per settings, over the versioned ingest assets): one source, partitioned.
- `tiny_batch_job`: many tiny sources through the same stage functions in ONE run, so 200
  voice memos pay for one run start (process, imports, models) instead of 200 (measured 4.6x).
  The batch's keys come in run config (any keys, no partition range to over-select); per key it
  reports what a single run would: an `AssetMaterialization` per asset with the key's partition
  and an `AssetCheckEvaluation` of the two consent checks it passed. A key still awaiting
  consent (or a scanned document with no text layer) is held: sealed, its state says why, no
  failed check and no failure. A key that fails leaves the chain (its state says why), the
  others go on, and the run fails at the end naming the keys that failed.
- `purge_job`, `key_rotation_job`, `search_index_job`, `htm_metrics_job`.
Sensors, schedules and the facade's runner build requests here, never by hand.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from grace_pipelines import tags as tag
from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import Stage
from grace_pipelines.engines.transcription import EngineUnavailable
from grace_pipelines.governance.holds import CONSENT_CHECKS, Allowed
from grace_pipelines.htm.dispatcher import Launch
from grace_pipelines.ingest.stages import (
    SourceHeld,
    embedding_rows,
    make_chunks,
    make_transcript,
    mark_searchable,
    store_source,
)
from grace_pipelines.resources import (
    BlobStore,
    Embedder,
    Extraction,
    Speakers,
    StateResource,
    Transcriber,
    VectorStore,
)
from grace_pipelines.runtime.recovery import Resume
from grace_pipelines.settings import GraceSettings

INGEST_JOB = "ingest_job"
INDEX_STAGE_ASSETS = [dg.AssetKey("chunks"), dg.AssetKey("embeddings")]  # what is left once a transcript exists


def build_ingest_job(ingest_assets: list[dg.AssetsDefinition], settings: GraceSettings):
    # the assets and their consent checks only: data-quality checks run in their own job, after
    # the source is searchable, so they never add to drop-to-searchable
    consent_checks = [dg.AssetCheckKey(dg.AssetKey(a), name) for a, name in CONSENT_CHECKS]
    return dg.define_asset_job(
        INGEST_JOB,
        selection=dg.AssetSelection.assets(*ingest_assets).without_checks() | dg.AssetSelection.checks(*consent_checks),
        description="One source from its stored bytes to searchable vectors, gated by consent checks.",
    )


purge_job = dg.define_asset_job(
    "purge_job",
    selection=dg.AssetSelection.assets("purge_receipt"),
    description="Remove everything derived from one source after consent is revoked or expires.",
)

key_rotation_job = dg.define_asset_job(
    "key_rotation_job",
    selection=dg.AssetSelection.assets("keyring"),
    description="Rotate the key-encryption key: re-wrap every blob, verify, retire the old key.",
)

search_index_job = dg.define_asset_job(
    "search_index_job",
    selection=dg.AssetSelection.assets("search_index"),
    description="Compact the chunks table, fold new rows into the indices, build the vector index at scale.",
)

htm_metrics_job = dg.define_asset_job(
    "htm_metrics_job",
    selection=dg.AssetSelection.assets("htm_metrics"),
    description="Record throughput, latency, SLA compliance, queue depth and starvation.",
)


# ---- the tiny batch ---------------------------------------------------------------------------
class BatchConfig(dg.Config):
    keys: list[str] = Field(description="Source keys (partitions of `sources`) to take through the chain")
    chunk_chars: int = 500
    chunk_overlap: int = 100


def _evaluation(check: dg.AssetCheckResult, asset: str, key: str) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(asset),
        check_name=str(check.check_name),
        passed=check.passed,
        partition=key,
        metadata=check.metadata,
        severity=check.severity,
        description=check.description,
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
    speakers: Speakers,
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
            if not check.passed:  # a hold, not a failure: sealed, and consent_sensor goes on once granted
                held += 1
                continue
            yield _evaluation(check, "source", key)
            try:
                metadata, check = make_transcript(
                    key, transcriber, blob_store, db, context.log, budget=extraction.budget(), speakers=speakers
                )
            except SourceHeld as exc:  # e.g. a scanned PDF with no text layer: held with its reason
                yield dg.AssetObservation("transcript", partition=key, metadata={"held": str(exc.stage)})
                held += 1
                continue
            yield dg.AssetMaterialization("transcript", partition=key, metadata=metadata)
            if not check.passed:
                held += 1
                continue
            yield _evaluation(check, "transcript", key)
            metadata = make_chunks(key, blob_store, db, config.chunk_chars, config.chunk_overlap)
            yield dg.AssetMaterialization("chunks", partition=key, metadata=metadata)
            pending[key] = embedding_rows(key, embedder, blob_store, db)
        except dg.Failure as exc:  # bad input: the stage recorded why in the source's state
            failed[key] = exc.description or "failed"
        except EngineUnavailable as exc:  # a system failure: say so on the source, go on
            db.set_stage(key, Stage.FAILED, reason=f"system failure: {exc}")
            failed[key] = f"system failure: {exc}"
    if pending:
        # one merge for the whole batch: a merge scans the table, so one per source would make a
        # batch's cost grow with the table (measured at 1M rows: 1.15 s per single-source merge)
        vector_store.upsert_sources({key: rows for key, (rows, _) in pending.items()}, embedder.dim)
        for key, (rows, embed_s) in pending.items():
            metadata = mark_searchable(key, rows, embed_s, embedder, vector_store, db)
            yield dg.AssetMaterialization("embeddings", partition=key, metadata=metadata)
    context.log.info(
        f"batch of {len(config.keys)}: {len(config.keys) - len(failed) - held} searchable, "
        f"{held} held (consent or no text layer), {len(failed)} failed"
    )
    if failed:
        listed = "; ".join(f"{k}: {why}" for k, why in list(failed.items())[:20])
        raise dg.Failure(
            description=f"{len(failed)} of {len(config.keys)} sources failed: {listed}", allow_retries=False
        )


@dg.job(executor_def=dg.in_process_executor, description="Many tiny sources through the ingest chain in one run.")
def tiny_batch_job():
    ingest_batch()


def run_requests_for(launch: Launch, settings: GraceSettings) -> list[dg.RunRequest]:
    """The run request for one launch: a single source runs `ingest_job` on its partition; a
    batch runs `tiny_batch_job` with its keys in config. Tags carry origin and size class
    (the run queue's fair-share limit keys on `grace/origin`) and the priority
    (`dagster/priority`, higher first)."""
    tags = {
        tag.ORIGIN: launch.origin,
        tag.SIZE_CLASS: launch.size_class,
        tag.ROUTE: launch.reason[:60],
        tag.PRIORITY: str(launch.priority),
        **launch.tags,  # e.g. grace/intent: the intents its keys serve
    }
    if launch.title:
        tags[tag.TITLE] = tag.title_tag(launch.title, len(launch.keys) - 1)
    if len(launch.keys) == 1:
        key = launch.keys[0]
        if launch.hold:
            tags[tag.HOLD] = launch.hold
        return [
            dg.RunRequest(
                run_key=launch.run_key,
                partition_key=key,
                job_name=INGEST_JOB,
                tags={**tags, tag.SOURCE: key},
                **selection_args(launch.assets, launch.checks),
            )
        ]
    chunking = {"chunk_chars": settings.chunk_chars, "chunk_overlap": settings.chunk_overlap}
    return [
        dg.RunRequest(
            run_key=launch.run_key,
            job_name="tiny_batch_job",
            run_config={"ops": {"ingest_batch": {"config": {"keys": launch.keys, **chunking}}}},
            tags={**tags, tag.SOURCES: ",".join(launch.keys), tag.BATCH_SIZE: str(len(launch.keys))},
        )
    ]


def purge_request(key: str, plan: dict[str, Any], run_key: str, title: str | None = None) -> dg.RunRequest:
    tags = {tag.SOURCE: key, tag.TRIGGER: "revocation"}
    if title:
        tags[tag.TITLE] = tag.title_tag(title)
    return dg.RunRequest(
        run_key=run_key,
        job_name="purge_job",
        partition_key=key,
        run_config={"ops": {"purge_receipt": {"config": plan}}},
        tags=tags,
    )


def resume_request(item: Resume, row: SourceRow | None, run_tag: str, allowed: Allowed | None = None) -> dg.RunRequest:
    """A run request that takes one stuck source on from its last completed stage, as far as
    consent allows (`allowed`, already narrowed to the stages left)."""
    tags = {tag.SOURCE: item.key, tag.ORIGIN: row.origin if row else "manual", tag.TRIGGER: "recovery"}
    if row is not None:
        tags[tag.TITLE] = tag.title_tag(row.title)
    if allowed is None:
        return dg.RunRequest(
            run_key=f"resume:{item.key}:{item.stage}:{run_tag}",
            job_name=INGEST_JOB,
            partition_key=item.key,
            asset_selection=[dg.AssetKey(a) for a in item.assets],
            tags=tags,
        )
    return dg.RunRequest(
        run_key=f"resume:{item.key}:{item.stage}:{run_tag}",
        job_name=INGEST_JOB,
        partition_key=item.key,
        tags=tags,
        **selection_args(allowed.assets, allowed.checks),
    )


def selection_args(assets: tuple[str, ...] | None, checks: tuple[tuple[str, str], ...] | None) -> dict[str, Any]:
    """RunRequest arguments for a share of the ingest graph: the assets, and exactly the checks
    named (so a consent check still awaited is not evaluated and cannot turn the run red)."""
    if assets is None:
        return {}
    return {
        "asset_selection": [dg.AssetKey(a) for a in assets],
        "asset_check_keys": [dg.AssetCheckKey(dg.AssetKey(a), name) for a, name in (checks or ())],
    }


def consent_release_request(row: SourceRow, allowed: Allowed, run_tag: str) -> dg.RunRequest:
    """Work consent was holding, as far as consent now allows: the rest of the graph (or only
    `transcript` while `index` is still awaited), or only the index stages once a transcript exists."""
    tags = {
        tag.ORIGIN: row.origin,
        tag.KIND: row.kind,
        tag.SOURCE: row.key,
        tag.TITLE: tag.title_tag(row.title),
        tag.TRIGGER: "consent",
    }
    if allowed.held:
        tags[tag.HOLD] = "consent:index"
    return dg.RunRequest(
        run_key=f"consent:{row.key}:{run_tag}",
        job_name=INGEST_JOB,
        partition_key=row.key,
        tags=tags,
        **selection_args(None if allowed.complete else allowed.assets, allowed.checks),
    )


def reembed_request(key: str, model: str) -> dg.RunRequest:
    """Embeddings only (chunks reused) for a source an earlier embedding model indexed; once per model."""
    return dg.RunRequest(
        run_key=f"reembed:{model}:{key}",
        job_name=INGEST_JOB,
        partition_key=key,
        asset_selection=[dg.AssetKey("embeddings")],
        tags={tag.SOURCE: key, tag.ORIGIN: "schedule", tag.REASON: "reembed", tag.EMBEDDING_MODEL: model},
    )


# ---- the control room's layered views ----------------------------------------------------------
LAYER_GROUPS = ("ops", "orchestration", "intent")  # every asset of these groups is a metric
LAYER_DEV_ASSETS = ("data_quality", "versions")  # of `dev`: not the playbook_<name> assets (they act)

layers_job = dg.define_asset_job(
    "layers_job",
    selection=dg.AssetSelection.groups(*LAYER_GROUPS) | dg.AssetSelection.assets(*LAYER_DEV_ASSETS),
    description="Refresh the control room's layered views: ops health, quarantine, SLA tiers, HTM metrics, "
    "intents, search quality, data quality, versions.",
)

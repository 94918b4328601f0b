"""The `quality_*` asset checks on `transcript`, `chunks` and `embeddings`, and `quality_job`.

Why a module of its own: the great-expectations suites (grace_pipelines/quality) take 5-8 s to
import, so they must never run inside an ingest run, where they would add to
drop-to-searchable. They are declared here as non-blocking, partitioned checks
(`build_quality_checks`: one `multi_asset_check`, subsettable, so the UI can run one source's
checks, or one check) and evaluated in bulk by `quality_job`, an op job whose run config lists
many source keys (like `tiny_batch_job`): it imports GE once per batch and reports one
`AssetCheckEvaluation` per key and check, with the key's partition, so the UI shows
per-partition results. `quality_sensor` (sensors/quality.py) launches it after sources become
searchable; `ingest_job` selects only the consent checks (jobs.py), never these.

This module imports neither great-expectations nor pandas: they load inside the check bodies.
Metadata carries counts and observed min/max only, never content.
"""

from collections.abc import Iterable, Iterator
from typing import Any

import dagster as dg
from pydantic import Field

from grace_pipelines.db.schema import Stage
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.quality.checks import CHECKS, ERROR, Outcome
from grace_pipelines.resources import BlobStore, Embedder, StateResource, VectorStore
from grace_pipelines.settings import GraceSettings

QUALITY_JOB = "quality_job"
QUALITY_OP = "quality_batch"
QUALITY_CHECKS = "quality_checks"
DEFAULT_CHUNK_CHARS = 500  # GraceSettings' default: used when a source's chunks carry no size


def quality_check_specs() -> list[dg.AssetCheckSpec]:
    """One non-blocking spec per check, partitioned like its asset (a preview feature in Dagster
    1.13 that warns; definitions.py silences exactly that warning)."""
    return [
        dg.AssetCheckSpec(
            c.name,
            asset=c.asset,
            description=f"[{c.severity}] {c.description}",
            blocking=False,
            partitions_def=sources_partitions,
            metadata={"severity": c.severity, "runs_in": QUALITY_JOB},
        )
        for c in CHECKS
    ]


def _severity(outcome: Outcome) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if outcome.severity == ERROR else dg.AssetCheckSeverity.WARN


def _latest_materializations(instance: dg.DagsterInstance, key: str) -> dict[str, Any]:
    """The newest materialization record of each checked asset for one partition."""
    out = {}
    for asset in ("transcript", "chunks", "embeddings"):
        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1
        ).records
        if found:
            out[asset] = found[0]
    return out


def _target(record: Any) -> Any:
    """What the evaluation checked (the UI then knows it is current for that materialization).
    Dagster builds this itself for checks run in a step; an op job reporting checks in bulk has
    no public constructor for it, so it is built from its internal module when present."""
    if record is None:
        return None
    try:
        from dagster._core.definitions.asset_checks.asset_check_evaluation import (
            AssetCheckEvaluationTargetMaterializationData,
        )
    except ImportError:  # moved in a later Dagster: the evaluation is still recorded, unlinked
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.event_log_entry.run_id, timestamp=record.timestamp
    )


def _chunk_chars(record: Any, fallback: int) -> int:
    """The chunk size a source was chunked with (its `chunks` materialization says), else `fallback`."""
    materialization = record.asset_materialization if record is not None else None
    value = materialization.metadata.get("chunk_chars") if materialization is not None else None
    return int(getattr(value, "value", value)) if value is not None else fallback


def evaluate_keys(
    instance: dg.DagsterInstance,
    keys: Iterable[str],
    names: Iterable[str] | None,
    *,
    blob_store: BlobStore,
    vector_store: VectorStore,
    embedder: Embedder,
    chunk_chars: int,
    stats: Any = None,
) -> Iterator[tuple[Outcome, Any]]:
    """Each outcome with the materialization it judged (for the evaluation's target)."""
    from grace_pipelines.quality.run import evaluate_sources

    keys = list(keys)
    latest = {key: _latest_materializations(instance, key) for key in keys}
    for outcome in evaluate_sources(
        keys,
        blob_store=blob_store.client(),
        chunk_index=vector_store.client(),
        dim=embedder.dim,
        chunk_chars=lambda k: _chunk_chars(latest[k].get("chunks"), chunk_chars),
        checks=names,
        stats=stats,
    ):
        yield outcome, latest[outcome.key].get(outcome.check.asset)


def build_quality_checks(settings: GraceSettings) -> dg.AssetChecksDefinition:
    """The partitioned `quality_*` checks (run one source's, or one check, from the UI)."""

    @dg.multi_asset_check(
        name=QUALITY_CHECKS,
        specs=quality_check_specs(),
        can_subset=True,
        description="Data-quality suites (great-expectations) over one source's transcript, chunks and vectors.",
        op_tags={"kind": "great_expectations"},
    )
    def quality_checks(
        context: dg.AssetCheckExecutionContext,
        blob_store: BlobStore,
        vector_store: VectorStore,
        embedder: Embedder,
    ) -> Iterator[dg.AssetCheckResult]:
        """The selected checks for the run's partition (the check reads stored data: no inputs)."""
        names = [k.name for k in context.selected_asset_check_keys]
        for outcome, _ in evaluate_keys(
            context.instance,
            [context.partition_key],
            names,
            blob_store=blob_store,
            vector_store=vector_store,
            embedder=embedder,
            chunk_chars=settings.chunk_chars,
        ):
            yield dg.AssetCheckResult(
                asset_key=outcome.check.asset,
                check_name=outcome.name,
                passed=outcome.passed,
                severity=_severity(outcome),
                description=outcome.description,
                metadata=outcome.metadata,
            )

    return quality_checks


class QualityConfig(dg.Config):
    keys: list[str] = Field(description="Source keys (partitions of `sources`) whose checks to evaluate")
    checks: list[str] | None = Field(None, description="Check names (quality_*); all when empty")
    chunk_chars: int = Field(
        DEFAULT_CHUNK_CHARS, description="Chunk size to judge sizes by when a source's chunks do not record theirs"
    )


@dg.op(name=QUALITY_OP, out={}, tags={"kind": "great_expectations"})
def quality_batch(
    context: dg.OpExecutionContext,
    config: QualityConfig,
    blob_store: BlobStore,
    vector_store: VectorStore,
    embedder: Embedder,
    state: StateResource,
):
    """Evaluate every quality check of each searchable key; one evaluation per key and check."""
    from grace_pipelines.quality.run import BatchStats

    db = state.db()
    known = set(context.instance.get_dynamic_partitions("sources"))
    keys, skipped = [], []
    for key in dict.fromkeys(config.keys):
        row = db.get_source(key) if key in known else None
        (keys if row is not None and row.stage == Stage.SEARCHABLE else skipped).append(key)
    if skipped:  # purged, re-running or unknown since the run was requested: nothing to judge
        context.log.info(f"skipped {len(skipped)} source(s) no longer searchable: {', '.join(skipped[:20])}")
    stats = BatchStats()
    for outcome, record in evaluate_keys(
        context.instance,
        keys,
        config.checks or None,
        blob_store=blob_store,
        vector_store=vector_store,
        embedder=embedder,
        chunk_chars=config.chunk_chars,
        stats=stats,
    ):
        yield dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(outcome.check.asset),
            check_name=outcome.name,
            passed=outcome.passed,
            partition=outcome.key,
            severity=_severity(outcome),
            description=outcome.description,
            metadata=outcome.metadata,
            target_materialization_data=_target(record),
        )
    summary = stats.as_metadata()
    context.log.info(
        f"quality of {summary['sources']} source(s): {summary['passed']} of {summary['evaluations']} checks passed, "
        f"{summary['failed_error']} ERROR and {summary['failed_warn']} WARN failed; "
        f"great-expectations import {summary['ge_import_s']} s, {summary['seconds_per_source']} s per source"
    )


@dg.job(
    name=QUALITY_JOB,
    executor_def=dg.in_process_executor,
    description="Data-quality checks (great-expectations) for many sources in one run, after they became "
    "searchable; never part of an ingest run.",
)
def quality_job():
    quality_batch()


def quality_run_config(keys: list[str], chunk_chars: int, checks: list[str] | None = None) -> dict[str, Any]:
    """The run config of `quality_job` for `keys`."""
    body: dict[str, Any] = {"keys": keys, "chunk_chars": chunk_chars}
    if checks:
        body["checks"] = checks
    return {"ops": {QUALITY_OP: {"config": body}}}

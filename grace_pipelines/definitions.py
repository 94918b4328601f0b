"""The single `dg.Definitions` of Grace: assets, checks, job, sensors and resources.

`dagster dev -w workspace.yaml` (or `grace dev`) loads `defs` from here; tests and the API
call `build_definitions(settings)` for a GRACE_HOME of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import dagster as dg

from grace_pipelines.assets import chunks, embeddings, purge_receipt, source, transcript
from grace_pipelines.assets.keyring import keyring
from grace_pipelines.assets.search_index import search_index
from grace_pipelines.assets.htm_metrics import htm_metrics
from grace_pipelines.assets.tiny_batch import tiny_batch_job
from grace_pipelines.schedules import (
    build_offpeak_schedule,
    htm_metrics_job,
    htm_metrics_schedule,
    key_rotation_job,
    key_rotation_schedule,
    search_index_job,
    search_index_schedule,
)
from grace_pipelines.partitions import sources_partitions
from grace_pipelines.resources import build_resources
from grace_pipelines.assets.embeddings import EMBEDDINGS_CODE_VERSION
from grace_pipelines.sensors import (
    build_consent_sensor,
    build_inbox_sensor,
    build_recovery_sensor,
    build_reembed_sensor,
    build_sla_sensor,
)
from grace_pipelines.settings import GraceSettings, load_settings
from grace_pipelines.db.schema import utcnow

UPSTREAM_CODE_VERSION = "1"  # source, transcript, chunks: bump one when its logic changes


def _versioned(asset: dg.AssetsDefinition, version: str) -> dg.AssetsDefinition:
    return asset.map_asset_specs(lambda spec: spec.replace_attributes(code_version=version))


def build_definitions(settings: GraceSettings, clock: Callable[[], datetime] = utcnow) -> dg.Definitions:
    """`clock` is when "now" is for the inbox and SLA sensors (tests pass a fixed one)."""
    resources = build_resources(settings)
    # Code versions: the embedder's identity is part of `embeddings`' version, so a model change
    # shows `embeddings` alone as changed in the UI, and `reembed_sensor` re-runs only it.
    ingest_assets = [
        *(_versioned(a, UPSTREAM_CODE_VERSION) for a in (source, transcript, chunks)),
        _versioned(embeddings, f"{EMBEDDINGS_CODE_VERSION}+{resources['embedder'].code_version()}"),
    ]
    job = dg.define_asset_job(
        "ingest_job",
        selection=dg.AssetSelection.assets(*ingest_assets),
        partitions_def=sources_partitions,
        description="One source from its stored bytes to searchable vectors, gated by consent checks.",
        config={"ops": {"chunks": {"config": {"chunk_chars": settings.chunk_chars, "chunk_overlap": settings.chunk_overlap}}}},
    )
    purge_job = dg.define_asset_job(
        "purge_job",
        selection=dg.AssetSelection.assets(purge_receipt),
        partitions_def=sources_partitions,
        description="Remove everything derived from one source after consent is revoked or expires.",
    )
    return dg.Definitions(
        assets=[*ingest_assets, purge_receipt, keyring, search_index, htm_metrics],
        jobs=[job, tiny_batch_job, purge_job, key_rotation_job, search_index_job, htm_metrics_job],
        schedules=[key_rotation_schedule, search_index_schedule, htm_metrics_schedule, build_offpeak_schedule(settings, job)],
        sensors=[
            build_inbox_sensor(settings, [job, tiny_batch_job], clock),
            build_sla_sensor(settings, [job, tiny_batch_job], clock),
            build_consent_sensor(
                [job, purge_job],
                interval=settings.inbox_poll_seconds,
                purge_original_on_revoke=settings.purge_original_on_revoke,
            ),
            build_reembed_sensor(job, embeddings.key, interval=settings.inbox_poll_seconds, per_tick=settings.max_files_per_tick),
            build_recovery_sensor(settings, [job, purge_job]),
        ],
        resources=resources,
        executor=dg.in_process_executor,
    )


defs = build_definitions(load_settings())

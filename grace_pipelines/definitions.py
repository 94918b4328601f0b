"""The single `dg.Definitions` of Grace: assets, checks, job, sensors and resources.

`dagster dev -w workspace.yaml` (or `grace dev`) loads `defs` from here, lazily; tests and the
API call `build_definitions(settings)` for a GRACE_HOME of their own.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime

import dagster as dg

from grace_pipelines.assets import chunks, embeddings, purge_receipt, source, transcript
from grace_pipelines.assets.embeddings import EMBEDDINGS_CODE_VERSION
from grace_pipelines.assets.htm_metrics import htm_metrics
from grace_pipelines.assets.intents import build_intents_asset
from grace_pipelines.assets.keyring import keyring
from grace_pipelines.assets.layers import build_layer_assets
from grace_pipelines.assets.quality import build_quality_checks, quality_job
from grace_pipelines.assets.search_index import search_index
from grace_pipelines.db.schema import utcnow
from grace_pipelines.jobs import (
    build_ingest_job,
    htm_metrics_job,
    key_rotation_job,
    layers_job,
    purge_job,
    search_index_job,
    tiny_batch_job,
)
from grace_pipelines.playbooks.dagster_defs import playbook_definitions
from grace_pipelines.resources import build_resources
from grace_pipelines.schedules import (
    build_offpeak_schedule,
    layers_schedule,
)
from grace_pipelines.sensors import (
    build_consent_sensor,
    build_inbox_sensor,
    build_intent_sensor,
    build_quality_sensor,
    build_recovery_sensor,
    build_reembed_sensor,
    build_sla_sensor,
)
from grace_pipelines.settings import GraceSettings, load_settings

# Dagster 1.13 re-creates every sensor when resources are bound (SensorDefinition.
# dagster_internal_init always passes `owners=`), so each `grace` command printed a BetaWarning
# for a parameter Grace never sets. Only that message is silenced.
warnings.filterwarnings(
    "ignore",
    message=r"Parameter `owners` of initializer `SensorDefinition.__init__` is currently in beta",
    category=dg.BetaWarning,
)
# The `quality_*` checks are partitioned like their assets (assets/quality.py): partitions on an
# AssetCheckSpec are a preview feature in 1.13 and warn once per spec. Only that message is silenced.
warnings.filterwarnings(
    "ignore",
    message=r"Specifying a partitions_def on an AssetCheckSpec is currently in preview",
    category=dg.PreviewWarning,
)

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
    job = build_ingest_job(ingest_assets, settings)
    built: list[dg.Definitions] = []  # the layer views read the whole asset graph at run time
    layers = build_layer_assets(settings, graph=lambda: built[0].resolve_asset_graph())
    intents_asset = build_intents_asset(settings)
    defs = dg.Definitions(
        assets=[*ingest_assets, purge_receipt, keyring, search_index, htm_metrics, intents_asset, *layers],
        asset_checks=[build_quality_checks(settings)],  # run by quality_job, never by ingest_job
        jobs=[
            job,
            tiny_batch_job,
            purge_job,
            key_rotation_job,
            search_index_job,
            htm_metrics_job,
            layers_job,
            quality_job,
        ],
        schedules=[  # key rotation, search index and HTM metrics run from their playbooks (playbooks/)
            build_offpeak_schedule(settings, job),
            layers_schedule,
        ],
        sensors=[
            build_inbox_sensor(settings, [job, tiny_batch_job], clock),
            build_sla_sensor(settings, [job, tiny_batch_job], clock),
            build_consent_sensor(
                [job, purge_job],
                interval=settings.inbox_poll_seconds,
                purge_original_on_revoke=settings.purge_original_on_revoke,
            ),
            build_reembed_sensor(
                job, embeddings.key, interval=settings.inbox_poll_seconds, per_tick=settings.max_files_per_tick
            ),
            build_recovery_sensor(settings, [job, purge_job]),
            build_intent_sensor(settings, [job], clock),
            build_quality_sensor(settings),
        ],
        resources=resources,
        executor=dg.in_process_executor,
    )
    # every playbook file (playbooks/, $GRACE_HOME/playbooks/): an asset, checks, a job, its trigger
    defs = dg.Definitions.merge(defs, playbook_definitions(settings, base=defs))
    built.append(defs)
    return defs


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev -w workspace.yaml` loads: the definitions for the GRACE_HOME of the
    environment, built when the code location loads (not when this module is imported)."""
    return build_definitions(load_settings())

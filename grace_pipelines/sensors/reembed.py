"""`reembed_sensor`: after the embedding model changes, re-embed what the old model indexed.

The `embeddings` asset's code version is the embedder's identity, so the Dagster UI shows it
(and only it) as changed; this sensor does the work: every searchable source still indexed by
another model gets an `ingest_job` run with only `embeddings` selected (chunks are reused, so
nothing is re-transcribed), writing into the new model's own table. The state database says
which sources those are, so purged or consent-less sources are never touched. The run key
names the model, so each source is re-embedded once per model.
"""

from typing import Any

import dagster as dg

from grace_pipelines.jobs import reembed_request
from grace_pipelines.resources import Embedder, StateResource


def build_reembed_sensor(job: Any, embeddings_key: dg.AssetKey, interval: int, per_tick: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="reembed_sensor",
        job=job,
        minimum_interval_seconds=max(interval, 30),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-embeds (embeddings only) sources indexed by an earlier embedding model.",
    )
    def reembed_sensor(
        context: dg.SensorEvaluationContext, state: StateResource, embedder: Embedder
    ) -> dg.SensorResult:
        model = embedder.code_version()
        keys = state.db().stale_embeddings(model, limit=per_tick)
        return dg.SensorResult(
            run_requests=[reembed_request(key, model) for key in keys],
            skip_reason=None if keys else f"every searchable source is embedded with {embedder.model_name}",
        )

    return reembed_sensor

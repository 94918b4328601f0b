"""`consent_sensor`: a new grant launches the work that was waiting for it.

Reads the consent ledger past its cursor (the last ledger id seen). A source that was held
by a consent check and now has every required grant gets a run: the whole ingest graph when
it was waiting to be transcribed, only `chunks` and `embeddings` when it was waiting to be
indexed (its transcript already exists).
"""


from typing import Any

import dagster as dg

from grace_pipelines.assets.transcript import TRANSCRIPT
from grace_pipelines.consent import missing_parties
from grace_pipelines.resources import BlobStore, StateResource
from grace_pipelines.state import StateDB, utcnow

INDEX_STAGE_ASSETS = [dg.AssetKey("chunks"), dg.AssetKey("embeddings")]


def waiting_requests(db: StateDB, blob_store: BlobStore, keys: set[str], tag: str) -> list[dg.RunRequest]:
    """Run requests for the given sources that were held on consent and now may proceed."""
    requests = []
    for key in sorted(keys):
        row = db.get_source(key)
        if row is None or row.stage != "awaiting_consent":
            continue
        events = db.consent_events(key)
        now = utcnow()
        if missing_parties(row.participants, events, "transcribe", now):
            continue
        has_transcript = blob_store.exists(key, TRANSCRIPT)
        if has_transcript and missing_parties(row.participants, events, "index", now):
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"consent:{key}:{tag}",
                partition_key=key,
                asset_selection=INDEX_STAGE_ASSETS if has_transcript else None,
                tags={"grace/origin": row.origin, "grace/kind": row.kind, "grace/source": key, "grace/trigger": "consent"},
            )
        )
    return requests


def build_consent_sensor(job: Any, interval: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="consent_sensor",
        job=job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches work held on consent once every required party has granted.",
    )
    def consent_sensor(context: dg.SensorEvaluationContext, state: StateResource, blob_store: BlobStore) -> dg.SensorResult:
        db = state.db()
        last = int(context.cursor or 0)
        rows = db.consent_rows(after_id=last)
        if not rows:
            return dg.SensorResult(skip_reason="no consent changes")
        newest = max(r["id"] for r in rows)
        granted = {r["source_key"] for r in rows if r["action"] == "grant"}
        requests = waiting_requests(db, blob_store, granted, tag=str(newest))
        return dg.SensorResult(run_requests=requests, cursor=str(newest))

    return consent_sensor

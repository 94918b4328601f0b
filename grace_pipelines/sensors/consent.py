"""`consent_sensor`: consent changes become runs.

Reads the consent ledger past its cursor (the last ledger id seen) and the grants that
expired since its last tick:
- a grant that completes what a held source was waiting for launches that work (the whole
  ingest graph when it waited to be transcribed, only `chunks` and `embeddings` when its
  transcript already exists);
- a revocation, or a grant that expired, launches `purge_job` for that source, which removes
  everything derived (and the raw media when no consent is left, or when settings say so).
"""

import json
from datetime import datetime
from typing import Any

import dagster as dg

from grace_pipelines.assets.transcript import TRANSCRIPT
from grace_pipelines.governance.consent import SCOPES, missing_parties
from grace_pipelines.resources import BlobStore, StateResource
from grace_pipelines.db.schema import HELD_STAGES, utcnow
from grace_pipelines.db.state import StateDB

INDEX_STAGE_ASSETS = [dg.AssetKey("chunks"), dg.AssetKey("embeddings")]


def waiting_requests(db: StateDB, blob_store: BlobStore, keys: set[str], tag: str) -> list[dg.RunRequest]:
    """Run requests for the given sources that were held on consent and now may proceed."""
    requests = []
    for key in sorted(keys):
        row = db.get_source(key)
        if row is None or row.stage not in HELD_STAGES:
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
                job_name="ingest_job",
                partition_key=key,
                asset_selection=INDEX_STAGE_ASSETS if has_transcript else None,
                tags={"grace/origin": row.origin, "grace/kind": row.kind, "grace/source": key, "grace/trigger": "consent"},
            )
        )
    return requests


def purge_plan(db: StateDB, key: str, *, purge_original_on_revoke: bool, now: datetime) -> dict[str, Any] | None:
    """What a purge of `key` should remove now, or None when consent still covers it all."""
    row = db.get_source(key)
    if row is None or (row.stage == "purged" and not purge_original_on_revoke):
        return None
    events = db.consent_events(key)
    missing = {scope: missing_parties(row.participants, events, scope, now) for scope in SCOPES}
    if not any(missing.values()):
        return None
    nothing_left = all(set(m) == set(row.participants) for m in missing.values())
    who = sorted({p for m in missing.values() for p in m})
    return {
        "remove_original": purge_original_on_revoke or nothing_left,
        "reason": f"consent withdrawn or expired ({', '.join(s for s, m in missing.items() if m)}: {', '.join(who)})",
    }


def purge_request(key: str, plan: dict[str, Any], run_key: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        job_name="purge_job",
        partition_key=key,
        run_config={"ops": {"purge_receipt": {"config": plan}}},
        tags={"grace/source": key, "grace/trigger": "revocation"},
    )


def _parse_cursor(raw: str | None) -> tuple[int, datetime | None]:
    if not raw:
        return 0, None
    try:
        data = json.loads(raw)
        if isinstance(data, int):
            return data, None
        checked = data.get("expiry_checked")
        return int(data.get("id", 0)), datetime.fromisoformat(checked) if checked else None
    except (ValueError, TypeError, AttributeError):
        return 0, None


def build_consent_sensor(jobs: list[Any], interval: int, purge_original_on_revoke: bool) -> dg.SensorDefinition:
    @dg.sensor(
        name="consent_sensor",
        jobs=jobs,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches work released by grants, and purges on revocation or expiry.",
    )
    def consent_sensor(context: dg.SensorEvaluationContext, state: StateResource, blob_store: BlobStore) -> dg.SensorResult:
        db = state.db()
        last_id, expiry_checked = _parse_cursor(context.cursor)
        now = utcnow()
        rows = db.consent_rows(after_id=last_id)
        newest = max([r["id"] for r in rows], default=last_id)
        requests: list[dg.RunRequest] = []
        granted = {r["source_key"] for r in rows if r["action"] == "grant"}
        requests.extend(waiting_requests(db, blob_store, granted, tag=str(newest)))
        to_purge: dict[str, str] = {}
        for r in rows:
            if r["action"] == "revoke":
                to_purge[r["source_key"]] = f"purge:{r['source_key']}:{r['id']}"
        for r in db.expired_grants(after=expiry_checked, until=now):
            to_purge.setdefault(r["source_key"], f"expire:{r['source_key']}:{r['id']}")
        for key, run_key in sorted(to_purge.items()):
            plan = purge_plan(db, key, purge_original_on_revoke=purge_original_on_revoke, now=now)
            if plan is not None:
                requests.append(purge_request(key, plan, run_key))
        cursor = json.dumps({"id": newest, "expiry_checked": now.isoformat()})
        if not requests:
            return dg.SensorResult(skip_reason="no consent changes that launch work", cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return consent_sensor

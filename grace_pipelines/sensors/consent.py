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

from grace_pipelines.db.schema import utcnow
from grace_pipelines.governance.holds import released
from grace_pipelines.governance.purge import purge_plan
from grace_pipelines.jobs import consent_release_request, purge_request
from grace_pipelines.resources import BlobStore, StateResource


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
    def consent_sensor(
        context: dg.SensorEvaluationContext, state: StateResource, blob_store: BlobStore
    ) -> dg.SensorResult:
        db = state.db()
        last_id, expiry_checked = _parse_cursor(context.cursor)
        now = utcnow()
        rows = db.consent_rows(after_id=last_id)
        newest = max([r["id"] for r in rows], default=last_id)
        requests: list[dg.RunRequest] = []
        granted = {r["source_key"] for r in rows if r["action"] == "grant"}
        requests.extend(
            consent_release_request(row, allowed, str(newest)) for row, allowed in released(db, blob_store, granted)
        )
        to_purge: dict[str, str] = {}
        for r in rows:
            if r["action"] == "revoke":
                to_purge[r["source_key"]] = f"purge:{r['source_key']}:{r['id']}"
        for r in db.expired_grants(after=expiry_checked, until=now):
            to_purge.setdefault(r["source_key"], f"expire:{r['source_key']}:{r['id']}")
        for key, run_key in sorted(to_purge.items()):
            plan = purge_plan(db, key, purge_original_on_revoke=purge_original_on_revoke, now=now)
            if plan is not None:
                row = db.get_source(key)
                requests.append(purge_request(key, plan, run_key, row.title if row else None))
        cursor = json.dumps({"id": newest, "expiry_checked": now.isoformat()})
        if not requests:
            return dg.SensorResult(skip_reason="no consent changes that launch work", cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return consent_sensor

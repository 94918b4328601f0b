"""`intent_sensor`: every ~15 s, the live intents are evaluated and their orphaned work re-launched.

Thin: grace_pipelines/intents/service.py feeds each deadline to the HTM SLA, records progress,
moves the status and fires the completion and overdue events once (audit log + webhook).
Then, for the sources that live intents still wait on, runtime/recovery finds what dead
processes left: a run whose process is gone is marked failed, a claimed source with no live run
goes back to the dispatcher's queue (which launches it tagged with its intents), and a source
an interrupted run left mid-pipeline gets a resume run tagged `grace/intent`. Re-embed intents
request the embeddings-only runs of their sources that no run (of `reembed_sensor` or the API)
has taken yet, at most `max_files_per_tick` per tick.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import dagster as dg

from grace_pipelines import tags as tag
from grace_pipelines.db.intents import LIVE_STATUSES, intent_tags
from grace_pipelines.intents.service import evaluate, reembed_pending, watched_keys
from grace_pipelines.jobs import reembed_request, resume_request
from grace_pipelines.resources import Embedder, StateResource
from grace_pipelines.resources.alerts import Alerts
from grace_pipelines.runtime.recovery import recover
from grace_pipelines.settings import GraceSettings


def build_intent_sensor(
    settings: GraceSettings, jobs: list[Any], clock: Callable[[], datetime], interval: int = 15
) -> dg.SensorDefinition:
    @dg.sensor(
        name="intent_sensor",
        jobs=jobs,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Intents: deadlines feed the SLA, progress recorded, completion and overdue alerted once, "
        "orphaned work re-launched.",
    )
    def intent_sensor(
        context: dg.SensorEvaluationContext, state: StateResource, alerts: Alerts, embedder: Embedder
    ) -> dg.SensorResult:
        now = clock()
        db = state.db()
        events = evaluate(db, settings, now, alerts.send)
        for event in events:
            context.log.info(f"intent #{event['intent']}: {event['event']} (webhook: {event['webhook']})")
        requests: list[dg.RunRequest] = []
        watched = watched_keys(db)
        if watched:
            report = recover(context.instance, settings, db, sweep_temp=False)
            for run in report.dead_runs:
                context.log.warning(f"run {run['run_id']} ({run['job']}) marked failed: {run['why']}")
            for key in report.requeued:
                if key in watched:
                    context.log.info(f"{key}: its launch was lost; back in the dispatcher's queue")
            stamp = f"intent:{now:%Y%m%dT%H%M%S}"
            for item in report.resume:
                if item.key not in watched:
                    continue  # recovery_sensor resumes it
                request = resume_request(item, db.get_source(item.key), stamp)
                requests.append(
                    request.with_replaced_attrs(
                        tags={**request.tags, **intent_tags(db, [item.key]), tag.TRIGGER: "recovery"}
                    )
                )
        model = embedder.code_version()
        budget = settings.max_files_per_tick
        for intent in db.list_intents(LIVE_STATUSES):
            if intent.kind != "reembed" or intent.model != model or budget <= 0:
                continue
            for key in reembed_pending(db, intent):
                if budget <= 0:
                    break
                seen = dg.RunsFilter(tags={tag.SOURCE: key, tag.EMBEDDING_MODEL: model})
                if context.instance.get_runs(filters=seen, limit=1):
                    continue  # reembed_sensor (or the API) already runs it: run keys are per sensor
                request = reembed_request(key, model)
                requests.append(request.with_replaced_attrs(tags={**request.tags, **intent_tags(db, [key])}))
                budget -= 1
        skip = None if (requests or events) else f"{len(watched)} source(s) awaited by intents; nothing to do"
        return dg.SensorResult(run_requests=requests, skip_reason=skip)

    return intent_sensor

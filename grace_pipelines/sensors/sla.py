"""`sla_sensor`: three-tier escalation of the drop-to-searchable SLA, once per tier per source.

For every source the system still owes work (not done, not held for consent) it computes
elapsed / allowed against the source's deadline (grace_pipelines/htm/sla.py):

- warning (>= 75 %): its priority is raised, so the dispatcher launches it before others;
- violated (>= 100 %): launched now if it is still waiting, even when deferred to off-peak or
  over its origin's cap, at the top priority; logged as an alert (and as `starved` when it
  never got to start);
- critical (>= 150 %): posted to the configured webhook and written to the audit log.

Each tier is recorded in the HTM ledger (unique per source and tier), which is what makes it
fire once.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import dagster as dg

from grace_pipelines.db.htm_ledger import Ledger
from grace_pipelines.governance.audit.log import record
from grace_pipelines.htm.dispatcher import Launch, launch
from grace_pipelines.htm.routing import URGENT_PRIORITY, WARNING_BOOST, base_priority
from grace_pipelines.htm.sla import target_for, tier, tiers_up_to
from grace_pipelines.jobs import run_requests_for
from grace_pipelines.resources import StateResource
from grace_pipelines.resources.alerts import Alerts
from grace_pipelines.settings import GraceSettings


def build_sla_sensor(settings: GraceSettings, jobs: list[Any], clock: Callable[[], datetime]) -> dg.SensorDefinition:
    @dg.sensor(
        name="sla_sensor",
        jobs=jobs,
        minimum_interval_seconds=max(settings.inbox_poll_seconds, 15),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="SLA escalation: warning raises priority, violated launches now, critical alerts the webhook.",
    )
    def sla_sensor(context: dg.SensorEvaluationContext, state: StateResource, alerts: Alerts) -> dg.SensorResult:
        now = clock()
        db = state.db()
        ledger = Ledger(db)
        requests: list[dg.RunRequest] = []
        fired: list[str] = []
        urgent_tiny: dict[str, list[Any]] = {}
        for row in ledger.unfinished():
            if row.sla_due is None:
                continue
            reached = tier(row.dropped_at, row.sla_due, now)
            elapsed = (now - row.dropped_at).total_seconds()
            allowed = (row.sla_due - row.dropped_at).total_seconds()
            target = target_for(settings.sla_targets, row.origin, row.size_class or "normal").label()
            for name in tiers_up_to(reached):
                detail = f"{elapsed:.0f} s of {allowed:.0f} s ({target}) for {row.origin}/{row.size_class}"
                if not ledger.record_event(row, name, now, detail):
                    continue  # fired before
                fired.append(f"{row.key}:{name}")
                if name == "warning":
                    if row.launched_at is None:
                        ledger.set_route(row.key, row.route or "run", base_priority(row.origin) + WARNING_BOOST)
                    context.log.info(f"SLA warning for {row.key} ({row.title}): {detail}; priority raised")
                elif name == "violated":
                    context.log.warning(f"SLA violated for {row.key} ({row.title}): {detail}")
                    if row.launched_at is None:
                        ledger.record_event(row, "starved", now, f"never started within its SLA ({target})")
                        if row.size_class == "tiny":  # launched below, in batches per origin
                            urgent_tiny.setdefault(row.origin, []).append(row)
                            continue
                        done = launch(
                            ledger,
                            Launch(
                                keys=[row.key],
                                origin=row.origin,
                                size_class=row.size_class or "normal",
                                priority=URGENT_PRIORITY,
                                reason="SLA violated: launched now",
                                run_key=f"{row.key}:sla:{now:%Y%m%dT%H%M%S}",
                                urgent=True,
                            ),
                            now,
                            "run",
                        )
                        if done:
                            requests.extend(run_requests_for(done, settings))
                else:  # critical
                    text = (
                        f"Grace SLA critical: {row.title} ({row.origin}, {row.size_class}) is not searchable "
                        f"after {elapsed / 60:.1f} min; target {target}."
                    )
                    delivered, outcome = alerts.send(
                        text,
                        tier=name,
                        source=row.key,
                        title=row.title,
                        origin=row.origin,
                        size_class=row.size_class,
                        elapsed_s=round(elapsed, 1),
                        allowed_s=round(allowed, 1),
                        target=target,
                    )
                    record(
                        db,
                        actor="sla_sensor",
                        action="sla_critical",
                        subject=row.key,
                        details={
                            "title": row.title,
                            "origin": row.origin,
                            "size_class": row.size_class,
                            "elapsed_s": round(elapsed, 1),
                            "allowed_s": round(allowed, 1),
                            "target": target,
                            "webhook": outcome if alerts.enabled else "not configured",
                            "delivered": delivered,
                        },
                    )
                    context.log.error(f"SLA critical for {row.key} ({row.title}): {detail}; webhook: {outcome}")
        for origin, rows in urgent_tiny.items():
            for start in range(0, len(rows), settings.tiny_batch_size):
                batch = [r.key for r in rows[start : start + settings.tiny_batch_size]]
                done = launch(
                    ledger,
                    Launch(
                        keys=batch,
                        origin=origin,
                        size_class="tiny",
                        priority=URGENT_PRIORITY,
                        reason="SLA violated: launched now",
                        run_key=f"sla-batch:{batch[0]}:{now:%Y%m%dT%H%M%S}",
                        urgent=True,
                        title=rows[start].title,
                    ),
                    now,
                    "batch",
                )
                if done:
                    requests.extend(run_requests_for(done, settings))
        return dg.SensorResult(
            run_requests=requests,
            skip_reason=None if (requests or fired) else "every pending source is within its SLA",
        )

    return sla_sensor

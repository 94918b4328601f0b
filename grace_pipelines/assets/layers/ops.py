"""The `ops` layer (health): is Grace able to work, and what did it refuse or fail?

`ops_health`: disk free, store sizes, daemon and sensor heartbeats (read from the Dagster
instance), failed sources with their reasons and held ones counted apart (a hold waits on a
person; it is not a failure). `quarantine`: every file refused on its content, with its reason,
so a quarantined drop is visible in the control room as what it is. The figures come from
grace_pipelines/runtime/health.py; this module adds the instance queries and the checks.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from grace_pipelines.db.schema import utcnow
from grace_pipelines.resources import StateResource
from grace_pipelines.runtime.health import age_s, disk_of, md_table, source_health, store_sizes
from grace_pipelines.settings import GraceSettings

GROUP = "ops"
GIB = 1024**3
DAEMON_TAGS = ("dagster/schedule_name", "dagster/sensor_name", "dagster/backfill")  # launched by the daemon


class OpsHealthConfig(dg.Config):
    disk_free_floor_bytes: int = Field(GIB, ge=0, description="ERROR when GRACE_HOME's disk has less free space")
    heartbeat_max_age_s: float = Field(300.0, gt=0, description="A daemon or sensor heartbeat older than this is stale")
    expect_daemon: bool | None = Field(
        None, description="Whether a daemon should be running; default: when a schedule or sensor launched this run"
    )


def daemon_heartbeats(instance: dg.DagsterInstance, now_ts: float) -> dict[str, float]:
    """Seconds since each daemon type's latest heartbeat (empty: no daemon ever ran here)."""
    return {name: round(now_ts - beat.timestamp, 1) for name, beat in instance.get_daemon_heartbeats().items()}


def sensor_ticks(instance: dg.DagsterInstance, now_ts: float) -> list[dict[str, Any]]:
    """Each sensor the daemon knows: running or stopped, seconds since its latest tick, and that
    tick's status. A sensor the daemon never evaluated is not listed (there is no state yet)."""
    out = []
    for state in instance.all_instigator_state():
        if state.instigator_type.value != "SENSOR":
            continue
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
        tick = ticks[0] if ticks else None
        out.append(
            {
                "sensor": state.instigator_name,
                "running": state.is_running,
                "age_s": round(now_ts - tick.timestamp, 1) if tick else None,
                "status": tick.status.value if tick else "never ticked",
            }
        )
    return sorted(out, key=lambda s: s["sensor"])


def _heartbeat_check(
    config: OpsHealthConfig, expected: bool, daemons: dict[str, float], sensors: list[dict[str, Any]]
) -> dg.AssetCheckResult:
    stale_sensors = [
        s["sensor"] for s in sensors if s["running"] and (s["age_s"] is None or s["age_s"] > config.heartbeat_max_age_s)
    ]
    fresh = [name for name, age in daemons.items() if age <= config.heartbeat_max_age_s]
    failing = [s["sensor"] for s in sensors if s["running"] and s["status"] == "FAILURE"]
    if not expected:
        passed, why = True, "no daemon expected (this run was not launched by a schedule or sensor)"
    elif not fresh:
        passed, why = False, f"daemon not running: no heartbeat in the last {config.heartbeat_max_age_s:.0f} s"
    elif stale_sensors or failing:
        parts = [f"sensors not ticking: {', '.join(stale_sensors)}"] if stale_sensors else []
        parts += [f"last tick failed: {', '.join(failing)}"] if failing else []
        passed, why = False, "; ".join(parts)
    else:
        passed, why = True, f"{len(fresh)} daemon heartbeats fresh"
    return dg.AssetCheckResult(
        check_name="heartbeats_fresh",
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=why,
        metadata={
            "daemon_expected": expected,
            "fresh_daemons": len(fresh),
            "stale_sensors": len(stale_sensors),
            "failing_sensors": len(failing),
        },
    )


def build_ops_assets(settings: GraceSettings) -> list[dg.AssetsDefinition]:
    stores = {
        "blob_store": settings.store,
        "lancedb": settings.lancedb,
        "dagster_home": settings.dagster_home,
        "quarantine": settings.quarantine,
    }

    @dg.asset(
        group_name=GROUP,
        kinds={"python", "sqlite", "dagster"},
        check_specs=[
            dg.AssetCheckSpec("disk_free_floor", asset="ops_health", description="Free disk above the floor (ERROR)"),
            dg.AssetCheckSpec(
                "heartbeats_fresh", asset="ops_health", description="Daemon and sensors alive when expected (WARN)"
            ),
            dg.AssetCheckSpec("no_failed_sources", asset="ops_health", description="No source failed (WARN)"),
        ],
    )
    def ops_health(context: dg.AssetExecutionContext, config: OpsHealthConfig, state: StateResource):
        """Look here first: this asset's checks. disk_free_floor (ERROR) means Grace is about to
        stop writing; no_failed_sources (WARN) lists what failed and why in `last_failures`;
        heartbeats_fresh (WARN) says whether the daemon and its sensors are alive. `held` counts
        sources waiting on a person (consent, a scanned PDF without text): those are holds, not
        failures. Store sizes (bytes) are plotted under Plots; refused files are in `quarantine`."""
        now = utcnow()
        disk = disk_of(settings.home)
        sizes = store_sizes(stores)
        health = source_health(state.db())
        daemons = daemon_heartbeats(context.instance, now.timestamp())
        sensors = sensor_ticks(context.instance, now.timestamp())
        expected = config.expect_daemon
        if expected is None:
            expected = any(name in context.run.tags for name in DAEMON_TAGS)
        running = [s for s in sensors if s["running"] and s["age_s"] is not None]
        metadata: dict[str, Any] = {
            "disk_free_bytes": disk.free,
            "disk_total_bytes": disk.total,
            "disk_free_ratio": round(disk.free_ratio, 4),
            **{f"{name}_bytes": n for name, n in sizes.items()},
            "store_bytes": sum(sizes.values()),
            "daemon": "running" if daemons else "not running",
            "daemons_alive": len(daemons),
            **({"daemon_heartbeat_age_s": min(daemons.values())} if daemons else {}),
            "sensors_running": len(running),
            "sensors_failing": sum(1 for s in running if s["status"] == "FAILURE"),
            **({"oldest_sensor_tick_age_s": max(s["age_s"] for s in running)} if running else {}),
            "failed": health["failed"],
            "held": health["held"],
            "held_awaiting_consent": health["held_by_reason"]["awaiting consent"],
            "held_no_text_layer": health["held_by_reason"]["no text layer"],
            "quarantined": health["quarantined"],
            "last_failures": dg.MetadataValue.md(
                md_table(
                    ("title", "source", "reason", "at"),
                    ((f["title"], f["source"], f["reason"], f["at"]) for f in health["last_failures"]),
                    empty="no failed source",
                )
            ),
            "held_sources": dg.MetadataValue.md(
                md_table(
                    ("title", "source", "held", "why"),
                    ((h["title"], h["source"], h["held"], h["reason"]) for h in health["held_sources"]),
                    empty="nothing held",
                )
            ),
            "heartbeats": dg.MetadataValue.md(
                md_table(
                    ("daemon or sensor", "seconds since last", "status"),
                    [(name, age, "heartbeat") for name, age in sorted(daemons.items())]
                    + [(s["sensor"], s["age_s"] if s["age_s"] is not None else "-", s["status"]) for s in sensors],
                    empty="daemon not running (no heartbeat recorded on this instance)",
                )
            ),
        }
        floor_ok = disk.free >= config.disk_free_floor_bytes
        checks = [
            dg.AssetCheckResult(
                check_name="disk_free_floor",
                passed=floor_ok,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"{disk.free / GIB:.1f} GiB free on {disk.path}, "
                f"floor {config.disk_free_floor_bytes / GIB:.1f} GiB",
                metadata={"disk_free_bytes": disk.free, "floor_bytes": config.disk_free_floor_bytes},
            ),
            _heartbeat_check(config, expected, daemons, sensors),
            dg.AssetCheckResult(
                check_name="no_failed_sources",
                passed=health["failed"] == 0,
                severity=dg.AssetCheckSeverity.WARN,
                description="no failed source"
                if not health["failed"]
                else f"{health['failed']} failed: " + "; ".join(f["title"] for f in health["last_failures"][:5]),
                metadata={"failed": health["failed"]},
            ),
        ]
        context.log.info(
            f"ops health: {disk.free / GIB:.1f} GiB free, {health['failed']} failed, {health['held']} held, "
            f"{health['quarantined']} quarantined, daemon {metadata['daemon']}"
        )
        return dg.MaterializeResult(metadata=metadata, check_results=checks)

    @dg.asset(
        group_name=GROUP,
        kinds={"python", "sqlite"},
        check_specs=[
            dg.AssetCheckSpec(
                "quarantine_not_growing",
                asset="quarantine",
                description="No new quarantined file since last time (WARN)",
            )
        ],
    )
    def quarantine(context: dg.AssetExecutionContext, state: StateResource):
        """Files Grace refused on their content (unreadable media, a hostile document...), each
        with its reason: they were moved to GRACE_HOME/quarantine with a `.reason.txt`, never
        processed. `quarantined` is plotted; `new` is how many arrived since the last
        materialization (the check warns when it grows)."""
        rows = state.db().list_quarantine()
        previous = context.instance.get_latest_materialization_event(context.asset_key)
        before = None
        if previous is not None and previous.asset_materialization is not None:
            value = previous.asset_materialization.metadata.get("quarantined")
            before = int(value.value) if value is not None else None  # type: ignore[arg-type]
        new = len(rows) - before if before is not None else len(rows)
        latest = rows[-1]["at"] if rows else None
        metadata = {
            "quarantined": len(rows),
            "new": new,
            **({"latest_age_s": age_s(latest, utcnow())} if latest else {}),
            "files": dg.MetadataValue.md(
                md_table(
                    ("file", "reason", "quarantined at", "source"),
                    (
                        (q["filename"], q["reason"], q["at"].isoformat(), q["source_key"] or "-")
                        for q in reversed(rows[-50:])
                    ),
                    empty="no quarantined file",
                )
            ),
        }
        check = dg.AssetCheckResult(
            check_name="quarantine_not_growing",
            passed=new <= 0,
            severity=dg.AssetCheckSeverity.WARN,
            description="no new quarantined file"
            if new <= 0
            else f"{new} new: " + "; ".join(q["filename"] for q in rows[-new:][:5]),
            metadata={"new": new, "quarantined": len(rows)},
        )
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return [ops_health, quarantine]

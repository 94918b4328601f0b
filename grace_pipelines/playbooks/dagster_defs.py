"""The Dagster adapter of the playbooks: each loaded playbook becomes an asset
`playbook_<name>` (group `dev`; its materialization records every metric value as a float, the
actions' counts and a markdown report), one non-blocking asset check per playbook check, a job
`playbook_<name>_job` (the asset and the assets it materializes first) and a schedule (cron) or
a sensor (after an asset materializes). One more asset, `playbooks`, carries a `valid_<file>`
check per file, failed naming the line and field for a broken one, so a bad file is a red check
in the UI while the code location and every other playbook still load.

Thin on purpose: the checks and actions are engine.py's; purge plans become `purge_job` runs
here (in process, on the same instance, each with its receipt, as `grace purge` runs them).
"""

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg

from grace_pipelines import tags as tag
from grace_pipelines.db.schema import utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.playbooks.context import PlaybookContext
from grace_pipelines.playbooks.engine import PlaybookResult, evaluate
from grace_pipelines.playbooks.loading import PlaybookError, load_playbooks
from grace_pipelines.playbooks.model import Playbook
from grace_pipelines.resources import Alerts, BlobStore, Chunking, Embedder, StateResource, VectorStore
from grace_pipelines.runtime.recovery import run_tags

GROUP = "dev"
VALIDATION_JOB = "playbooks_validation_job"
SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


def asset_name(name: str) -> str:
    return f"playbook_{name}"


def job_name(name: str) -> str:
    return f"playbook_{name}_job"


class PlaybookRunConfig(dg.Config):
    dry_run: bool = False


class _InstanceData:
    """What the probes need from the Dagster instance, fetched on demand."""

    def __init__(self, instance: dg.DagsterInstance, db: StateDB, check_keys: Callable[[], list[Any]]) -> None:
        self.instance, self.db, self.check_keys = instance, db, check_keys

    def check_records(self, since: datetime) -> list[dict[str, Any]]:
        out = []
        storage = self.instance.event_log_storage
        for key in self.check_keys():
            for rec in storage.get_asset_check_execution_history(key, limit=1000):
                if rec.create_timestamp < since.timestamp() or rec.event is None or rec.event.dagster_event is None:
                    continue
                evaluation = rec.event.dagster_event.event_specific_data
                out.append(
                    {
                        "asset": key.asset_key.to_user_string(),
                        "check": key.name,
                        "passed": bool(getattr(evaluation, "passed", False)),
                        "partition": getattr(evaluation, "partition", None),
                        "at": rec.create_timestamp,
                    }
                )
        return out

    def stage_throughput(self, since: datetime) -> dict[str, dict[str, float]]:
        from grace_pipelines.runtime.throughput import stage_throughput

        return stage_throughput(self.instance, self.db, since)


def _purge_runs(instance: dg.DagsterInstance, result: PlaybookResult, resources: dict[str, Any]) -> list[dict]:
    """Each purge plan an action returned, run through `purge_job` now; its receipt back."""
    from grace_pipelines.assets.purge import purge_receipt
    from grace_pipelines.jobs import purge_job

    plans = [p for a in result.actions if not a.error for p in a.result.pop("plans", [])]
    if not plans:
        return []
    job = dg.Definitions(assets=[purge_receipt], jobs=[purge_job], resources=resources).resolve_job_def("purge_job")
    receipts = []
    for item in plans:
        key = item["source_key"]
        if not instance.has_dynamic_partition("sources", key):
            instance.add_dynamic_partitions("sources", [key])
        run = job.execute_in_process(
            instance=instance,
            partition_key=key,
            run_config={"ops": {"purge_receipt": {"config": item["plan"]}}},
            tags={tag.SOURCE: key, tag.TRIGGER: f"playbook:{result.playbook.name}", **run_tags()},
            raise_on_error=False,
        )
        receipt = next(
            (
                e.step_materialization_data.materialization.metadata["receipt"].value
                for e in run.get_asset_materialization_events()
                if "receipt" in e.step_materialization_data.materialization.metadata
            ),
            None,
        )
        receipts.append({"title": item["title"], "run_id": run.run_id, "success": run.success, "receipt": receipt})
    for a in result.actions:
        if a.do == "purge" and not a.error:
            a.result["purged"] = sum(1 for r in receipts if r["success"])
            a.result["failed"] = [r["title"] for r in receipts if not r["success"]]
    return receipts


def _check_result(c: Any) -> dg.AssetCheckResult:
    metadata: dict[str, Any] = {"metric": c.check.metric, "threshold": c.check.threshold()}
    for group, value in c.values.items():
        metadata[f"value/{group}" if group else "value"] = float(value)
    if c.failing:
        metadata["failing"] = ", ".join(g or "value" for g in c.failing)
    if c.details:
        metadata["named"] = dg.MetadataValue.md("\n".join(f"- {d}" for d in c.details[:50]))
    if c.error:
        metadata["error"] = c.error
    return dg.AssetCheckResult(
        check_name=c.name,
        passed=c.passed,
        severity=SEVERITY[c.check.severity],
        metadata=metadata,
        description=c.summary()[:1000],
    )


def playbook_asset(settings: Any, playbook: Playbook, check_keys: Callable[[], list[Any]]) -> dg.AssetsDefinition:
    key = dg.AssetKey(asset_name(playbook.name))
    specs = [
        dg.AssetCheckSpec(c.name, asset=key, blocking=False, description=c.description or f"{c.metric} {c.threshold()}")
        for c in playbook.checks
    ]

    @dg.asset(
        name=key.path[-1],
        group_name=GROUP,
        kinds={"yaml", "python"},
        description=playbook.description.strip(),
        deps=[dg.AssetKey.from_user_string(a) for a in playbook.materialize],
        check_specs=specs,
        metadata={"playbook_file": playbook.source},
    )
    def _playbook(
        context: dg.AssetExecutionContext,
        config: PlaybookRunConfig,
        state: StateResource,
        blob_store: BlobStore,
        vector_store: VectorStore,
        alerts: Alerts,
        embedder: Embedder,
        chunking: Chunking,
    ) -> dg.MaterializeResult:
        db = state.db()
        ctx = PlaybookContext(
            settings=settings,
            db=db,
            blob_store=blob_store.client(),
            chunk_index=vector_store.client(),
            now=utcnow(),
            alerts=alerts,
            instance_data=_InstanceData(context.instance, db, check_keys),
            actor=f"playbook:{playbook.name}",
        )
        result = evaluate(playbook, ctx, dry_run=config.dry_run)
        resources = {
            "blob_store": blob_store,
            "vector_store": vector_store,
            "state": state,
            "embedder": embedder,  # purge_receipt re-indexes what is left after a person's turns go
            "chunking": chunking,
        }
        receipts = _purge_runs(context.instance, result, resources)
        for c in result.breached:
            context.log.warning(f"{playbook.name}: {c.name} breached: {c.summary()}")
        for a in result.actions:
            (context.log.error if a.error else context.log.info)(f"{playbook.name}: {a.do}: {a.error or a.result}")
        summary = {
            **result.to_dict(),
            "purge_runs": [{k: r[k] for k in ("title", "run_id", "success")} for r in receipts],
        }
        return dg.MaterializeResult(
            metadata={
                **result.numeric(),
                "report": dg.MetadataValue.md(result.markdown()),
                "result": dg.MetadataValue.json(summary),
            },
            check_results=[_check_result(c) for c in result.checks],
        )

    return _playbook


def _trigger(playbook: Playbook, job: Any) -> tuple[list[Any], list[Any]]:
    status = "RUNNING" if playbook.enabled else "STOPPED"
    if playbook.trigger.cron:
        schedule = dg.ScheduleDefinition(
            name=f"playbook_{playbook.name}_schedule",
            target=job,
            cron_schedule=playbook.trigger.cron,
            execution_timezone=playbook.trigger.timezone,
            default_status=dg.DefaultScheduleStatus[status],
            description=f"Playbook {playbook.name} ({playbook.source})",
        )
        return [schedule], []
    watched = dg.AssetKey.from_user_string(str(playbook.trigger.after_asset))

    @dg.asset_sensor(
        asset_key=watched,
        job=job,
        name=f"playbook_{playbook.name}_sensor",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus[status],
        description=f"Playbook {playbook.name} after each materialization of {watched.to_user_string()}",
    )
    def _after(context: dg.SensorEvaluationContext, asset_event: Any) -> dg.RunRequest:
        run_key = f"{playbook.name}:{asset_event.run_id}:{asset_event.timestamp}"  # one per materialization
        return dg.RunRequest(run_key=run_key, tags={tag.TRIGGER: "playbook"})

    return [], [_after]


def _adapter_problems(playbook: Playbook, known: set[str] | None) -> str | None:
    """What the model cannot know: the code location's assets."""
    if known is None:
        return None
    for name in playbook.materialize:
        if name not in known:
            return f"materialize: no asset {name!r} in this code location"
    after = playbook.trigger.after_asset
    if after and after not in known:
        return f"trigger.after_asset: no asset {after!r} in this code location"
    return None


def _check_name(stem: str, taken: set[str]) -> str:
    base = "valid_" + re.sub(r"[^A-Za-z0-9_]", "_", stem)
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def validation_asset(playbooks: list[Playbook], errors: list[PlaybookError]) -> tuple[dg.AssetsDefinition, str]:
    """The `playbooks` asset: a `valid_<file>` check per file; and a digest of the state."""
    taken: set[str] = set()
    files: list[tuple[str, str, list[PlaybookError]]] = []  # (check, file, its errors)
    by_file: dict[str, list[PlaybookError]] = {}
    for e in errors:
        by_file.setdefault(e.file, []).append(e)
    for p in playbooks:
        files.append((_check_name(Path(p.source).stem, taken), p.source, by_file.pop(p.source, [])))
    for file, problems in sorted(by_file.items()):
        files.append((_check_name(Path(file).stem, taken), file, problems))
    digest = hashlib.sha256(json.dumps([(f, [str(e) for e in es]) for _, f, es in files]).encode()).hexdigest()[:16]

    @dg.asset(
        name="playbooks",
        group_name=GROUP,
        kinds={"yaml"},
        check_specs=[
            dg.AssetCheckSpec(c, asset="playbooks", blocking=False, description=f"{f} loads") for c, f, _ in files
        ],
    )
    def _playbooks() -> dg.MaterializeResult:
        """Every playbook file the code location read (shipped `playbooks/` and
        `$GRACE_HOME/playbooks/`), one check per file: failed naming line and field when broken."""
        results = [
            dg.AssetCheckResult(
                check_name=check,
                passed=not problems,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"file": file, **({"line": problems[0].line, "field": problems[0].field} if problems else {})},
                description="; ".join(str(e) for e in problems)[:1000] if problems else f"{file} loads",
            )
            for check, file, problems in files
        ]
        listed = "\n".join(f"- {e}" for e in errors) or "every file loads"
        return dg.MaterializeResult(
            metadata={
                "playbooks": len(playbooks),
                "files": len(files),
                "files_with_errors": sum(1 for _, _, es in files if es),
                "errors": dg.MetadataValue.md(listed),
                "digest": digest,
            },
            check_results=results,
        )

    return _playbooks, digest


def build_playbook_definitions(
    settings: Any,
    playbooks: Iterable[Playbook],
    errors: Iterable[PlaybookError],
    *,
    base: dg.Definitions | None = None,
) -> dg.Definitions:
    """The playbooks' definitions, to merge with `base` (the code location's other definitions:
    the assets a playbook materializes first or waits for, and the checks it reads). Without
    `base` (the Component) a playbook's job holds its own asset only."""
    errors = list(errors)
    known = None if base is None else {k.to_user_string() for a in (base.assets or []) for k in _keys(a)}

    def check_keys() -> list[Any]:
        return list(base.resolve_asset_graph().asset_check_keys) if base is not None else []

    assets, jobs, schedules, sensors, loaded = [], [], [], [], []
    for playbook in playbooks:
        problem = _adapter_problems(playbook, known)
        if problem:
            field, _, message = problem.partition(": ")
            errors.append(PlaybookError(playbook.source, 1, field, message))
            continue
        asset = playbook_asset(settings, playbook, check_keys)
        selected = [asset.key, *(dg.AssetKey.from_user_string(a) for a in playbook.materialize if base is not None)]
        job = dg.define_asset_job(
            job_name(playbook.name),
            selection=dg.AssetSelection.assets(*selected),
            description=f"Playbook {playbook.name}: {playbook.description.strip()[:200]}",
            tags={tag.TRIGGER: "playbook"},
        )
        try:
            new_schedules, new_sensors = _trigger(playbook, job)
        except dg.DagsterInvalidDefinitionError as exc:  # Dagster's own cron rules
            errors.append(PlaybookError(playbook.source, 1, "trigger", str(exc).splitlines()[0][:300]))
            continue
        assets.append(asset)
        jobs.append(job)
        schedules += new_schedules
        sensors += new_sensors
        loaded.append(playbook)
    check_asset, digest = validation_asset(loaded, errors)
    validation_job = dg.define_asset_job(VALIDATION_JOB, selection=dg.AssetSelection.assets("playbooks"))

    @dg.sensor(
        name="playbooks_sensor",
        job=validation_job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records the playbook files' validity (asset `playbooks`) whenever the loaded set changes.",
    )
    def playbooks_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"playbooks:{digest}")])

    return dg.Definitions(
        assets=[*assets, check_asset],
        jobs=[*jobs, validation_job],
        schedules=schedules,
        sensors=[*sensors, playbooks_sensor],
    )


def _keys(asset: Any) -> list[dg.AssetKey]:
    keys = getattr(asset, "keys", None)
    return list(keys) if keys is not None else [asset.key]


def playbook_definitions(settings: Any, base: dg.Definitions | None = None) -> dg.Definitions:
    """Load the playbook files (shipped and `$GRACE_HOME/playbooks/`) and build their definitions."""
    playbooks, errors = load_playbooks(settings)
    return build_playbook_definitions(settings, playbooks, errors, base=base)

"""The `dev` layer: what code and models are running, and what the data-quality checks say.

`data_quality` summarises the latest result of every `quality_*` check on `transcript`,
`chunks` and `embeddings` (great-expectations suites run by the quality job) from the
instance's event log: passed, warn and failed counts, per check. `versions`: the installed
packages (from their metadata, nothing heavy imported), the transcriber's and embedder's model
identity from the resources, and the code versions of the ingest assets. The playbook assets
(`playbook_<name>`) sit in this group too.
"""

import platform
from collections.abc import Callable
from typing import Any

import dagster as dg

from grace_pipelines.resources import Embedder, Transcriber
from grace_pipelines.runtime.health import md_table, package_versions
from grace_pipelines.settings import GraceSettings

GROUP = "dev"
QUALITY_PREFIX = "quality_"
QUALITY_ASSETS = ("transcript", "chunks", "embeddings")
INGEST_ASSETS = ("source", "transcript", "chunks", "embeddings")
HISTORY = 10_000  # check executions read per check (the latest per partition counts)


def quality_results(instance: dg.DagsterInstance, check_keys: list[dg.AssetCheckKey]) -> dict[str, dict[str, Any]]:
    """Per check: the latest evaluation of each partition counted as passed, warn (a failed WARN
    check) or failed (a failed ERROR check); planned-but-not-run executions are `pending`."""
    out = {}
    for key in sorted(check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        counts = {"passed": 0, "warn": 0, "failed": 0, "pending": 0}
        seen: set[str | None] = set()
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=HISTORY):
            if record.partition in seen:
                continue  # history is newest first: only the latest result per partition counts
            seen.add(record.partition)
            status = record.status.value
            if status == "SUCCEEDED":
                counts["passed"] += 1
            elif status == "FAILED":
                evaluation = record.event.asset_check_evaluation if record.event else None
                severity = evaluation.severity if evaluation else dg.AssetCheckSeverity.ERROR
                counts["warn" if severity == dg.AssetCheckSeverity.WARN else "failed"] += 1
            else:
                counts["pending"] += 1
        out[f"{key.asset_key.to_user_string()}.{key.name}"] = counts
    return out


def whole_graph(context: dg.AssetExecutionContext, provider: Callable[[], Any] | None) -> Any:
    """The asset graph of the whole code location (a job's own graph holds only its assets):
    from `provider` (build_definitions passes one), else the run's repository when it has one."""
    if provider is not None:
        return provider()
    try:
        return context.repository_def.asset_graph
    except Exception:  # noqa: BLE001 - an in-process run of loose assets has no repository
        return None


def build_dev_assets(settings: GraceSettings, graph: Callable[[], Any] | None = None) -> list[dg.AssetsDefinition]:
    """`graph`: returns the code location's asset graph at run time (the quality checks and the
    ingest assets' code versions live there)."""

    @dg.asset(
        group_name=GROUP,
        kinds={"python", "dagster"},
        check_specs=[
            dg.AssetCheckSpec(
                "no_failed_quality_checks", asset="data_quality", description="No ERROR quality check failing (WARN)"
            )
        ],
    )
    def data_quality(context: dg.AssetExecutionContext):
        """Look here first: `failed` (ERROR-severity quality checks failing on some source) and
        `warn`, per check in the table; then the `playbook_<name>` assets (each playbook's last
        run, its numbers and report) and `versions` when something changed. Counts are the
        latest result per source of every `quality_*` check on transcript, chunks and embeddings;
        0 everywhere when no quality check has run yet."""
        whole = whole_graph(context, graph)
        keys = [
            k
            for k in (whole.asset_check_keys if whole is not None else ())
            if k.name.startswith(QUALITY_PREFIX) and k.asset_key.to_user_string() in QUALITY_ASSETS
        ]
        results = quality_results(context.instance, keys)
        totals = {name: sum(c[name] for c in results.values()) for name in ("passed", "warn", "failed", "pending")}
        metadata = {
            "quality_checks": len(results),
            **totals,
            "evaluated": totals["passed"] + totals["warn"] + totals["failed"],
            "by_check": dg.MetadataValue.md(
                md_table(
                    ("check", "passed", "warn", "failed", "pending"),
                    ((name, c["passed"], c["warn"], c["failed"], c["pending"]) for name, c in results.items()),
                    empty="no quality check defined or run yet",
                )
            ),
        }
        failing = [name for name, c in results.items() if c["failed"]]
        check = dg.AssetCheckResult(
            check_name="no_failed_quality_checks",
            passed=not failing,
            severity=dg.AssetCheckSeverity.WARN,
            description="no ERROR quality check failing" if not failing else "failing: " + ", ".join(failing),
            metadata={"failed": totals["failed"], "warn": totals["warn"]},
        )
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    @dg.asset(group_name=GROUP, kinds={"python"})
    def versions(context: dg.AssetExecutionContext, transcriber: Transcriber, embedder: Embedder):
        """What is running: package versions (grace-pipelines, dagster, lancedb, faster-whisper,
        onnxruntime, great-expectations), the transcriber and embedder models, and the code
        version of each ingest asset (a change there is what makes Dagster show them changed)."""
        whole = whole_graph(context, graph)
        known = set(whole.get_all_asset_keys()) if whole is not None else set()
        code = {
            name: (whole.get(dg.AssetKey(name)).code_version or "-") if dg.AssetKey(name) in known else "-"
            for name in INGEST_ASSETS
        }
        packages = package_versions()
        models = {
            "transcriber": f"{type(transcriber).engine}: {transcriber.model_id()}",
            "embedder": f"{type(embedder).engine}: {embedder.model_name} {embedder.model_version}, {embedder.dim}-d "
            f"(version {embedder.code_version()})",
        }
        rows = [("python", platform.python_version())] + list(packages.items())
        rows += [(f"model: {k}", v) for k, v in models.items()] + [(f"code: {k}", v) for k, v in code.items()]
        return dg.MaterializeResult(
            metadata={
                **{f"version/{name}": v for name, v in packages.items()},
                **{f"model/{k}": v for k, v in models.items()},
                **{f"code_version/{k}": v for k, v in code.items()},
                "packages_installed": sum(1 for v in packages.values() if v != "not installed"),
                "versions": dg.MetadataValue.md(md_table(("component", "version"), rows)),
            }
        )

    return [data_quality, versions]
